import { resolveHostIds } from "./host-users";
import { createHash } from "node:crypto";
import { statSync } from "node:fs";
import type { ChangePlan } from "../change-plan";
import { withDeadline } from "../deadline";
import { UmlfleetError } from "../errors";
import type {
  BaseSpec,
  DiskSpec,
  InstanceGroupSpec,
  KernelSpec,
  NetworkSpec,
  SerialLinkSpec,
  SpecOf,
} from "../spec";
import { SpecValidator } from "../validation";
import { Disks } from "./disks";
import type {
  BaseInfo,
  CallOptions,
  DiskInfo,
  HostDriver,
  InstanceInfo,
  Inventory,
  KernelInfo,
  MemberInfo,
  NetworkInfo,
  SerialLinkInfo,
} from "./driver";
import type { ExecResult } from "./guest-channel";
import { InstanceGroups } from "./groups";
import { hostFacts, type HostFact } from "./host-facts";
import { Images, type BaseRecord } from "./images";
import { Instances, withReplug, type InstanceStatus, type StartOptions, type StopOptions } from "./instance";
import type { Launcher } from "./launcher";
import { buildKernel, isExecutableFile, kernelFacts } from "./kernels";
import { Networks, type NetworkStatus } from "./networks";
import { checkOwner, ownersOf, refuseForeign, refuseForeignUses } from "./owners";
import { SerialLinks } from "./serial-links";
import { StateDir, stateWriteError, withLock } from "./state";
import { traceBoot } from "./instance/boot-trace";

/** Where the default state folder came from, for an error that names it. */
function stateDirSource(env: NodeJS.ProcessEnv = process.env): string {
  return env.UMLFLEET_STATE_DIR ? "UMLFLEET_STATE_DIR" : env.XDG_STATE_HOME ? "XDG_STATE_HOME" : "HOME";
}

export interface LocalRuntimeOptions {
  /** The state folder. Default: $UMLFLEET_STATE_DIR, else $XDG_STATE_HOME/umlfleet, else ~/.local/state/umlfleet. */
  stateDir?: string;
}

/** Waits for another operation on the same resource (then UMLFLEET_LOCK_TIMEOUT). */
const LOCK_WAIT_MS = 120_000;

/**
 * The embedded runtime for one host: the HostDriver on the machine it runs
 * on. Every method validates its spec first (UMLFLEET_INVALID_SPEC, no side
 * effect), and any number of LocalRuntime objects, in any processes, may
 * share a state folder. The components (images, disks, networks, instances,
 * links, groups) are exposed for the runtime's own tests and tools.
 */
export class LocalRuntime implements HostDriver {
  readonly state: StateDir;
  readonly validator: SpecValidator;
  readonly images: Images;
  readonly disks: Disks;
  readonly networks: Networks;
  readonly instances: Instances;
  readonly links: SerialLinks;
  /** Many instances as one unit (InstanceGroupSpec): apply, plan, remove. */
  readonly groups: InstanceGroups;

  constructor(opts: LocalRuntimeOptions = {}, validator = new SpecValidator()) {
    // Opening a state folder creates nothing: each writer makes the folder it
    // writes to, and the folder goes with its last resource.
    // The path reaches UML's command line: checked before anything uses it.
    const root = opts.stateDir ?? StateDir.defaultRoot();
    validator.checkStateDir(root, opts.stateDir !== undefined ? "stateDir" : stateDirSource());
    this.state = new StateDir(root);
    this.validator = validator;
    this.images = new Images(this.state);
    this.disks = new Disks(this.state, this.images);
    this.networks = new Networks(this.state, {
      captureDirs: validator.captureDirs,
      shares: () =>
        this.instances.list().map((n) => ({ instance: n, shares: this.instances.get(n)?.spec.shares ?? [] })),
    });
    this.instances = new Instances(this.state, this.disks, this.networks);
    this.links = new SerialLinks(this.state, this.instances);
    this.groups = new InstanceGroups(this);
  }

  get stateDir(): string {
    return this.state.root;
  }

  hostFacts(): Promise<HostFact[]> {
    return hostFacts(undefined, undefined, { stateDir: this.state.root, capacity: true });
  }

  /** Everything in the state folder, with each one's owners, for `umlfleet ls` and leak checks. */
  inventory(): Promise<Inventory> {
    const inv = {
      bases: this.state.list("bases"),
      disks: this.state.list("disks"),
      networks: this.state.list("networks"),
      instances: this.instances.list(),
      links: this.state.list("links"),
    };
    const { images: bases, disks, networks, instances, links } = this;
    return Promise.resolve({ ...inv, owners: ownersOf(inv, { bases, disks, networks, instances, links }) });
  }

