import { existsSync } from "node:fs";
import { cpus } from "node:os";
import { UmlfleetError } from "../errors";
import type { DiskSpec, InstanceGroupSpec, SerialLinkSpec, SpecOf } from "../spec";
import { memberInstanceSpec, memberRootDisk } from "../validation";
import type { ChangePlan, GroupApplyResult, MemberAction } from "../change-plan";
import type { SpecValidator } from "../validation";
import type { Disks } from "./disks";
import type { CallOptions } from "./driver";
import type { Images } from "./images";
import type { Instances, StopOptions } from "./instance";
import { BatchLauncher, type Launcher } from "./launcher";
import type { Networks } from "./networks";
import { killAllNaming } from "../process";
import { refuseForeign, refuseForeignUses } from "./owners";
import type { SerialLinks } from "./serial-links";
import type { StateDir } from "./state";

/**
 * What a group needs of its host: the components, and the single-resource
 * operations it composes (with their locks and clean-up). LocalRuntime is one.
 */
export interface GroupHost {
  readonly state: StateDir;
  readonly validator: SpecValidator;
  readonly images: Images;
  readonly disks: Disks;
  readonly networks: Networks;
  readonly instances: Instances;
  readonly links: SerialLinks;
  ensureDisk(spec: DiskSpec, opts?: CallOptions): Promise<unknown>;
  removeDisk(name: string, opts?: CallOptions): Promise<void>;
  removeInstance(name: string, opts?: StopOptions & CallOptions): Promise<void>;
  ensureSerialLink(spec: SerialLinkSpec, opts?: CallOptions): Promise<unknown>;
  removeSerialLink(name: string, opts?: CallOptions): Promise<void>;
  planInstanceUpdate(spec: unknown): ChangePlan;
}

export type { GroupApplyResult, MemberAction } from "../change-plan";

/**
 * Many instances as one unit. Member `m` is an ordinary instance `m` booting
 * an ordinary overlay `m-root`, so everything else (status, exec, serial links,
 * destroyAll) sees plain instances and disks. What the group adds is one call
 * for the whole set: every member validated and every name it refers to
 * checked before any side effect, then all members created, updated, replaced
 * or removed at once, instead of one engine round-trip per resource.
 */
export class InstanceGroups {
  constructor(private readonly rt: GroupHost) {}

  /**
   * Make the host match `spec`. `previous` is the spec last applied (its
   * members no longer in `spec` are removed). A failed first apply removes the
   * members it made; a failed later apply leaves the members it reached
   * (apply again to converge: apply is idempotent). A group's members are
   * its `owner`'s: a member another stack owns is refused before anything is done.
   */
  async apply(
    spec: unknown,
    previous?: InstanceGroupSpec,
    signal?: AbortSignal,
    owner?: string,
  ): Promise<GroupApplyResult> {
    const s = this.rt.validator.validate("instance-group", spec);
    this.checkReferences(s);
    this.refuseForeignMembers(
      s.name,
      [...Object.keys(s.members), ...Object.keys(previous?.members ?? {})],
      owner,
    );
    for (const [m, spec] of Object.entries(s.members))
      refuseForeignUses(`instance-group/${s.name}/members/${m}`, spec, owner, this.rt, this.rt.state.root);
    const actions = this.actionsFor(s, previous);
    const plans: Record<string, ChangePlan> = {};
    this.refuseForeignInstances(s, previous, actions);
    const own = { ...(signal ? { signal } : {}), ...(owner !== undefined ? { owner } : {}) };

    const made: string[] = [];
    const entries = Object.entries(actions);
    const results = new Map<string, PromiseSettledResult<void>>();
    const settle = async (
      items: [string, MemberAction][],
      fn: (m: string, a: MemberAction) => Promise<void>,
    ) => {
      const r = await limit(items, parallelism(), ([m, a]) => fn(m, a));
      items.forEach(([m], i) => results.set(m, r[i]!));
    };
    // Removals first (they free names and switch ports), then changes in place.
    await settle(
      entries.filter(([, a]) => a === "remove"),
      (m) => this.removeMember(m, owner),
    );
    await settle(
      entries.filter(([, a]) => a === "update" || a === "none"),
      async (m, action): Promise<void> => {
        if (action === "update") plans[m] = await this.rt.instances.update(this.memberSpec(s, m), own);
        // Unchanged or not, a member found stopped (drift) is started, and one
        // whose boot a killed process left unfinished is seen to its end.
        await this.rt.instances.start(m, signal ? { signal } : {});
      },
    );
    // New machines boot in waves: every member of a wave prepares (overlay,
    // record, FIFOs), then one bash starts them all (see BatchLauncher).
    const fresh = entries.filter(([, a]) => a === "create" || a === "replace");
    // Members made again (replaced, or found without their record) keep their
    // serial links: removing an instance removes its links, and a link's
    // relays hold the old FIFOs. So each is unmade first and made again once
    // both its ends are up.
    const remade = fresh.filter(([m, a]) => a === "replace" || (previous && m in previous.members));
    const relink = new Map<string, SerialLinkSpec>();
    for (const [m] of remade)
      for (const l of this.rt.links.linksOf(m)) relink.set(l, this.rt.links.get(l)!.spec);
    for (const l of relink.keys()) await this.rt.removeSerialLink(l);
    // A wave prepares while the one before it boots: it waits only until that
    // one's guests were started (measured: 128 guests in waves that each
    // waited for the last one ready took 1.44x the shell script's time).
    const waves: Promise<void>[] = [];
    for (let i = 0; i < fresh.length; i += parallelism()) {
      const wave = fresh.slice(i, i + parallelism());
      const batch = new BatchLauncher(wave.length);
      const settled = settle(wave, async (m, action) => {
        const party = batch.party();
        try {
          if (action === "replace") await this.removeMember(m, owner);
          // A member the group had whose record is gone: its guest may still run.
          else if (previous && m in previous.members) await this.killOrphans(m);
          made.push(m);
          await this.createMember(s, m, party, own);
        } finally {
          party.leave(); // a member that failed before its start must not hold the others
        }
      });
      waves.push(settled);
      await Promise.race([batch.started, settled]);
    }
    await Promise.all(waves);
    for (const link of relink.values()) {
      // A link with an end that failed is lost with it (the error below names the member).
      if ([link.a, link.b].every((e) => this.rt.instances.isRunning(this.rt.instances.get(e.instance))))
        await this.rt.ensureSerialLink(link);
    }
    const failed = entries.flatMap(([m]) => {
      const r = results.get(m);
      return r?.status === "rejected" ? [[m, r.reason as unknown] as const] : [];
    });
    if (failed.length) {
      if (!previous) await Promise.allSettled(made.map((m) => this.removeMember(m, owner)));
      const [member, first] = failed[0]!;
      const names = failed.map(([m]) => m).join(", ");
      const note = ` (${failed.length} of ${Object.keys(actions).length} members failed: ${names}${
        previous ? "" : "; the members this apply made were removed"
      })`;
      // The member's own error (its code, field and boot facts), naming the member and the rest.
      const err = first instanceof Error ? first : new Error(String(first));
      err.message = `instance-group ${s.name}: member ${member}: ${err.message}${note}`;
      throw err;
    }
    return { actions, plans };
  }

