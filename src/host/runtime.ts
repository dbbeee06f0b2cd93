import type { BaseSpec, DiskSpec, NetworkSpec, SerialLinkSpec, SpecOf } from "../spec";
import { SpecValidator } from "../validation";
import type { ChangePlan } from "./change-plan";
import { Disks, type DiskRecord } from "./disks";
import type { ExecResult } from "./guest-channel";
import { InstanceGroups } from "./groups";
import { Images, type BaseRecord } from "./images";
import { Instances, type InstanceStatus, type StartOptions, type StopOptions } from "./instances";
import { Networks, type NetworkRecord, type NetworkStatus } from "./networks";
import { SerialLinks, type SerialLinkRecord } from "./serial-links";
import { StateDir, withLock } from "./state";

/** Where the default state folder came from, for an error that names it. */
function stateDirSource(env: NodeJS.ProcessEnv = process.env): string {
  return env.UMLFLEET_STATE_DIR ? "UMLFLEET_STATE_DIR" : env.XDG_STATE_HOME ? "XDG_STATE_HOME" : "HOME";
}

export interface LocalRuntimeOptions {
  /** The state folder. Default: $UMLFLEET_STATE_DIR, else $XDG_STATE_HOME/umlfleet, else ~/.local/state/umlfleet. */
  stateDir?: string;
}

/**
 * The embedded runtime for one host: the host driver the provider uses. Every
 * method validates its spec first (UMLFLEET_INVALID_SPEC, no side effect), and
 * any number of LocalRuntime objects, in any processes, may share a state folder.
 */
export class LocalRuntime {
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

  // Bases
  async ensureBase(spec: BaseSpec): Promise<BaseRecord> {
    const s = this.validator.validate("base", spec);
    return withLock(this.state, `base-${s.name}`, () =>
      this.images.ensure(s, { overlays: this.disks.overlaysOf(s.name) }),
    );
  }
  async removeBase(name: string): Promise<void> {
    await withLock(this.state, `base-${name}`, async () =>
      this.images.remove(name, this.disks.overlaysOf(name)),
    );
    // Every removal prunes after releasing its lock: removals run concurrently,
    // and whichever ends last must find nothing left (a held lock counts).
    this.state.pruneIfEmpty();
  }

  // Disks
  async ensureDisk(spec: DiskSpec): Promise<DiskRecord> {
    const s = this.validator.validate("disk", spec);
    return withLock(this.state, `disk-${s.name}`, () => this.disks.ensure(s));
  }
  async removeDisk(name: string): Promise<void> {
    const usedBy = this.instances.list().filter((i) => {
      const s = this.instances.get(i)!.spec;
      return [s.rootDisk, s.swapDisk, ...(s.disks ?? []).map((d) => d.disk)].includes(name);
    });
    await withLock(this.state, `disk-${name}`, async () => this.disks.remove(name, usedBy));
    this.state.pruneIfEmpty();
  }

  // Networks
  async ensureNetwork(spec: NetworkSpec): Promise<NetworkRecord> {
    const s = this.validator.validate("network", spec);
    return withLock(this.state, `network-${s.name}`, () => this.networks.ensure(s));
  }
  networkStatus(name: string): NetworkStatus | undefined {
    return this.networks.status(name);
  }
  async removeNetwork(name: string): Promise<void> {
    const usedBy = this.instances
      .list()
      .filter((i) => (this.instances.get(i)!.spec.nics ?? []).some((n) => n.network === name));
    await withLock(this.state, `network-${name}`, () => this.networks.remove(name, usedBy));
    this.state.pruneIfEmpty();
  }

  // Instances
  async createInstance(spec: unknown, opts?: StartOptions): Promise<InstanceStatus> {
    return this.instances.create(this.validator.validate("instance", spec), opts);
  }
  planInstanceUpdate(spec: unknown): ChangePlan {
    const s = this.validator.validate("instance", spec);
    return this.instances.plan(s.name, s);
  }
  async updateInstance(spec: unknown, opts?: StartOptions & StopOptions): Promise<ChangePlan> {
    return this.instances.update(this.validator.validate("instance", spec), opts);
  }
  instanceStatus(name: string): InstanceStatus {
    return this.instances.status(name);
  }
  /** Status plus uptime, kernel version and devices, asked of the running guest through mconsole. */
  inspectInstance(name: string) {
    return this.instances.inspect(name);
  }
  startInstance(name: string, opts?: StartOptions) {
    return this.instances.start(name, opts);
  }
  stopInstance(name: string, opts?: StopOptions) {
    return this.instances.stop(name, opts);
  }
  restartInstance(name: string, opts?: StartOptions & StopOptions) {
    return this.instances.restart(name, opts);
  }
  async removeInstance(name: string, opts?: StopOptions): Promise<void> {
    for (const link of this.links.linksOf(name)) await this.links.remove(link);
    await this.instances.remove(name, opts);
    this.state.pruneIfEmpty();
  }
  exec(name: string, script: string, opts?: { timeoutMs?: number }): Promise<ExecResult> {
    return this.instances.exec(name, script, opts);
  }

  // Serial links
  async ensureSerialLink(spec: SerialLinkSpec): Promise<SerialLinkRecord> {
    const s = this.validator.validate("serial-link", spec);
    return withLock(this.state, `link-${s.name}`, () => this.links.ensure(s));
  }
  async removeSerialLink(name: string): Promise<void> {
    await withLock(this.state, `link-${name}`, () => this.links.remove(name));
    this.state.pruneIfEmpty();
  }

  /** Everything in the state folder, for `umlfleet status` and leak checks. */
  inventory() {
    return {
      bases: this.state.list("bases"),
      disks: this.state.list("disks"),
      networks: this.state.list("networks"),
      instances: this.instances.list(),
      links: this.state.list("links"),
    };
  }

  /** Stop and remove everything in the state folder (links, instances, networks, disks, bases). */
  async destroyAll(opts?: StopOptions): Promise<void> {
    for (const l of this.state.list("links")) await this.removeSerialLink(l);
    for (const i of this.instances.list()) await this.removeInstance(i, opts);
    for (const n of this.state.list("networks")) await this.removeNetwork(n);
    for (const d of this.state.list("disks")) await this.removeDisk(d);
    for (const b of this.state.list("bases")) await this.removeBase(b);
  }
}

export type { SpecOf };
