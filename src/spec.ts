/**
 * Spec types. They mirror schema/*.json, which is where every field's rules
 * live; test/unit/schema-types.test.ts checks that the two list the same fields.
 * Validated specs have their schema defaults filled in.
 */

export interface BusyboxSource {
  kind: "busybox";
  /** Image size in MiB. Default 64. */
  sizeMiB?: number;
  /** Files injected into the image. */
  files?: { path: string; content: string; mode?: number }[];
}
export interface ImageSource {
  kind: "image";
  /** An existing filesystem image on the host; it is copied. */
  path: string;
}
export interface DirectorySource {
  kind: "directory";
  /** A host directory tree made into an ext4 image. */
  path: string;
  sizeMiB?: number;
}

export interface BaseSpec {
  name: string;
  source: BusyboxSource | ImageSource | DirectorySource;
}

export interface DiskSpec {
  name: string;
  kind: "overlay" | "blank" | "swap";
  /** overlay: the base it is bound to. */
  base?: string;
  /** blank and swap: size in MiB. */
  sizeMiB?: number;
  /** blank: "ext4" makes a filesystem on it. Default "none". */
  format?: "ext4" | "none";
}

export interface NetworkSpec {
  name: string;
  /** Repeat every frame to every port. Default false. */
  hub?: boolean;
  /** Switch ports. Default 64. */
  ports?: number;
  /** The host on this network, through a TAP interface attached to the switch. */
  hostInterface?: HostInterfaceSpec;
  /** Every frame on the network, written to a pcap file on the host (the switch then forwards like a hub). */
  capture?: CaptureSpec;
}

export interface HostInterfaceSpec {
  /** The tap's name on the host (at most 15 characters). */
  name: string;
  /** The host's address on the network, e.g. 10.0.0.254/24. */
  ipv4?: string;
}

export interface CaptureSpec {
  /** A .pcap file in an allowed capture folder (see docs/resources.md). */
  path: string;
  /** Frames beyond this size are counted, not written. Default 64. */
  maxSizeMiB?: number;
}

export interface RouteSpec {
  /** The destination network, e.g. 10.1.0.0/24 or fd00:20::/64. */
  to: string;
  /** The next hop: inside this NIC's subnet of the same family (or IPv6 link-local). */
  via: string;
}

export interface NicSpec {
  network: string;
  mac?: string;
  ipv4?: string;
  /** An IPv6 address with prefix length. */
  ipv6?: string;
  /** The default route of its family through this NIC. */
  gateway?: string;
  routes?: RouteSpec[];
}

/** A file umlfleet's init writes into the guest at every boot. */
export interface GuestFileSpec {
  path: string;
  /** The file's text (exactly one of content and source). */
  content?: string;
  /** A host file, read at each boot. */
  source?: string;
  /** Default 0o644. */
  mode?: number;
}

export interface ShareSpec {
  name: string;
  hostPath: string;
  guestPath: string;
  /** Default true. */
  readOnly?: boolean;
}

export interface InstanceSpec {
  name: string;
  /** Default: the host's default kernel ($UMLFLEET_KERNEL, else /usr/bin/linux.uml). */
  kernel?: string;
  /** Default 64. Changes up to maxMemoryMiB apply live (UML's memory balloon). */
  memoryMiB?: number;
  /** Memory the guest boots with; the balloon holds back the difference. Default: memoryMiB. */
  maxMemoryMiB?: number;
  rootDisk: string;
  disks?: { disk: string; readOnly?: boolean }[];
  swapDisk?: string;
  nics?: NicSpec[];
  /** Default 2. */
  serialLines?: number;
  shares?: ShareSpec[];
  hostname?: string;
  kernelArgs?: string[];
  /** Default "marker". */
  readiness?: "marker" | "mconsole";
  /** Default 60000. */
  bootTimeoutMs?: number;
  /** The most console output kept on the host (console.log + console.log.1). Default 2048. */
  consoleLogKiB?: number;
  /** Files written into the guest's root at every boot. */
  files?: GuestFileSpec[];
  /** A shell script run at every boot, after addresses and files; its exit status is reported. */
  startup?: string;
  /** A non-zero exit of `startup` fails the boot. Default false. */
  startupMustSucceed?: boolean;
}

export interface SerialLinkEnd {
  instance: string;
  line: number;
}
export interface SerialLinkSpec {
  name: string;
  a: SerialLinkEnd;
  b: SerialLinkEnd;
}

/** An instance spec after validation: schema defaults filled in. */
export type ResolvedInstanceSpec = InstanceSpec &
  Required<Pick<InstanceSpec, "kernel" | "memoryMiB" | "serialLines" | "readiness" | "bootTimeoutMs">>;

export interface KernelSpec {
  /** An existing UML kernel binary. */
  path?: string;
  /** Or build one: the lean profile plus extra Kconfig lines, cached by content hash. */
  build?: { profile?: "lean"; extraConfig?: string[]; timeoutMs?: number };
}

/**
 * Many instances as one unit (one Pulumi resource for a whole fleet): member
 * `m` is the instance `m` booting the overlay `m-root` over `base`.
 */
export interface InstanceGroupSpec {
  name: string;
  base: string;
  /** Default: the host's default kernel ($UMLFLEET_KERNEL, else /usr/bin/linux.uml). */
  kernel?: string;
  members: Record<string, InstanceGroupMember>;
}
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
