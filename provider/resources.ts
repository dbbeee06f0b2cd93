import * as pulumi from "@pulumi/pulumi";
import { HOST_OUTPUTS } from "./host-outputs";
import type { ChangePlan } from "../src/change-plan";
import { placement } from "./placement";
import { makeProvider } from "./shim";

/** Options every umlfleet resource takes. */
export interface HostArgs {
  /**
   * The host's state folder. Default: the Host's (`host.stateDir`); without
   * a host, $UMLFLEET_STATE_DIR, else ~/.local/state/umlfleet.
   */
  stateDir?: pulumi.Input<string>;
  /** Where the resource lives. Default: the machine running the provider. */
  host?: Host;
}

/** For a file a resource names (a Kernel's path, a base image). */
export interface UploadArgs {
  /**
   * On a target host: the file is on the machine running Pulumi; send it
   * there by content (sha256), once per host. Default false: the path is on
   * the host.
   */
  upload?: pulumi.Input<boolean>;
}

/** How to reach a target host over SSH (docs/hosts.md). */
export interface SshArgs {
  /** Host name or address. */
  host: pulumi.Input<string>;
  /** Default 22. */
  port?: pulumi.Input<number>;
  /** Default: ssh's (~/.ssh/config, else the local user). */
  user?: pulumi.Input<string>;
  /** An unencrypted private key; kept as a Pulumi secret. Default: ssh's own (ssh-agent, ~/.ssh). */
  privateKey?: pulumi.Input<string>;
  /** The host's public key, "ssh-ed25519 AAAA...": the only one accepted. Default: known_hosts decides. */
  hostKey?: pulumi.Input<string>;
  /** Accept any host key (throwaway hosts only). */
  insecureIgnoreHostKey?: pulumi.Input<boolean>;
  /** The agent command on the host. Default ["umlfleet-agent"]. */
  agentCommand?: pulumi.Input<pulumi.Input<string>[]>;
  /** The state folder on the host. Default: the agent's ($UMLFLEET_STATE_DIR, else ~/.local/state/umlfleet there). */
  stateDir?: pulumi.Input<string>;
  connectTimeoutMs?: pulumi.Input<number>;
}
export interface HostResourceArgs {
  /** A target host over SSH; without it, the machine running the provider. */
  ssh?: SshArgs;
}
/** One fact as the host reported it. */
export interface HostFactOutput {
  id: string;
  ok: boolean;
  detail: string;
}

/**
 * A machine resources live on: checked on create and refresh (the agent's
 * version must be the provider's; everything umlfleet needs must be there)
 * and described by its facts. Deleting it changes nothing on the machine.
 */
export class Host extends pulumi.dynamic.Resource {
  /** "local" or ssh://user@host:port. */
  declare readonly hostId: pulumi.Output<string>;
  declare readonly ssh: pulumi.Output<Record<string, unknown> | undefined>;
  /** The host's state folder (the default of the resources on it). */
  declare readonly stateDir: pulumi.Output<string>;
  /** umlfleet's version there. */
  declare readonly version: pulumi.Output<string>;
  /** The host's default UML kernel. */
  declare readonly kernels: pulumi.Output<
    { path: string; version: string; sha256: string; default: boolean }[]
  >;
  declare readonly vde2: pulumi.Output<string>;
  declare readonly bubblewrap: pulumi.Output<string>;
  declare readonly cores: pulumi.Output<number>;
  declare readonly memoryMiB: pulumi.Output<number>;
  /** Free space in the state folder's file system. */
  declare readonly freeDiskMiB: pulumi.Output<number>;
  declare readonly userNamespaces: pulumi.Output<boolean>;
  /** Whether guest RAM can live in an executable tmpfs (/dev/shm or the sandbox's /tmp). */
  declare readonly shmExec: pulumi.Output<boolean>;
  declare readonly netTun: pulumi.Output<boolean>;
  declare readonly facts: pulumi.Output<HostFactOutput[]>;
  /** Its name in the program, for messages. */
  readonly resourceName: string;
  constructor(name: string, args: HostResourceArgs = {}, o?: pulumi.CustomResourceOptions) {
    // A private key is a secret in the state, inputs and outputs alike, even when given in clear.
    const ssh = args.ssh && (args.ssh.privateKey !== undefined ? pulumi.secret(args.ssh) : args.ssh);
    const outputs = Object.fromEntries(HOST_OUTPUTS.map((k) => [k, undefined]));
    super(
      makeProvider("host"),
      name,
      { ...(ssh ? { ssh } : {}), ...outputs },
      { ...o, ...(args.ssh?.privateKey !== undefined ? { additionalSecretOutputs: ["ssh"] } : {}) },
      "umlfleet",
      "Host",
    );
    this.resourceName = name;
  }
}