  /** What apply would do to each member, with the change plans of updated ones. No side effect. */
  plan(spec: unknown, previous?: InstanceGroupSpec): GroupApplyResult {
    const s = this.rt.validator.validate("instance-group", spec);
    const actions = this.actionsFor(s, previous);
    const plans: Record<string, ChangePlan> = {};
    for (const [m, a] of Object.entries(actions))
      if (a === "update") plans[m] = this.rt.planInstanceUpdate(memberInstanceSpec(s, m));
    return { actions, plans };
  }

  /** Remove every member of `spec` and its overlay. Missing ones are skipped; none of another stack's is removed. */
  async remove(spec: InstanceGroupSpec, owner?: string): Promise<void> {
    this.refuseForeignMembers(spec.name, Object.keys(spec.members), owner, "remove");
    const results = await limit(Object.keys(spec.members), parallelism(), (m) => this.removeMember(m, owner));
    const failed = results.find((r) => r.status === "rejected");
    if (failed) throw failed.reason;
    this.rt.state.pruneIfEmpty();
  }

  /** Per member: removed (in `previous` only), or as actionFor says. */
  private actionsFor(
    s: SpecOf["instance-group"],
    previous: InstanceGroupSpec | undefined,
  ): Record<string, MemberAction> {
    const actions: Record<string, MemberAction> = {};
    for (const m of Object.keys(previous?.members ?? {})) if (!(m in s.members)) actions[m] = "remove";
    for (const m of Object.keys(s.members)) actions[m] = this.actionFor(s, m);
    return actions;
  }

  private actionFor(s: SpecOf["instance-group"], m: string): MemberAction {
    const record = this.rt.instances.get(m);
    if (!record) return "create";
    // A member without its overlay (or on one over another base) is another
    // machine: it is remade on a new overlay, as a Disk whose file is gone.
    if (this.overlayProblem(s.base, m)) return "replace";
    const plan = this.rt.planInstanceUpdate(memberInstanceSpec(s, m));
    if (plan.kind === "replace") return "replace";
    return plan.kind === "none" ? "none" : "update";
  }

  /**
   * Why member `m` of a group over `base` cannot boot its overlay `m-root` as
   * it is (its record or its file gone, or made over another base), or
   * undefined when it can. No side effect: refresh reports it as drift.
   */
  overlayProblem(base: string, m: string): string | undefined {
    const name = memberRootDisk(m);
    const root = this.rt.disks.get(name);
    if (!root) return `overlay ${JSON.stringify(name)} does not exist`;
    if (root.spec.kind !== "overlay" || root.spec.base !== base)
      return `disk ${JSON.stringify(name)} is not an overlay over base ${JSON.stringify(base)}`;
    if (!existsSync(root.path)) return `overlay ${JSON.stringify(name)} has no file (${root.path} is gone)`;
    return this.rt.disks.problem(root);
  }

