import type * as pulumi from "@pulumi/pulumi";
import type { LabMeta } from "../src/lab-conf";
import { readLabFolder } from "../src/lab-folder";
import { planLab, type LabMachinePlan } from "../src/lab-plan";
import { Disk, Instance, Network, type Host, type Kernel, type RootFilesystem } from "./resources";

export interface ImportLabOptions {
  /** lab.conf's `machine[image]=X` names to the bases that stand for them (Kathará's Docker images do not exist here). */
  images?: Record<string, RootFilesystem>;
  /** The base of machines that name no image (Kathará's kathara/base). */
  base?: RootFilesystem;
  /** Default: the host's default kernel. */
  kernel?: Kernel;
  /** Put before every machine and network name, e.g. "lab1-" (several labs on one host). Default "". */
  prefix?: string;
  /** Every machine forwards IPv4 (sysctl net.ipv4.ip_forward=1), as Kathará's do. Default true. */
  ipForward?: boolean;
  /** Memory of machines without `machine[mem]`. Default: Instance's (64 MiB). */
  memoryMiB?: pulumi.Input<number>;
  bootTimeoutMs?: pulumi.Input<number>;
  /** A startup script (shared.startup or the machine's) that fails fails the boot. Default false. */
  startupMustSucceed?: pulumi.Input<boolean>;
  /** Where the lab lives. Default: the machine running the provider. */
  host?: Host;
  stateDir?: pulumi.Input<string>;
}
export interface ImportedLab {
  /** LAB_DESCRIPTION, LAB_VERSION, LAB_AUTHOR, LAB_EMAIL, LAB_WEB. */
  meta: LabMeta;
  /** Machine (as lab.conf names it) to its instance. */
  machines: Record<string, Instance>;
  /** Collision domain (as lab.conf names it) to its network. */
  networks: Record<string, Network>;
}

/**
 * Declares a Netkit/Kathará lab folder as umlfleet resources: a Network per
 * collision domain, and per machine an overlay over its base and an Instance
 * with its NICs (eth N on `machine[N]`'s domain), memory, the `shared/` and
 * `<machine>/` trees as files, shared.startup then `<machine>.startup` as its
 * startup, started after the machines lab.dep names. Reads the folder when
 * the program runs; anything it cannot import throws an error naming the
 * file and line (UMLFLEET_LAB_INVALID) before any resource is declared.
 */
export function importLab(dir: string, opts: ImportLabOptions = {}): ImportedLab {
  const images = opts.images ?? {};
  const plan = planLab(readLabFolder(dir), {
    images: Object.keys(images),
    defaultBase: opts.base !== undefined,
    ...(opts.prefix !== undefined ? { prefix: opts.prefix } : {}),
    ...(opts.ipForward !== undefined ? { ipForward: opts.ipForward } : {}),
  });
  const where = {
    ...(opts.host ? { host: opts.host } : {}),
    ...(opts.stateDir ? { stateDir: opts.stateDir } : {}),
  };
  const networks: Record<string, Network> = {};
  for (const [domain, name] of plan.networks) networks[domain] = new Network(name, where);
  const byNetwork = new Map([...plan.networks].map(([domain, name]) => [name, networks[domain]!]));

  // Declared in start order, so each dependsOn names an instance already declared.
  const byName = new Map<string, Instance>();
  const machines: Record<string, Instance> = {};
  const pending = [...plan.machines];
  const declare = (m: LabMachinePlan) => {
    const base = m.image !== undefined ? images[m.image]! : opts.base!;
    const rootDisk = new Disk(`${m.name}-root`, { kind: "overlay", base, ...where });
    const memoryMiB = m.memoryMiB ?? opts.memoryMiB;
    const inst = new Instance(
      m.name,
      {
        ...where,
        ...(opts.kernel ? { kernel: opts.kernel } : {}),
        rootDisk,
        hostname: m.name,
        ...(memoryMiB !== undefined ? { memoryMiB } : {}),
        nics: m.nics.map((n) => ({ network: byNetwork.get(n.network)!, ...(n.mac ? { mac: n.mac } : {}) })),
        ...(m.kernelArgs.length > 0 ? { kernelArgs: m.kernelArgs } : {}),
        ...(m.files.length > 0 ? { files: m.files } : {}),
        ...(m.startup !== undefined ? { startup: m.startup } : {}),
        ...(opts.bootTimeoutMs !== undefined ? { bootTimeoutMs: opts.bootTimeoutMs } : {}),
        ...(opts.startupMustSucceed !== undefined ? { startupMustSucceed: opts.startupMustSucceed } : {}),
      },
      m.dependsOn.length > 0 ? { dependsOn: m.dependsOn.map((d) => byName.get(d)!) } : undefined,
    );
    byName.set(m.name, inst);
    machines[m.labName] = inst;
  };
  // lab.dep has no cycle (parseLabDep checked): each pass declares at least one.
  while (pending.length > 0) {
    const i = pending.findIndex((m) => m.dependsOn.every((d) => byName.has(d)));
    declare(pending.splice(i, 1)[0]!);
  }
  return { meta: plan.meta, machines, networks };
}