/** Each Host's identity, how to reach it and its state folder, for a network across them. */
function spanning(hosts: Host[]): pulumi.Output<unknown> {
  return pulumi
    .all(hosts.map((h) => pulumi.all([h.hostId, h.ssh, h.stateDir])))
    .apply((hs) =>
      hs.map(([hostId, ssh, stateDir]) => (ssh ? { hostId, ssh, stateDir } : { hostId, stateDir })),
    );
}

/**
 * The stack declaring a resource, `<project>/<stack>`: an input the provider
 * passes to the host (which records it: a base is shared between stacks,
 * everything else is its stack's) and diff ignores.
 */
const stackOwner = () => `${pulumi.getProject()}/${pulumi.getStack()}`;

// Names are identities on a host: a replacement must delete the old one first.
// A resource on a target host records how to reach it (for delete), a key
// among it: `host` (and a spanning network's `hosts`) are secret outputs too.
const opts = (
  o?: pulumi.CustomResourceOptions,
  args?: { host?: unknown; hosts?: unknown },
): pulumi.CustomResourceOptions => {
  const secret = [...(args?.host ? ["host"] : []), ...(args?.hosts ? ["hosts"] : [])];
  return {
    deleteBeforeReplace: true,
    ...o,
    ...(secret.length > 0
      ? { additionalSecretOutputs: [...(o?.additionalSecretOutputs ?? []), ...secret] }
      : {}),
  };
};

/** Outputs that echo a login's password hash are secrets too (encrypted in the state, hidden in the CLI). */
const secretLogin = (o: pulumi.CustomResourceOptions, outputs: string[]): pulumi.CustomResourceOptions => ({
  ...o,
  additionalSecretOutputs: [...(o.additionalSecretOutputs ?? []), ...outputs],
});

/**
 * A UML kernel: an existing binary (default: Debian's /usr/bin/linux.uml), or
 * one built from Debian's linux-source-6.1 with the lean profile plus extra
 * Kconfig lines, cached by content hash. Changing it replaces the instances
 * that boot it.
 */
export type KernelArgs = HostArgs &
  UploadArgs &
  (
    | { path?: pulumi.Input<string>; build?: never }
    | { build: { profile?: "lean"; extraConfig?: pulumi.Input<string>[]; timeoutMs?: number }; path?: never }
  );
export class Kernel extends pulumi.dynamic.Resource {
  /** The kernel binary instances boot (for a build: the cached build's path). */
  declare readonly path: pulumi.Output<string>;
  declare readonly sha256: pulumi.Output<string>;
  declare readonly version: pulumi.Output<string>;
  /**
   * What instances boot: `path`, or the built kernel for a build form. Always
   * set: an output missing from state reads as unknown at preview, which
   * would make every instance booting this kernel preview as replaced.
   */
  declare readonly bootPath: pulumi.Output<string>;
  constructor(name: string, args: KernelArgs = {}, o?: pulumi.CustomResourceOptions) {
    const props = args.build ? { ...placement(args) } : { path: "/usr/bin/linux.uml", ...placement(args) };
    super(
      makeProvider("kernel"),
      name,
      { ...props, bootPath: undefined, sha256: undefined, version: undefined },
      opts(o, args),
      "umlfleet",
      "Kernel",
    );
  }
}

