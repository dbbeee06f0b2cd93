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

/**
 * A Debian root built by mmdebstrap from the host's apt mirror, cached by the
 * content hash of this source (src/host/distro.ts).
 */
export interface DebianSource {
  kind: "debian";
  suite: "bookworm" | "trixie";
  /** mmdebstrap's package set. Default "minbase". */
  variant?: "essential" | "apt" | "minbase" | "required" | "important" | "standard";
  /** More packages (with their dependencies); their maintainer scripts run without a network. */
  packages?: string[];
  /** Image size in MiB. Default 1024. */
  sizeMiB?: number;
  /** Files written into the image after the packages. */
  files?: { path: string; content: string; mode?: number }[];
}

export interface BaseSpec {
  name: string;
  source: BusyboxSource | ImageSource | DirectorySource | DebianSource;
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
}

export interface NicSpec {
  network: string;
  mac?: string;
  ipv4?: string;
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
