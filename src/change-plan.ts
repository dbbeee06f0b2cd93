import type { InstanceGroupSpec, InstanceSpec, NicSpec } from "./spec";
import { memberInstanceSpec } from "./validation";

/**
 * How a changed field of an instance is applied:
 * - live: on the running guest through mconsole, no reboot (hot-plug);
 * - restart: stop and start the guest on the same disks (data kept);
 * - replace: a new instance (the provider deletes and creates it).
 * Preview shows exactly this classification, and update does exactly it.
 */
export type ChangeKind = "none" | "live" | "restart" | "replace";

export interface FieldChange {
  field: string;
  kind: Exclude<ChangeKind, "none">;
  why: string;
}

export interface ChangePlan {
  kind: ChangeKind;
  changes: FieldChange[];
}

const RANK: Record<ChangeKind, number> = { none: 0, live: 1, restart: 2, replace: 3 };

const same = (a: unknown, b: unknown) => JSON.stringify(a ?? null) === JSON.stringify(b ?? null);

/** Does `short` equal the first items of `long`? */
function isPrefix<T>(short: T[], long: T[]): boolean {
  return short.length <= long.length && short.every((x, i) => same(x, long[i]));
}

function listChange<T>(field: string, before: T[] = [], after: T[] = [], noun: string): FieldChange | null {
  if (same(before, after)) return null;
  if (isPrefix(before, after))
    return { field, kind: "live", why: `hot-plug ${after.length - before.length} ${noun}` };
  if (isPrefix(after, before))
    return { field, kind: "live", why: `hot-unplug the last ${before.length - after.length} ${noun}` };
  return { field, kind: "restart", why: `${noun} reordered or changed in place` };
}

/**
 * Impairments of NICs that stay: a NIC with a wirefilter is set through its
 * management socket; one plugged straight into its switch is re-plugged
 * through a wirefilter (mconsole remove and config: the guest's link goes
 * down and up, it keeps running).
 */
function impairmentChanges(before: NicSpec[], after: NicSpec[]): FieldChange[] {
  const out: FieldChange[] = [];
  for (let i = 0; i < Math.min(before.length, after.length); i++) {
    const [a, b] = [before[i]!.impairment, after[i]!.impairment];
    if (same(a, b)) continue;
    out.push({
      field: `/nics/${i}/impairment`,
      kind: "live",
      why: a
        ? "set through the NIC's wirefilter management socket"
        : "re-plug the NIC through a wirefilter (hot-plug, no reboot)",
    });
  }
  return out;
}

/** A NIC's MTU in the guest: its `mtu`, else Linux's default for Ethernet. */
export const nicMtu = (nic: NicSpec): number => nic.mtu ?? 1500;

/** MTUs of NICs that stay: set in the running guest through its control channel (none: a restart). */
function mtuChanges(before: NicSpec[], after: NicSpec[], controlChannel: boolean): FieldChange[] {
  const out: FieldChange[] = [];
  for (let i = 0; i < Math.min(before.length, after.length); i++) {
    if (nicMtu(before[i]!) === nicMtu(after[i]!)) continue;
    out.push(
      controlChannel
        ? { field: `/nics/${i}/mtu`, kind: "live", why: "set in the running guest (ip link set mtu)" }
        : {
            field: `/nics/${i}/mtu`,
            kind: "restart",
            why: "the guest has no control channel (readiness is not marker)",
          },
    );
  }
  return out;
}