export interface InjectedFile {
  path: pulumi.Input<string>;
  content: pulumi.Input<string>;
  mode?: pulumi.Input<number>;
}
/** A shared, read-only, content-addressed root filesystem. */
export interface RootFilesystemArgs extends HostArgs, UploadArgs {
  /** Default: the resource name. */
  name?: pulumi.Input<string>;
  source:
    | { kind: "busybox"; sizeMiB?: pulumi.Input<number>; files?: pulumi.Input<InjectedFile>[] }
    | { kind: "image"; path: pulumi.Input<string> }
    | { kind: "directory"; path: pulumi.Input<string>; sizeMiB?: pulumi.Input<number> }
    | {
        /** A Debian root built by mmdebstrap (no root needed) from this machine's apt mirror, cached by content. */
        kind: "debian";
        suite: pulumi.Input<"bookworm" | "trixie">;
        /** Default "minbase". */
        variant?: pulumi.Input<"essential" | "apt" | "minbase" | "required" | "important" | "standard">;
        packages?: pulumi.Input<string>[];
        /** Default 1024. */
        sizeMiB?: pulumi.Input<number>;
        files?: pulumi.Input<InjectedFile>[];
      };
}
export class RootFilesystem extends pulumi.dynamic.Resource {
  declare readonly name: pulumi.Output<string>;
  declare readonly imagePath: pulumi.Output<string>;
  declare readonly imageSha: pulumi.Output<string>;
  declare readonly sizeBytes: pulumi.Output<number>;
  /**
   * "" while the image holds the bytes recorded when it was made; after a
   * refresh that found it changed or gone, what was found (the next up
   * restores it from its recipe when that gives the recorded bytes).
   */
  declare readonly drift: pulumi.Output<string>;
  /** The Host it is on (undefined: the machine running the provider). Not an output. */
  readonly placedOn: Host | undefined;
  constructor(name: string, args: RootFilesystemArgs, o?: pulumi.CustomResourceOptions) {
    super(
      makeProvider("base"),
      name,
      {
        name,
        ...placement(args),
        owner: stackOwner(),
        imagePath: undefined,
        imageSha: undefined,
        sizeBytes: undefined,
        drift: undefined,
      },
      opts(o, args),
      "umlfleet",
      "RootFilesystem",
    );
    this.placedOn = args.host;
  }
}

/** A block device file: a COW overlay over a base, or a blank or swap disk. */
export type DiskArgs = HostArgs & { name?: pulumi.Input<string> } & (
    | { kind: "overlay"; base: RootFilesystem }
    | { kind: "blank"; sizeMiB: pulumi.Input<number>; format?: pulumi.Input<"ext4" | "none"> }
    | { kind: "swap"; sizeMiB: pulumi.Input<number> }
  );
export class Disk extends pulumi.dynamic.Resource {
  declare readonly name: pulumi.Output<string>;
  declare readonly path: pulumi.Output<string>;
  declare readonly diskId: pulumi.Output<string>;
  declare readonly sizeBytes: pulumi.Output<number>;
  /**
   * "" while the file is as made; after a refresh that found it deleted,
   * truncated or with another overlay header, what was found, naming the
   * file: the next up replaces the disk (and its instance) with a new, empty one.
   */
  declare readonly drift: pulumi.Output<string>;
  /** The Host it is on (undefined: the machine running the provider). Not an output. */
  readonly placedOn: Host | undefined;
  constructor(name: string, args: DiskArgs, o?: pulumi.CustomResourceOptions) {
    // An overlay is a file beside its base: both on one host (a base per host, one recipe, one sha256).
    if (args.kind === "overlay" && args.base.placedOn !== args.host)
      throw new Error(
        `Disk ${name}: its base is on ${hostLabel(args.base.placedOn)}, the disk on ${hostLabel(args.host)}: declare a RootFilesystem with the same source on each host (same recipe, same bytes)`,
      );
    const props: Record<string, unknown> = {
      name,
      ...placement(args),
      owner: stackOwner(),
      path: undefined,
      diskId: undefined,
      sizeBytes: undefined,
      backingPath: undefined,
      drift: undefined,
    };
    if (args.kind === "overlay") {
      props.base = args.base.name;
      // The base's content hash: a new base (even under the same name) replaces the overlay.
      props.baseImageSha = args.base.imageSha;
    }
    super(makeProvider("disk"), name, props, opts(o, args), "umlfleet", "Disk");
    this.placedOn = args.host;
  }
}

