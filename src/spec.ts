/**
 * Spec types, derived from schema/*.json (where every field's rules live)
 * through src/spec.generated.ts, which `npm run gen:spec` writes and
 * test/unit/spec-types.test.ts keeps in step with the schemas. What a schema
 * says in words the generator cannot type (a group member is an instance
 * spec without name, root disk and kernel; a kernel is a path or a build) is
 * refined here. Validated specs have their schema defaults filled in.
 */
import type * as G from "./spec.generated";

export type BaseSpec = G.BaseSpec;
export type BusyboxSource = Extract<BaseSpec["source"], { kind: "busybox" }>;
export type ImageSource = Extract<BaseSpec["source"], { kind: "image" }>;
export type DirectorySource = Extract<BaseSpec["source"], { kind: "directory" }>;

export type DebianSource = Extract<BaseSpec["source"], { kind: "debian" }>;

export type DiskSpec = G.DiskSpec;
export type NetworkSpec = G.NetworkSpec;
export type InstanceSpec = G.InstanceSpec;
export type NicSpec = NonNullable<InstanceSpec["nics"]>[number];
export type ShareSpec = NonNullable<InstanceSpec["shares"]>[number];
export type HostInterfaceSpec = NonNullable<NetworkSpec["hostInterface"]>;
export type CaptureSpec = NonNullable<NetworkSpec["capture"]>;
export type RouteSpec = NonNullable<NicSpec["routes"]>[number];
export type ImpairmentSpec = NonNullable<NicSpec["impairment"]>;
export type GuestFileSpec = NonNullable<InstanceSpec["files"]>[number];
export type SerialLinkSpec = G.SerialLinkSpec;
export type SerialLinkEnd = G.End;
/** LabChecks' spec (not a host resource: its checks run in guests through exec). */
export type LabChecksSpec = G.LabChecksSpec;
export type LabCheck = G.LabCheck;

/** A path, or a build: the schema's oneOf (the generator widens it with an index signature). */
export type KernelSpec = Pick<G.KernelSpec, "path" | "build">;

/** An instance spec after validation: schema defaults filled in. */
export type ResolvedInstanceSpec = InstanceSpec &
  Required<Pick<InstanceSpec, "kernel" | "memoryMiB" | "serialLines" | "readiness" | "bootTimeoutMs">>;

/**
 * Many instances as one unit (one Pulumi resource for a whole fleet): member
 * `m` is the instance `m` booting the overlay `m-root` over `base`. Each
 * member is checked against instance.json (src/validation.ts).
 */
export type InstanceGroupSpec = Omit<G.InstanceGroupSpec, "members"> & {
  members: Record<string, InstanceGroupMember>;
};
export type InstanceGroupMember = Omit<InstanceSpec, "name" | "rootDisk" | "kernel">;

export type SpecKind = "kernel" | "base" | "disk" | "network" | "instance" | "serial-link" | "instance-group";
export interface SpecOf {
  kernel: KernelSpec;
  base: BaseSpec;
  disk: DiskSpec;
  network: NetworkSpec;
  instance: ResolvedInstanceSpec;
  "serial-link": SerialLinkSpec;
  "instance-group": InstanceGroupSpec & { kernel: string };
}