/** Classify every changed field between two validated instance specs. */
export function planInstanceChange(before: InstanceSpec, after: InstanceSpec): ChangePlan {
  const changes: FieldChange[] = [];
  const add = (c: FieldChange | null) => c && changes.push(c);
  const fields = new Set([...Object.keys(before), ...Object.keys(after)]) as Set<keyof InstanceSpec>;
  for (const field of fields) {
    const a = before[field];
    const b = after[field];
    if (same(a, b)) continue;
    const path = `/${field}`;
    switch (field) {
      case "name":
      case "kernel":
      case "rootDisk":
        add({ field: path, kind: "replace", why: `${field} is fixed for an instance's lifetime` });
        break;
      case "memoryMiB": {
        // UML's mconsole "mem" device is a balloon: it gives back or takes away
        // memory within what the guest booted with (mem=), never more (measured).
        const bootMiB = before.maxMemoryMiB ?? (a as number);
        const sameCeiling = same(before.maxMemoryMiB, after.maxMemoryMiB);
        add(
          sameCeiling && (b as number) <= bootMiB
            ? { field: path, kind: "live", why: `balloon to ${b as number} MiB through mconsole` }
            : { field: path, kind: "restart", why: `above the ${bootMiB} MiB the guest booted with` },
        );
        break;
      }
      case "disks":
        add(listChange(path, before.disks, after.disks, "disk(s)"));
        break;
      case "nics": {
        // Impairments change live (below): the NICs themselves are compared without them.
        const bare = (l: InstanceSpec["nics"]) => (l ?? []).map(({ impairment: _, mtu: __, ...n }) => n);
        const c = listChange(path, bare(before.nics), bare(after.nics), "NIC(s)");
        // A running guest's sandbox holds only the switch folders it booted with.
        const known = new Set((before.nics ?? []).map((n) => n.network));
        const fresh = [...new Set((after.nics ?? []).map((n) => n.network).filter((n) => !known.has(n)))];
        if (c?.kind === "live" && fresh.length > 0) {
          add({
            field: path,
            kind: "restart",
            why: `network(s) ${fresh.join(", ")} are outside the running guest's sandbox`,
          });
        } else add(c);
        for (const c of impairmentChanges(before.nics ?? [], after.nics ?? [])) add(c);
        for (const c of mtuChanges(
          before.nics ?? [],
          after.nics ?? [],
          (after.readiness ?? "marker") === "marker",
        ))
          add(c);
        break;
      }
      case "files":
      case "startup":
      case "startupMustSucceed":
      case "login":
        // umlfleet's init writes the files, the login and runs the script at boot; the disks keep their data.
        add({ field: path, kind: "restart", why: `${field} is applied by umlfleet's init at boot` });
        break;
      case "bootTimeoutMs":
        break; // bookkeeping only: takes effect at the next boot, nothing to do now
      default:
        add({ field: path, kind: "restart", why: `${field} is read at boot` });
    }
  }
  const kind = changes.reduce<ChangeKind>((k, c) => (RANK[c.kind] > RANK[k] ? c.kind : k), "none");
  return { kind, changes };
}

/** What apply did (or would do) to each member of an instance group. */
export type MemberAction = "create" | "update" | "replace" | "remove" | "none";
export interface GroupApplyResult {
  actions: Record<string, MemberAction>;
  /** Change plans of updated members (live or restart). */
  plans: Record<string, ChangePlan>;
}

/**
 * What applying `after` over `before` does to each member, from the two specs
 * alone (no host access): for previews. Members whose kernel or base changes
 * are replaced; the rest are planned field by field like single instances.
 */
export function planGroupChange(before: InstanceGroupSpec, after: InstanceGroupSpec): GroupApplyResult {
  const actions: Record<string, MemberAction> = {};
  const plans: Record<string, ChangePlan> = {};
  for (const m of Object.keys(before.members)) if (!(m in after.members)) actions[m] = "remove";
  for (const m of Object.keys(after.members)) {
    if (!(m in before.members)) {
      actions[m] = "create";
      continue;
    }
    const plan = planInstanceChange(memberInstanceSpec(before, m), memberInstanceSpec(after, m));
    if (before.base !== after.base || plan.kind === "replace") actions[m] = "replace";
    else if (plan.kind === "none") actions[m] = "none";
    else {
      actions[m] = "update";
      plans[m] = plan;
    }
  }
  return { actions, plans };
}

/** One line for a preview: "b live (memoryMiB), c restart (kernelArgs), d create, e remove". */
export function describeGroupChange(r: GroupApplyResult): string {
  return Object.entries(r.actions)
    .filter(([, a]) => a !== "none")
    .map(([m, a]) => {
      const p = r.plans[m];
      return p ? `${m} ${p.kind} (${p.changes.map((c) => c.field.slice(1)).join(", ")})` : `${m} ${a}`;
    })
    .join(", ");
}