/** A virtual switch; with `hosts`, one switch per host joined by cables (docs/hosts.md). */
export interface NetworkArgs extends HostArgs {
  name?: pulumi.Input<string>;
  hub?: pulumi.Input<boolean>;
  ports?: pulumi.Input<number>;
  /**
   * The host itself on this network, through a TAP interface attached to the
   * switch: made (and removed with the network) when umlfleet has
   * CAP_NET_ADMIN, else a persistent tap root made for you once.
   */
  hostInterface?: { name: pulumi.Input<string>; ipv4?: pulumi.Input<string> };
  /** Every frame on the network, in a pcap file on the host (the switch then forwards like a hub). */
  capture?: { path: pulumi.Input<string>; maxSizeMiB?: pulumi.Input<number> };
  /**
   * One L2 segment across these target hosts: a switch on each, cables from
   * the first to each other one (over SSH, run by the first host). Instances
   * on any of them attach to it by name. Replaces `host`.
   */
  hosts?: Host[];
  /**
   * With `hosts`, what carries frames between them: "ssh" (default:
   * encrypted, authenticated, needs no open port) or "udp" (a datagram per
   * frame, faster, neither encrypted nor authenticated: for hosts on a
   * trusted network that reach each other's addresses directly). Changing it
   * re-makes the cables only.
   */
  cable?: pulumi.Input<"ssh" | "udp">;
}
export class Network extends pulumi.dynamic.Resource {
  declare readonly name: pulumi.Output<string>;
  declare readonly switchDir: pulumi.Output<string>;
  declare readonly running: pulumi.Output<boolean>;
  /** With `hosts`: each host's switch. */
  declare readonly switches: pulumi.Output<
    { hostId: string; switchDir: string; running: boolean }[] | undefined
  >;
  /** With `hosts`: each cable, from the first host to another, its kind, and whether it is up (both ends, for UDP). */
  declare readonly cables: pulumi.Output<
    { name: string; from: string; to: string; kind: "ssh" | "udp"; up: boolean }[] | undefined
  >;
  constructor(name: string, args: NetworkArgs = {}, o?: pulumi.CustomResourceOptions) {
    super(
      makeProvider("network"),
      name,
      {
        name,
        ...placement({ ...args, hosts: undefined }),
        ...(args.hosts ? { hosts: spanning(args.hosts) } : {}),
        owner: stackOwner(),
        switchDir: undefined,
        running: undefined,
        pid: undefined,
        switches: undefined,
        cables: undefined,
      },
      opts(o, args),
      "umlfleet",
      "Network",
    );
  }
}