  /**
   * A member that is new to this group may only adopt an instance of its name
   * that already is exactly that member (a retried create), as a single
   * instance's create does; anything else belongs to someone else.
   */
  private refuseForeignInstances(
    s: SpecOf["instance-group"],
    previous: InstanceGroupSpec | undefined,
    actions: Record<string, MemberAction>,
  ): void {
    for (const m of Object.keys(s.members)) {
      if (previous && m in previous.members) continue;
      if (!this.rt.instances.get(m) || actions[m] === "none") continue;
      throw new UmlfleetError(
        "UMLFLEET_CONFLICT",
        `instance-group/${s.name}/members/${m}: an instance ${JSON.stringify(m)} exists on this host and is not this member; remove it or rename the member`,
        { field: `/members/${m}`, value: m },
      );
    }
  }

  /**
   * Every member's instance and overlay must be `owner`'s (or no one's):
   * checked for the whole group before anything is made or removed.
   */
  private refuseForeignMembers(
    group: string,
    members: string[],
    owner: string | undefined,
    op: "create" | "remove" = "create",
  ): void {
    for (const m of members) {
      const where = `instance-group/${group}/members/${m}: instance`;
      refuseForeign(where, m, this.rt.instances.get(m), owner, op, this.rt.state.root);
      const root = memberRootDisk(m);
      refuseForeign(
        `instance-group/${group}/members/${m}: overlay`,
        root,
        this.rt.disks.get(root),
        owner,
        op,
        this.rt.state.root,
      );
    }
  }

  /** Every base, network and disk the members name must exist: checked before anything is made. */
  private checkReferences(s: SpecOf["instance-group"]): void {
    const missing = (field: string, value: string, what: string) =>
      new UmlfleetError(
        "UMLFLEET_NOT_FOUND",
        `instance-group/${s.name}${field}: no ${what} ${JSON.stringify(value)} on this host`,
        {
          field,
          value,
        },
      );
    if (!this.rt.images.get(s.base)) throw missing("/base", s.base, "base");
    for (const [m, spec] of Object.entries(s.members)) {
      (spec.nics ?? []).forEach((n, i) => {
        if (!this.rt.networks.get(n.network))
          throw missing(`/members/${m}/nics/${i}/network`, n.network, "network");
      });
      (spec.disks ?? []).forEach((d, i) => {
        if (!this.rt.disks.get(d.disk)) throw missing(`/members/${m}/disks/${i}/disk`, d.disk, "disk");
      });
      if (spec.swapDisk && !this.rt.disks.get(spec.swapDisk))
        throw missing(`/members/${m}/swapDisk`, spec.swapDisk, "disk");
    }
  }

  private async createMember(
    s: SpecOf["instance-group"],
    m: string,
    launcher: Launcher,
    opts: { signal?: AbortSignal; owner?: string },
  ): Promise<void> {
    await this.rt.ensureDisk({ name: memberRootDisk(m), kind: "overlay", base: s.base }, opts);
    await this.rt.instances.create(this.memberSpec(s, m), { launcher, ...opts });
  }

  /** Member `m` as the instance spec it becomes, validated (defaults filled). */
  private memberSpec(s: SpecOf["instance-group"], m: string): SpecOf["instance"] {
    return this.rt.validator.validate("instance", memberInstanceSpec(s, m));
  }

  private async removeMember(m: string, owner?: string): Promise<void> {
    const own = owner !== undefined ? { owner } : {};
    if (this.rt.instances.get(m)) await this.rt.removeInstance(m, { timeoutMs: 30_000, ...own });
    else await this.killOrphans(m);
    if (this.rt.disks.get(memberRootDisk(m))) await this.rt.removeDisk(memberRootDisk(m), own);
  }

  /**
   * A member whose instance folder was deleted behind our back may still run
   * (its guest holds its overlay open): kill every process naming its folder
   * before a new guest takes its name. Only for such members: a /proc scan
   * per member would slow a first create (docs/architecture.md, boot storm).
   */
  private async killOrphans(m: string): Promise<void> {
    if (!this.rt.instances.get(m)) await killAllNaming(this.rt.state.vmDir(m));
  }
}

/**
 * Members handled at once. Every member of a 32-guest fleet boots together, as
 * a shell script would start them; beyond 16 per core, boots only queue for
 * the CPU and their readiness deadlines run out.
 */
function parallelism(): number {
  return Math.max(32, 16 * cpus().length);
}

/** Run `fn` over `items`, at most `n` at a time; settle all. */
async function limit<T>(
  items: T[],
  n: number,
  fn: (item: T) => Promise<void>,
): Promise<PromiseSettledResult<void>[]> {
  const results = new Array<PromiseSettledResult<void>>(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      try {
        await fn(items[i]!);
        results[i] = { status: "fulfilled", value: undefined };
      } catch (reason) {
        results[i] = { status: "rejected", reason };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(n, items.length) }, worker));
  return results;
}
