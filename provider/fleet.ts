import * as pulumi from "@pulumi/pulumi";
import {
  Disk,
  Instance,
  type InstanceArgs,
  type Kernel,
  type Network,
  type RootFilesystem,
} from "./resources";

/** N instances from one template: each gets its own COW overlay over `base` and a NIC on each network. */
export interface FleetArgs extends Omit<InstanceArgs, "name" | "rootDisk" | "nics" | "kernel"> {
  size: number;
  base: RootFilesystem;
  kernel?: Kernel;
  networks?: Network[];
  /** Address of member `index` on network `networkIndex`, e.g. (i) => `10.0.0.${i + 1}/24`. */
  ipv4?: (index: number, networkIndex: number) => string | undefined;
}

export class Fleet extends pulumi.ComponentResource {
  readonly instances: Instance[] = [];
  readonly overlays: Disk[] = [];

  constructor(name: string, args: FleetArgs, opts?: pulumi.ComponentResourceOptions) {
    super("umlfleet:index:Fleet", name, {}, opts);
    if (!Number.isInteger(args.size) || args.size < 0 || args.size > 1024) {
      throw new Error(
        `Fleet ${name}: size must be an integer from 0 to 1024 (got ${JSON.stringify(args.size)})`,
      );
    }
    const { size, base, networks = [], ipv4, kernel, ...template } = args;
    for (let i = 0; i < size; i++) {
      const member = `${name}-${i}`;
      const root = new Disk(
        `${member}-root`,
        { kind: "overlay", base, stateDir: args.stateDir },
        { parent: this },
      );
      this.overlays.push(root);
      this.instances.push(
        new Instance(
          member,
          {
            ...template,
            ...(kernel ? { kernel } : {}),
            rootDisk: root,
            nics: networks.map((network, n) => ({ network, ...(ipv4?.(i, n) ? { ipv4: ipv4(i, n) } : {}) })),
          },
          { parent: this },
        ),
      );
    }
    this.registerOutputs({ instances: this.instances.map((i) => i.name) });
  }
}