export interface RouteArgs {
  /** The destination network, e.g. "10.1.0.0/24" or "fd00:20::/64". */
  to: pulumi.Input<string>;
  /** The next hop, inside this NIC's subnet of the same family (or IPv6 link-local). */
  via: pulumi.Input<string>;
}
export interface NicArgs {
  network: Network;
  mac?: pulumi.Input<string>;
  ipv4?: pulumi.Input<string>;
  /** The NIC's MTU (68-1500, default 1500); 1458 across a UDP cable on a 1500-byte link (docs/hosts.md). Changes apply live. */
  mtu?: pulumi.Input<number>;
  /** An IPv6 address with prefix length, e.g. "fd00:10::1/64". */
  ipv6?: pulumi.Input<string>;
  /** The default route of its address family through this NIC. */
  gateway?: pulumi.Input<string>;
  routes?: RouteArgs[];
  /** Delay, loss, rate limit, duplicates or a cut link (`down`), applied live through a wirefilter. */
  impairment?: pulumi.Input<ImpairmentArgs>;
}
/** A NIC's link impairment (docs/resources.md): every change applies live, without a reboot. */
export interface ImpairmentArgs {
  delayMs?: pulumi.Input<number>;
  jitterMs?: pulumi.Input<number>;
  lossPercent?: pulumi.Input<number>;
  rateKbit?: pulumi.Input<number>;
  duplicatePercent?: pulumi.Input<number>;
  down?: pulumi.Input<boolean>;
}
/** A file written into the guest's root at every boot: `content`, or a host file `source`. */
export type GuestFileArgs = { path: pulumi.Input<string>; mode?: pulumi.Input<number> } & (
  { content: pulumi.Input<string>; source?: never } | { source: pulumi.Input<string>; content?: never }
);
export interface ShareArgs {
  name: pulumi.Input<string>;
  hostPath: pulumi.Input<string>;
  guestPath: pulumi.Input<string>;
  /** Default true. */
  readOnly?: pulumi.Input<boolean>;
}
/**
 * Who logs in to a guest: `user` (default root) with these SSH keys and/or
 * this crypt(3) password hash, set by umlfleet's init at every boot.
 */