  // Kernels
  async ensureKernel(spec: KernelSpec, opts: CallOptions = {}): Promise<KernelInfo> {
    const s = this.validator.validate("kernel", spec);
    return withDeadline("kernel", opts, async (signal) => {
      // A build form is built once per content hash; the path is what instances boot.
      const path = s.build ? await buildKernel(s.build, signal) : String(s.path);
      if (!isExecutableFile(path))
        throw new UmlfleetError(
          "UMLFLEET_NOT_FOUND",
          `kernel/path: ${JSON.stringify(path)} is not an executable file`,
          {
            field: "/path",
            value: path,
          },
        );
      return kernelFacts(path, signal);
    });
  }
  async kernelInfo(path: string, opts: CallOptions = {}): Promise<KernelInfo | undefined> {
    return isExecutableFile(path)
      ? withDeadline("kernel facts", opts, (signal) => kernelFacts(path, signal))
      : undefined;
  }

  // Bases
  async ensureBase(spec: BaseSpec, opts: CallOptions = {}): Promise<BaseInfo> {
    const s = this.validator.validate("base", spec);
    const owner = checkOwner(opts.owner);
    return this.guarded(`base ${s.name}`, `base-${s.name}`, opts, async (signal) =>
      baseInfo(await this.images.ensure(s, { overlays: this.disks.overlaysOf(s.name), signal, owner }), ""),
    );
  }
  async baseInfo(name: string): Promise<BaseInfo | undefined> {
    const r = this.images.get(name);
    if (!r) return undefined;
    // A changed or missing image is drift, named: ensureBase restores it from
    // its recipe when that gives the recorded bytes, or says why not.
    const i = await this.images.integrity(r);
    return baseInfo(r, i.ok ? "" : i.message);
  }
  /** `owner` lets go of the base; it goes with its last owner (owners.ts); `allOwners`: it goes now. */
  removeBase(name: string, opts: CallOptions & { allOwners?: boolean } = {}): Promise<void> {
    const owner = checkOwner(opts.owner);
    return this.removing(`removing base ${name}`, `base-${name}`, opts, () =>
      this.images.remove(name, this.disks.overlaysOf(name, true), owner, opts.allOwners),
    );
  }

  // Disks
  async ensureDisk(spec: DiskSpec, opts: CallOptions = {}): Promise<DiskInfo> {
    const s = this.validator.validate("disk", spec);
    const owner = checkOwner(opts.owner);
    return this.guarded(`disk ${s.name}`, `disk-${s.name}`, opts, async (signal) => {
      await this.disks.ensure(s, signal, owner);
      return (await this.diskInfo(s.name))!;
    });
  }
  diskInfo(name: string): Promise<DiskInfo | undefined> {
    // A file deleted, truncated or rewritten behind our back is drift, named in `problem`.
    return Promise.resolve(this.disks.info(name));
  }
  async removeDisk(name: string, opts: CallOptions = {}): Promise<void> {
    const owner = checkOwner(opts.owner);
    const usedBy = this.instances.list().filter((i) => {
      const s = this.instances.get(i)!.spec;
      return [s.rootDisk, s.swapDisk, ...(s.disks ?? []).map((d) => d.disk)].includes(name);
    });
    return this.removing(`removing disk ${name}`, `disk-${name}`, opts, () =>
      this.disks.remove(name, usedBy, owner),
    );
  }

  // Networks
  async ensureNetwork(spec: NetworkSpec, opts: CallOptions = {}): Promise<NetworkInfo> {
    const s = this.validator.validate("network", spec);
    const owner = checkOwner(opts.owner);
    return this.guarded(`network ${s.name}`, `network-${s.name}`, opts, async (signal) => {
      // A switch restarted under running guests: their NICs on it connect again.
      await withReplug(this.instances, s.name, signal, () => this.networks.ensure(s, signal, owner));
      return (await this.networkInfo(s.name))!;
    });
  }
  networkInfo(name: string): Promise<NetworkInfo | undefined> {
    const st = this.networks.status(name);
    return Promise.resolve(
      st && { name, switchDir: st.switchDir, running: st.running, ...(st.pid ? { pid: st.pid } : {}) },
    );
  }
  networkStatus(name: string): NetworkStatus | undefined {
    return this.networks.status(name);
  }
  async removeNetwork(name: string, opts: CallOptions = {}): Promise<void> {
    const owner = checkOwner(opts.owner);
    const usedBy = this.instances
      .list()
      .filter((i) => (this.instances.get(i)!.spec.nics ?? []).some((n) => n.network === name));
    return this.removing(`removing network ${name}`, `network-${name}`, opts, () =>
      this.networks.remove(name, usedBy, owner),
    );
  }

