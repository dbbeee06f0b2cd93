import type { NicSpec, SpecOf } from "../../spec";
import type { ProcessIdentity } from "../../process";
import { deterministicMac } from "../../uml/mac";
import type { BootNic, NicDriver } from "../../uml/argv";
import type { Launcher } from "../launcher";
import type { Owned } from "../owners";
import type { WirefilterRecord } from "../impairment";

export type Spec = SpecOf["instance"];

export interface InstanceRecord extends Owned {
  schemaVersion: number;
  /** The spec in effect (hot-plugged changes included). */
  spec: Spec;
  /** The sandbox's process-group leader (bwrap, outside the namespaces) while the instance runs. */
  process?: ProcessIdentity;
  /**
   * The sandbox's pid 1 (host pid): killing it ends every process of the
   * guest (its pid namespace), and mconsole is spoken from inside its mount
   * namespace. Unset for guests started before umlfleet recorded it.
   */
  sandbox?: ProcessIdentity;
  startedAtMs?: number;
  /** True from a launch until its boot is complete (ready, memory ballooned). */
  booting?: boolean;
  bootCount: number;
  argv?: string[];
  /** The NIC driver of the kernel last booted. */
  nicDriver?: NicDriver;
  /** The exit status of the startup script in the last boot (guest-setup.ts). */
  startupExitCode?: number;
  /** The host uid and gid its kernel ran as in the last boot (spec.runAs; host-users.ts). */
  hostIds?: { uid: number; gid: number };
  /** Per NIC index: the wirefilter an impaired NIC is plugged into (impairment.ts). */
  wirefilters?: Record<string, WirefilterRecord>;
}

export interface InstanceStatus {
  name: string;
  state: "running" | "stopped";
  pid?: number;
  startedAtMs?: number;
  consoleLog: string;
  mconsoleSocket: string;
  /** Per serial line: the FIFO the guest reads (`in`) and the one it writes (`out`). */
  serialLines: { line: number; device: string; in: string; out: string }[];
  nics: { index: number; device: string; network: string; mac: string; ipv4?: string }[];
  disks: { index: number; device: string; disk: string; readOnly: boolean }[];
  memoryMiB: number;
  /** What the guest booted with: memoryMiB can grow live up to this. */
  maxMemoryMiB: number;
  bootCount: number;
  /** The startup script's exit status in this boot (none without a startup script). */
  startupExitCode?: number;
}

export interface StartOptions {
  /** Readiness deadline for a boot. Default: the spec's bootTimeoutMs. */
  timeoutMs?: number;
  /** Aborting stops the operation; a boot under way is killed and cleaned up. */
  signal?: AbortSignal;
  /** Starts the guest's process. Default: spawned by this process; instance groups start theirs in batches. */
  launcher?: Launcher;
  /** The stack making or changing it (owners.ts): another stack's instance is refused. */
  owner?: string;
}
export interface StopOptions {
  /** Total budget for the graceful steps before SIGKILL. Default 30 s. */
  timeoutMs?: number;
  /** Aborting skips what is left of the graceful steps: the guest is killed. */
  signal?: AbortSignal;
  /** The stack removing it (owners.ts): another stack's instance is refused. */
  owner?: string;
}

/** Where the hostfs root sits inside every sandbox; shares are its sub-folders. */
export const HOSTFS_ROOT = "/umlfleet-shares";
/** UML's folder for pid and mconsole socket: vm/u/ (uml_dir=vm, umid=u). */
export const UMID = "u";
/** A disk's link in vm/: a direct entry, so no folder the guest could replace lies on the host's path to it. */
export const vmDiskEntry = (disk: string) => `disk-${disk}`;
/** UML has ubd0..ubd15; swap takes the last, so hot-plugged disks never collide with it. */
export const SWAP_UBD_INDEX = 15;
/** Fds of the UML process: 0 /dev/null, 1+2 console, 3/4 control, 5.. serial pairs, then bwrap's and shares. */
export const FD_CONTROL_IN = 3;

/** A NIC as the kernel's argv names it; `ptp` plugs it into its wirefilter instead of the switch. */
export function bootNic(
  name: string,
  index: number,
  nic: NicSpec,
  switchDir: string,
  driver: NicDriver,
  ptp?: string,
): BootNic {
  const mac = nicMac(name, index, nic);
  return {
    index,
    driver,
    switchDir,
    mac,
    ...(nic.ipv4 ? { ipv4: nic.ipv4 } : {}),
    ...(nic.mtu !== undefined ? { mtu: nic.mtu } : {}),
    ...(ptp ? { ptp } : {}),
  };
}

export function nicMac(instance: string, index: number, nic: NicSpec): string {
  return nic.mac ?? deterministicMac(instance, index, nic.network);
}