export interface LoginArgs {
  user?: pulumi.Input<string>;
  sshPublicKeys?: pulumi.Input<string>[];
  /** A crypt(3) hash (`mkpasswd -m sha-512`); always kept as a Pulumi secret, even when given in clear. */
  passwordHash?: pulumi.Input<string>;
}
/** One UML guest. */
export interface InstanceArgs extends HostArgs {
  name?: pulumi.Input<string>;
  /** Default: Debian's kernel. */
  kernel?: Kernel;
  memoryMiB?: pulumi.Input<number>;
  maxMemoryMiB?: pulumi.Input<number>;
  rootDisk: Disk;
  disks?: { disk: Disk; readOnly?: pulumi.Input<boolean> }[];
  swapDisk?: Disk;
  nics?: NicArgs[];
  serialLines?: pulumi.Input<number>;
  shares?: ShareArgs[];
  hostname?: pulumi.Input<string>;
  kernelArgs?: pulumi.Input<string>[];
  readiness?: pulumi.Input<"marker" | "mconsole">;
  bootTimeoutMs?: pulumi.Input<number>;
  consoleLogKiB?: pulumi.Input<number>;
  /** Files written into the guest's root at every boot, before the startup script. */
  files?: GuestFileArgs[];
  /** A shell script umlfleet's init runs at every boot; its exit status is `startupExitCode`. */
  startup?: pulumi.Input<string>;
  /** A non-zero exit of `startup` fails the boot. Default false. */
  startupMustSucceed?: pulumi.Input<boolean>;
  /** An account and its SSH keys or password hash, set at every boot (a change restarts the guest). */
  login?: LoginArgs;
  /**
   * The host user the guest's kernel runs as: a host account, a uid of the
   * host's pool, or the pool's lowest free uid. Needs umlfleet to run as root.
   */
  runAs?: { user: pulumi.Input<string> } | { uid: pulumi.Input<number> } | { pool: true };
}
export interface SerialPort {
  line: number;
  device: string;
  in: string;
  out: string;
}
export class Instance extends pulumi.dynamic.Resource {
  declare readonly name: pulumi.Output<string>;
  declare readonly state: pulumi.Output<"running" | "stopped">;
  declare readonly pid: pulumi.Output<number | undefined>;
  declare readonly consoleLog: pulumi.Output<string>;
  declare readonly mconsoleSocket: pulumi.Output<string>;
  declare readonly serialPorts: pulumi.Output<SerialPort[]>;
  declare readonly nicInfo: pulumi.Output<
    { index: number; device: string; network: string; mac: string; ipv4?: string }[]
  >;
  declare readonly bootCount: pulumi.Output<number>;
  /** The startup script's exit status in the current boot (undefined without a startup script). */
  declare readonly startupExitCode: pulumi.Output<number | undefined>;
  declare readonly lastChange: pulumi.Output<ChangePlan | undefined>;
  /** Changes only when the instance is replaced (not on restart). */
  declare readonly instanceId: pulumi.Output<string>;
  /** The root disk's identity (an input): changes when the root disk is replaced. */
  declare readonly rootDiskId: pulumi.Output<string>;
  /** The kernel binary the instance boots (an input). */
  declare readonly kernel: pulumi.Output<string | undefined>;
  /** The Host it runs on (undefined: the machine running the provider). Not an output. */
  readonly placedOn: Host | undefined;
  constructor(name: string, args: InstanceArgs, o?: pulumi.CustomResourceOptions) {
    const { kernel, rootDisk, host, stateDir, ...rest } = args;
    for (const [field, d] of [
      ["rootDisk", rootDisk],
      ...(args.disks ?? []).map((x, i) => [`disks[${i}]`, x.disk] as const),
      ...(args.swapDisk ? [["swapDisk", args.swapDisk] as const] : []),
    ] as const)
      if (d.placedOn !== host)
        throw new Error(
          `Instance ${name}: ${field} is on ${hostLabel(d.placedOn)}, the instance on ${hostLabel(host)}`,
        );
    const props: Record<string, unknown> = {
      name,
      ...placement({ host, stateDir }),
      ...memberProps(rest),
      rootDisk: rootDisk.name,
      rootDiskId: rootDisk.diskId,
      ...(kernel ? { kernel: kernel.bootPath, kernelSha256: kernel.sha256 } : {}),
      owner: stackOwner(),
      state: undefined,
      pid: undefined,
      consoleLog: undefined,
      mconsoleSocket: undefined,
      serialPorts: undefined,
      nicInfo: undefined,
      bootCount: undefined,
      startupExitCode: undefined,
      lastChange: undefined,
      instanceId: undefined,
    };
    super(
      makeProvider("instance"),
      name,
      props,
      args.login ? secretLogin(opts(o, args), ["login"]) : opts(o, args),
      "umlfleet",
      "Instance",
    );
    this.placedOn = host;
  }
}

/** An instance's own settings (no name, root disk or kernel): resources become their names. */
export type InstanceSettings = Omit<InstanceArgs, "name" | "rootDisk" | "kernel" | "stateDir" | "host">;
function memberProps(args: InstanceSettings): Record<string, unknown> {
  const { disks, swapDisk, nics, login, ...rest } = args;
  return {
    ...rest,
    // The hash is wrapped as a secret here, so the state holds it encrypted however the program passed it.
    ...(login
      ? {
          login: {
            ...login,
            ...(login.passwordHash !== undefined ? { passwordHash: pulumi.secret(login.passwordHash) } : {}),
          },
        }
      : {}),
    ...(disks
      ? {
          disks: disks.map((d) => ({
            disk: d.disk.name,
            ...(d.readOnly !== undefined ? { readOnly: d.readOnly } : {}),
          })),
        }
      : {}),
    ...(swapDisk ? { swapDisk: swapDisk.name } : {}),
    ...(nics
      ? {
          nics: nics.map((n) => ({
            network: n.network.name,
            ...(n.mac ? { mac: n.mac } : {}),
            ...(n.ipv4 ? { ipv4: n.ipv4 } : {}),
            ...(n.mtu !== undefined ? { mtu: n.mtu } : {}),
            ...(n.ipv6 ? { ipv6: n.ipv6 } : {}),
            ...(n.gateway ? { gateway: n.gateway } : {}),
            ...(n.routes ? { routes: n.routes } : {}),
            ...(n.impairment ? { impairment: n.impairment } : {}),
          })),
        }
      : {}),
  };
}