  // Serial links
  async ensureSerialLink(spec: SerialLinkSpec, opts: CallOptions = {}): Promise<SerialLinkInfo> {
    const s = this.validator.validate("serial-link", spec);
    const owner = checkOwner(opts.owner);
    await this.guarded(`serial link ${s.name}`, `link-${s.name}`, opts, () => this.links.ensure(s, owner));
    return { name: s.name, up: true };
  }
  serialLinkInfo(name: string): Promise<SerialLinkInfo | undefined> {
    const r = this.links.get(name);
    return Promise.resolve(r && { name, up: this.links.isUp(r) });
  }
  async removeSerialLink(name: string, opts: CallOptions = {}): Promise<void> {
    const owner = checkOwner(opts.owner);
    return this.removing(`removing serial link ${name}`, `link-${name}`, opts, () =>
      this.links.remove(name, owner),
    );
  }

  // Instances
  /** `timeoutMs` bounds the whole operation (a boot past it is killed); the spec's bootTimeoutMs, the boot. */
  async createInstance(
    spec: unknown,
    opts: CallOptions & { launcher?: Launcher } = {},
  ): Promise<InstanceInfo> {
    const s = this.validator.validate("instance", spec);
    traceBoot(s.name, "validated");
    const owner = checkOwner(opts.owner);
    refuseForeignUses(`instance ${JSON.stringify(s.name)}`, s, owner, this, this.stateDir);
    // A runAs account this host lacks, or a uid this process may not switch to: refused before anything is made.
    if (s.runAs && !s.runAs.pool) await resolveHostIds(s, { key: `check\0${s.name}`, others: [] });
    return withDeadline(`instance ${s.name}`, opts, async (signal) => {
      await this.instances.create(s, { signal, launcher: opts.launcher, owner });
      return this.instanceInfoNow(s.name);
    }).catch((e: unknown) => {
      throw stateWriteError(e, this.stateDir);
    });
  }
  planInstance(spec: unknown): Promise<ChangePlan> {
    return Promise.resolve(this.planInstanceUpdate(spec));
  }
  /** What applying `spec` to the existing instance would do (sync: no host access but its record). */
  planInstanceUpdate(spec: unknown): ChangePlan {
    const s = this.validator.validate("instance", spec);
    return this.instances.plan(s.name, s);
  }
  async updateInstance(
    spec: unknown,
    opts: CallOptions = {},
  ): Promise<{ plan: ChangePlan; info: InstanceInfo }> {
    const s = this.validator.validate("instance", spec);
    const owner = checkOwner(opts.owner);
    refuseForeignUses(`instance ${JSON.stringify(s.name)}`, s, owner, this, this.stateDir);
    return withDeadline(`instance ${s.name}`, opts, async (signal) => {
      const plan = await this.instances.update(s, { signal, owner });
      // A guest found stopped (drift) runs again after its update.
      await this.instances.start(s.name, { signal });
      return { plan, info: this.instanceInfoNow(s.name) };
    });
  }
  async startInstance(name: string, opts: CallOptions = {}): Promise<InstanceInfo> {
    return withDeadline(`starting ${name}`, opts, async (signal) => {
      await this.instances.start(name, { signal });
      return this.instanceInfoNow(name);
    }).catch((e: unknown) => {
      throw stateWriteError(e, this.stateDir);
    });
  }
  stopInstance(name: string, opts: StopOptions = {}): Promise<void> {
    return this.instances.stop(name, opts);
  }
  restartInstance(name: string, opts?: StartOptions & StopOptions): Promise<InstanceStatus> {
    return this.instances.restart(name, opts);
  }
  async removeInstance(name: string, opts: StopOptions & CallOptions = {}): Promise<void> {
    // Refused before its links go with it (instances.remove checks again, under its lock).
    const owner = checkOwner(opts.owner);
    refuseForeign("instance", name, this.instances.get(name), owner, "remove", this.stateDir);
    for (const link of this.links.linksOf(name)) await this.links.remove(link);
    await this.instances.remove(name, opts);
    this.state.pruneIfEmpty();
  }
  instanceInfo(name: string): Promise<InstanceInfo | undefined> {
    return Promise.resolve(this.instances.get(name) ? this.instanceInfoNow(name) : undefined);
  }
  instanceStatus(name: string): InstanceStatus {
    return this.instances.status(name);
  }
  /** Status plus uptime, kernel version and devices, asked of the running guest through mconsole. */
  inspectInstance(name: string) {
    return this.instances.inspect(name);
  }
  exec(name: string, script: string, opts?: CallOptions): Promise<ExecResult> {
    return this.instances.exec(name, script, opts);
  }

