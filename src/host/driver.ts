import type { ChangePlan, GroupApplyResult } from "../change-plan";
import type { ExecResult } from "./guest-channel";
import type { HostFact } from "./host-facts";
import type { InstanceStatus } from "./instance";
import type { BaseSpec, DiskSpec, InstanceGroupSpec, KernelSpec, NetworkSpec, SerialLinkSpec } from "../spec";

/**
 * The one port between the Pulumi provider and a host: everything the
 * provider does to a host goes through it, as plain serializable records.
 * `LocalRuntime` implements it on the machine it runs on; the agent client
 * (issue #11) implements it over SSH. Every method is async, validates its
 * spec before any side effect (UMLFLEET_INVALID_SPEC), and takes a deadline
 * that cancels: when `signal` aborts or `timeoutMs` passes, the operation
 * stops, cleans up what it had begun, and throws UMLFLEET_CANCELLED or
 * UMLFLEET_OPERATION_TIMEOUT.
 */
export interface HostDriver {
  /** The host's state folder (a resource's `stateDir` when it names none). */
  readonly stateDir: string;

  /** What this host has of what umlfleet needs (`umlfleet doctor`). */
  hostFacts(opts?: CallOptions): Promise<HostFact[]>;
  /** Everything in the state folder. */
  inventory(opts?: CallOptions): Promise<Inventory>;

  /** Check a kernel binary, or build one (cached by content hash); its facts. */
  ensureKernel(spec: KernelSpec, opts?: CallOptions): Promise<KernelInfo>;
  /** The facts of the kernel at `path`, or undefined when it is gone. */
  kernelInfo(path: string, opts?: CallOptions): Promise<KernelInfo | undefined>;

  ensureBase(spec: BaseSpec, opts?: CallOptions): Promise<BaseInfo>;
  baseInfo(name: string, opts?: CallOptions): Promise<BaseInfo | undefined>;
  removeBase(name: string, opts?: CallOptions): Promise<void>;

  ensureDisk(spec: DiskSpec, opts?: CallOptions): Promise<DiskInfo>;
  diskInfo(name: string, opts?: CallOptions): Promise<DiskInfo | undefined>;
  removeDisk(name: string, opts?: CallOptions): Promise<void>;

  ensureNetwork(spec: NetworkSpec, opts?: CallOptions): Promise<NetworkInfo>;
  networkInfo(name: string, opts?: CallOptions): Promise<NetworkInfo | undefined>;
  removeNetwork(name: string, opts?: CallOptions): Promise<void>;

  ensureSerialLink(spec: SerialLinkSpec, opts?: CallOptions): Promise<SerialLinkInfo>;
  serialLinkInfo(name: string, opts?: CallOptions): Promise<SerialLinkInfo | undefined>;
  removeSerialLink(name: string, opts?: CallOptions): Promise<void>;

  /** Define and boot an instance; adopts one that exists with this spec. */
  createInstance(spec: unknown, opts?: CallOptions): Promise<InstanceInfo>;
  /** What applying `spec` to the existing instance would do, field by field. */
  planInstance(spec: unknown, opts?: CallOptions): Promise<ChangePlan>;
  /** Apply a changed spec (live, else restart), then make sure it runs. */
  updateInstance(spec: unknown, opts?: CallOptions): Promise<{ plan: ChangePlan; info: InstanceInfo }>;
  startInstance(name: string, opts?: CallOptions): Promise<InstanceInfo>;
  stopInstance(name: string, opts?: CallOptions): Promise<void>;
  removeInstance(name: string, opts?: CallOptions): Promise<void>;
  instanceInfo(name: string, opts?: CallOptions): Promise<InstanceInfo | undefined>;
  exec(name: string, script: string, opts?: CallOptions): Promise<ExecResult>;

  /** Make the host match a group; `previous` is the spec last applied. */
  applyGroup(
    spec: unknown,
    previous?: InstanceGroupSpec,
    opts?: CallOptions,
  ): Promise<{ result: GroupApplyResult; members: Record<string, MemberInfo> }>;
  removeGroup(spec: InstanceGroupSpec, opts?: CallOptions): Promise<void>;
  groupInfo(spec: InstanceGroupSpec, opts?: CallOptions): Promise<Record<string, MemberInfo>>;
}

/**
 * A deadline for one call (both may be given; whichever comes first ends
 * it), and who calls. `owner` is the calling stack (`<project>/<stack>`): a
 * base it ensures counts it as an owner, and everything else it makes is
 * its own; another stack's instance, disk, network or serial link is
 * refused with UMLFLEET_CONFLICT (src/host/owners.ts). Without it (tools,
 * tests) nothing is refused and nothing is claimed.
 */
export interface CallOptions {
  signal?: AbortSignal;
  timeoutMs?: number;
  owner?: string;
}

export interface KernelInfo {
  /** What instances boot: the binary given, or the cached build. */
  path: string;
  sha256: string;
  version: string;
}

export interface BaseInfo {
  name: string;
  imagePath: string;
  /** sha256 of the image bytes as recorded when it was made. */
  imageSha: string;
  sizeBytes: number;
  /** "" while the image holds its recorded bytes; otherwise what was found. */
  drift: string;
}

export interface DiskInfo {
  name: string;
  path: string;
  sizeBytes: number;
  backingPath?: string;
  /** Identity of this disk file: a disk made again under the same name gets a new one. */
  diskId: string;
  /** Its file deleted, truncated or its overlay header changed behind our back (Disks.problem). */
  problem?: string;
}

export interface NetworkInfo {
  name: string;
  switchDir: string;
  running: boolean;
  pid?: number;
}

export interface SerialLinkInfo {
  name: string;
  up: boolean;
}

/** An instance's status plus the identity of its folder (a new one for an instance made again). */
export type InstanceInfo = InstanceStatus & { instanceId: string };

/**
 * A group member as refresh sees it: its instance, `missing` (its folder is
 * gone) or `damaged` (its overlay is gone or over another base: `problem`).
 */
export type MemberInfo =
  InstanceInfo | { state: "missing" } | (Omit<InstanceInfo, "state"> & { state: "damaged"; problem: string });

export interface Inventory {
  bases: string[];
  disks: string[];
  networks: string[];
  instances: string[];
  links: string[];
  /** Per kind and name, the stacks that own it (absent: made before owners were recorded, or by a tool). */
  owners?: Partial<Record<"bases" | "disks" | "networks" | "instances" | "links", Record<string, string[]>>>;
}