/** What an instance group reports per member (the outputs an Instance has). */
export interface MemberInfo {
  /** `damaged`: its overlay is gone (see `problem`); the next `up` remakes it on a new one. */
  state: "running" | "stopped" | "missing" | "damaged";
  problem?: string;
  pid?: number;
  consoleLog?: string;
  mconsoleSocket?: string;
  serialPorts?: SerialPort[];
  nicInfo?: { index: number; device: string; network: string; mac: string; ipv4?: string }[];
  bootCount?: number;
  startupExitCode?: number;
  instanceId?: string;
}

/**
 * Many instances as one resource: member `m` boots its own COW overlay
 * `m-root` over `base`, on `kernel`. One create boots every member at once,
 * and one diff covers them all, so a 32-guest fleet costs the Pulumi engine
 * one resource instead of 64. Members are added, changed (live or by restart)
 * and removed in place; a new kernel or base replaces the group.
 */
export interface InstanceGroupArgs extends HostArgs {
  /** Default: the resource name. */
  name?: pulumi.Input<string>;
  base: RootFilesystem;
  /** Default: Debian's kernel. */
  kernel?: Kernel;
  /** Member name (at most 27 characters) to its settings. */
  members: Record<string, InstanceSettings>;
}
export class InstanceGroup extends pulumi.dynamic.Resource {
  declare readonly name: pulumi.Output<string>;
  /** Per member, its state, pid, console log, NICs, serial ports, boot count. */
  declare readonly memberInfo: pulumi.Output<Record<string, MemberInfo>>;
  /** The members' settings (an input, echoed). */
  declare readonly members: pulumi.Output<Record<string, unknown>>;
  declare readonly base: pulumi.Output<string>;
  declare readonly baseImageSha: pulumi.Output<string>;
  declare readonly kernel: pulumi.Output<string | undefined>;
  declare readonly kernelSha256: pulumi.Output<string | undefined>;
  declare readonly lastChange: pulumi.Output<string | undefined>;
  /** The Host it runs on (undefined: the machine running the provider). Not an output. */
  readonly placedOn: Host | undefined;
  constructor(name: string, args: InstanceGroupArgs, o?: pulumi.CustomResourceOptions) {
    const { base, kernel, members, ...rest } = args;
    super(
      makeProvider("instance-group"),
      name,
      {
        name,
        ...placement(rest),
        base: base.name,
        // The base's content hash: a new base (even under the same name) replaces the group.
        baseImageSha: base.imageSha,
        ...(kernel ? { kernel: kernel.bootPath, kernelSha256: kernel.sha256 } : {}),
        members: Object.fromEntries(Object.entries(members).map(([m, a]) => [m, memberProps(a)])),
        owner: stackOwner(),
        memberInfo: undefined,
        lastChange: undefined,
      },
      Object.values(members).some((m) => m.login) ? secretLogin(opts(o, args), ["members"]) : opts(o, args),
      "umlfleet",
      "InstanceGroup",
    );
    this.placedOn = args.host;
  }

  /** One member, usable wherever an instance is (e.g. a SerialLink end). */
  member(name: string): InstanceGroupMember {
    return new InstanceGroupMember(this, name);
  }
}