  // Instance groups
  async applyGroup(
    spec: unknown,
    previous?: InstanceGroupSpec,
    opts: CallOptions = {},
  ): Promise<{ result: Awaited<ReturnType<InstanceGroups["apply"]>>; members: Record<string, MemberInfo> }> {
    const s = this.validator.validate("instance-group", spec);
    const owner = checkOwner(opts.owner);
    return withDeadline(`instance group ${s.name}`, opts, async (signal) => {
      const result = await this.groups.apply(s, previous, signal, owner);
      return { result, members: await this.groupInfo(s) };
    });
  }
  async removeGroup(spec: InstanceGroupSpec, opts: CallOptions = {}): Promise<void> {
    const owner = checkOwner(opts.owner);
    await withDeadline(`removing instance group ${spec.name}`, opts, () => this.groups.remove(spec, owner));
  }
  /**
   * Per member: its instance; `missing` for one gone from the host; `damaged`
   * (with the `problem`) for one whose overlay is gone: drift that the next
   * apply repairs.
   */
  groupInfo(spec: InstanceGroupSpec): Promise<Record<string, MemberInfo>> {
    return Promise.resolve(
      Object.fromEntries(
        Object.keys(spec.members).map((m): [string, MemberInfo] => {
          if (!this.instances.get(m)) return [m, { state: "missing" }];
          const problem = this.groups.overlayProblem(spec.base, m);
          const info = this.instanceInfoNow(m);
          return [m, problem ? { ...info, state: "damaged", problem } : info];
        }),
      ),
    );
  }

  /** Stop and remove everything in the state folder (links, instances, networks, disks, bases), whoever owns it. */
  async destroyAll(opts?: StopOptions): Promise<void> {
    for (const l of this.state.list("links")) await this.removeSerialLink(l);
    for (const i of this.instances.list()) await this.removeInstance(i, opts);
    for (const n of this.state.list("networks")) await this.removeNetwork(n);
    for (const d of this.state.list("disks")) await this.removeDisk(d);
    for (const b of this.state.list("bases")) await this.removeBase(b, { allOwners: true });
  }

  /** The instance's status, and the identity of its folder (a new one for an instance made again). */
  private instanceInfoNow(name: string): InstanceInfo {
    const st = this.instances.status(name);
    const dir = statSync(this.state.instanceDir(name));
    return { ...st, instanceId: digest16(`${name}\0${dir.ino}\0${dir.birthtimeMs}`) };
  }

  /** One operation on one resource: under the caller's deadline, holding the resource's lock. */
  private guarded<T>(
    what: string,
    key: string,
    opts: CallOptions,
    fn: (signal: AbortSignal) => Promise<T>,
  ): Promise<T> {
    return withDeadline(what, opts, (signal) =>
      withLock(this.state, key, () => fn(signal), LOCK_WAIT_MS, signal),
    ).catch((e: unknown) => {
      throw stateWriteError(e, this.stateDir);
    });
  }

  /**
   * A removal: guarded, then the state folder is pruned after the lock is
   * released. Removals run concurrently, and whichever ends last must find
   * nothing left (a held lock counts).
   */
  private async removing(what: string, key: string, opts: CallOptions, fn: () => unknown): Promise<void> {
    await this.guarded(what, key, opts, async () => {
      await fn();
    });
    this.state.pruneIfEmpty();
  }
}

function baseInfo(r: BaseRecord, drift: string): BaseInfo {
  return { name: r.spec.name, imagePath: r.imagePath, imageSha: r.imageSha, sizeBytes: r.sizeBytes, drift };
}

/**
 * Identity of a file or folder made under a name: a new one when it is made
 * again. (The words hashed are those of earlier versions, which stacks hold.)
 */
const digest16 = (words: string) => createHash("sha256").update(words).digest("hex").slice(0, 16);

export type { SpecOf };
