import * as pulumi from "@pulumi/pulumi";
import {
  type Host,
  InstanceGroup,
  type GuestFileArgs,
  type InstanceGroupMember,
  type InstanceSettings,
  type Kernel,
  type LoginArgs,
  type Network,
  type RootFilesystem,
} from "./resources";

/** N instances from one template: each gets its own COW overlay over `base` and a NIC on each network. */
export interface FleetArgs extends Omit<InstanceSettings, "nics" | "startup" | "files" | "login"> {
  size: number;
  base: RootFilesystem;
  kernel?: Kernel;
  networks?: Network[];
  /** Address of member `index` on network `networkIndex`, e.g. (i) => `10.0.0.${i + 1}/24`. */
  ipv4?: (index: number, networkIndex: number) => string | undefined;
  /** IPv6 address of member `index` on network `networkIndex`, e.g. (i) => `fd00:10::${i + 1}/64`. */
  ipv6?: (index: number, networkIndex: number) => string | undefined;
  /** Every member NIC's MTU (68-1500, default 1500): 1458 across a UDP cable on a 1500-byte link (docs/hosts.md). */
  mtu?: number;
  /** Every member's startup script, or member `index`'s. */
  startup?: pulumi.Input<string> | ((index: number) => pulumi.Input<string> | undefined);
  /** Every member's files, or member `index`'s. */
  files?: GuestFileArgs[] | ((index: number) => GuestFileArgs[] | undefined);
  /** Every member's login, or member `index`'s (e.g. one user's key per machine). */
  login?: LoginArgs | ((index: number) => LoginArgs | undefined);
  /** The host's state folder. */
  stateDir?: pulumi.Input<string>;
  /** Where the fleet lives. Default: the machine running the provider. */
  host?: Host;
}

/**
 * A fleet is one InstanceGroup: its members `<name>-0` ... `<name>-<size-1>`
 * boot together in one create, and a no-change `pulumi up` diffs one resource,
 * not two per member.
 */
export class Fleet extends pulumi.ComponentResource {
  readonly group: InstanceGroup;
  /** The members, in order; each usable wherever an instance is (e.g. a SerialLink end). */
  readonly instances: InstanceGroupMember[];

  constructor(name: string, args: FleetArgs, opts?: pulumi.ComponentResourceOptions) {
    super("umlfleet:index:Fleet", name, {}, opts);
    if (!Number.isInteger(args.size) || args.size < 0 || args.size > 1024) {
      throw new Error(
        `Fleet ${name}: size must be an integer from 0 to 1024 (got ${JSON.stringify(args.size)})`,
      );
    }
    const {
      size,
      base,
      networks = [],
      ipv4,
      ipv6,
      mtu,
      kernel,
      stateDir,
      startup,
      files,
      login,
      host,
      ...template
    } = args;
    const names = Array.from({ length: size }, (_, i) => `${name}-${i}`);
    const members = Object.fromEntries(
      names.map((member, i) => {
        const script = typeof startup === "function" ? startup(i) : startup;
        const own = typeof files === "function" ? files(i) : files;
        const who = typeof login === "function" ? login(i) : login;
        return [
          member,
          {
            ...template,
            nics: networks.map((network, n) => ({
              network,
              ...(ipv4?.(i, n) ? { ipv4: ipv4(i, n) } : {}),
              ...(ipv6?.(i, n) ? { ipv6: ipv6(i, n) } : {}),
              ...(mtu !== undefined ? { mtu } : {}),
            })),
            ...(script !== undefined ? { startup: script } : {}),
            ...(own !== undefined ? { files: own } : {}),
            ...(who !== undefined ? { login: who } : {}),
          },
        ];
      }),
    );
    this.group = new InstanceGroup(
      name,
      {
        base,
        members,
        ...(kernel ? { kernel } : {}),
        ...(stateDir ? { stateDir } : {}),
        ...(host ? { host } : {}),
      },
      { parent: this },
    );
    this.instances = names.map((m) => this.group.member(m));
    this.registerOutputs({ instances: names });
  }
}