/** A member of an InstanceGroup: its name and outputs. */
export class InstanceGroupMember {
  /** Known at preview while the group is updated in place (derived from an echoed input). */
  readonly name: pulumi.Output<string>;
  readonly state: pulumi.Output<MemberInfo["state"]>;
  readonly pid: pulumi.Output<number | undefined>;
  readonly consoleLog: pulumi.Output<string | undefined>;
  readonly serialPorts: pulumi.Output<SerialPort[]>;
  readonly nicInfo: pulumi.Output<NonNullable<MemberInfo["nicInfo"]>>;
  readonly bootCount: pulumi.Output<number | undefined>;
  readonly startupExitCode: pulumi.Output<number | undefined>;
  /** What identifies this member's machine for a serial link: the group's base and kernel. */
  readonly linkIdentity: pulumi.Output<string>[];
  constructor(
    readonly group: InstanceGroup,
    memberName: string,
  ) {
    this.name = group.members.apply(() => memberName);
    const info = group.memberInfo.apply((mi) => mi[memberName] ?? { state: "missing" as const });
    this.state = info.apply((i) => i.state);
    this.pid = info.apply((i) => i.pid);
    this.consoleLog = info.apply((i) => i.consoleLog);
    this.serialPorts = info.apply((i) => i.serialPorts ?? []);
    this.nicInfo = info.apply((i) => i.nicInfo ?? []);
    this.bootCount = info.apply((i) => i.bootCount);
    this.startupExitCode = info.apply((i) => i.startupExitCode);
    this.linkIdentity = [
      pulumi.interpolate`${group.base}@${group.baseImageSha}`,
      pulumi.interpolate`${group.kernel}@${group.kernelSha256}`,
    ];
  }
}

/** A null-modem cable between serial line `a.line` of one instance and `b.line` of another. */
export interface SerialLinkArgs extends HostArgs {
  name?: pulumi.Input<string>;
  a: { instance: Instance | InstanceGroupMember; line: pulumi.Input<number> };
  b: { instance: Instance | InstanceGroupMember; line: pulumi.Input<number> };
}
export class SerialLink extends pulumi.dynamic.Resource {
  declare readonly up: pulumi.Output<boolean>;
  constructor(name: string, args: SerialLinkArgs, o?: pulumi.CustomResourceOptions) {
    const where = (e: SerialLinkArgs["a"]) =>
      e.instance instanceof InstanceGroupMember ? e.instance.group.placedOn : e.instance.placedOn;
    const [hostA, hostB] = [where(args.a), where(args.b)];
    // A serial line is a pair of FIFOs on one host: relaying it over SSH is not built yet.
    if (hostA !== hostB)
      throw new Error(
        `SerialLink ${name}: a.instance and b.instance are on different hosts (${hostLabel(hostA)}, ${hostLabel(hostB)}): a serial link across hosts is not supported; put both instances on one host, or join them with a Network across hosts instead`,
      );
    if (args.host && args.host !== hostA)
      throw new Error(`SerialLink ${name}: host must be the host its instances run on`);
    const end = (e: SerialLinkArgs["a"]) => ({ instance: e.instance.name, line: e.line });
    super(
      makeProvider("serial-link"),
      name,
      {
        name,
        ...placement({ ...args, host: hostA }),
        a: end(args.a),
        b: end(args.b),
        // Identity of both ends: a replaced instance gets new serial FIFOs, so
        // the link is remade. Echoed inputs, not outputs: they stay known at
        // preview while an instance is updated in place, and turn unknown
        // exactly when it is replaced (new root disk or kernel).
        instanceIds: [...linkIdentity(args.a.instance), ...linkIdentity(args.b.instance)],
        owner: stackOwner(),
        up: undefined,
      },
      opts(o, { host: hostA }),
      "umlfleet",
      "SerialLink",
    );
  }
}

/** A Host for a message: its Pulumi name, or the local host. */
function hostLabel(h: Host | undefined): string {
  return h ? `Host ${h.resourceName}` : "the local host";
}

function linkIdentity(i: Instance | InstanceGroupMember): pulumi.Input<string | undefined>[] {
  return i instanceof InstanceGroupMember ? i.linkIdentity : [i.rootDiskId, i.kernel];
}
