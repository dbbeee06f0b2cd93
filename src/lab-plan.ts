import { MAX_FILE_BYTES, MAX_FILES_BYTES } from "./feature-checks";
import { LabError, type LabConf, type LabMeta } from "./lab-conf";

/**
 * What a Netkit/Kathará lab folder declares, as umlfleet specs would take it:
 * one instance per machine, one network per collision domain. Pure: the
 * folder's contents come in already read (src/lab-folder.ts reads them).
 */

/** A file of a `<machine>/` or `shared/` tree: where it goes in the guest. */
export interface LabTreeFile {
  /** Absolute path in the guest. */
  path: string;
  content: string;
  mode: number;
  /** Where it came from, relative to the lab folder (for messages). */
  from: string;
}
/** A lab folder's contents. */
export interface LabFolder {
  /** The folder, as given (messages name files under it). */
  dir: string;
  conf: LabConf;
  /** Machine to the machines it starts after (lab.dep). */
  deps: Map<string, string[]>;
  /** "shared" or a machine name to its `.startup` script. */
  startups: Map<string, string>;
  /** "shared" or a machine name to its folder's files. */
  trees: Map<string, LabTreeFile[]>;
}
export interface LabPlanOptions {
  /** Put before every machine and network name (several labs on one host). Default "". */
  prefix?: string;
  /** Images lab.conf may name (the keys of importLab's `images` table). */
  images: readonly string[];
  /** Is there a base for machines that name no image? */
  defaultBase: boolean;
  /** Every machine forwards IPv4, as in Kathará. Default true. */
  ipForward?: boolean;
}
export interface LabMachinePlan {
  /** As lab.conf spells it. */
  labName: string;
  /** umlfleet's name (instance and Pulumi resource). */
  name: string;
  /** The image lab.conf names, or undefined for the default base. */
  image?: string;
  memoryMiB?: number;
  nics: { network: string; mac?: string }[];
  kernelArgs: string[];
  files: { path: string; content: string; mode: number }[];
  startup?: string;
  /** umlfleet names of the machines it starts after. */
  dependsOn: string[];
}
export interface LabPlan {
  meta: LabMeta;
  /** Collision domain (as lab.conf spells it) to umlfleet's network name, in order of first use. */
  networks: Map<string, string>;
  machines: LabMachinePlan[];
}

/** Where Kathará mounts the lab in each guest; the startup scripts go there. */
export const HOSTLAB = "/hostlab";
/** An instance's files (schema/instance.json files maxItems). */
const MAX_FILES = 64;
/** Instance names leave room for their overlay disk `<name>-root` (32 characters). */
const MAX_MACHINE_NAME = 27;

/** A lab name as umlfleet's: lower case, '_' as '-', the prefix before it. */
function umlName(prefix: string, raw: string, max: number, where: (m: string) => LabError): string {
  const name = `${prefix}${raw.toLowerCase().replace(/_/g, "-")}`;
  if (!/^[a-z][a-z0-9-]*$/.test(name) || name.length > max)
    throw where(
      `${JSON.stringify(raw)} becomes the umlfleet name ${JSON.stringify(name)}, which must start with a letter and hold at most ${max} lower-case letters, digits and '-'`,
    );
  return name;
}

/** How one startup script runs: by its own interpreter when it names one (#!), else by sh. */
const runLine = (path: string, text: string) => (text.startsWith("#!") ? path : `sh ${path}`);

/** Declares the folder's machines and networks; errors name the file and line. */
export function planLab(folder: LabFolder, opts: LabPlanOptions): LabPlan {
  const prefix = opts.prefix ?? "";
  const conf = folder.conf;
  const confFile = `${folder.dir}/lab.conf`;
  const networks = new Map<string, string>();
  const byUml = new Map<string, string>();
  const machineNames = new Map<string, string>();
  for (const mc of conf.machines) {
    const where = (m: string) => new LabError(confFile, mc.line, m);
    if (mc.name === "shared")
      throw where(`a machine may not be called "shared": shared/ and shared.startup are every machine's`);
    const name = umlName(prefix, mc.name, MAX_MACHINE_NAME, where);
    const other = byUml.get(name);
    if (other !== undefined) throw where(`machines ${other} and ${mc.name} both become ${name} in umlfleet`);
    byUml.set(name, mc.name);
    machineNames.set(mc.name, name);
  }
  const netByUml = new Map<string, string>();
  for (const mc of conf.machines)
    for (const nic of mc.interfaces) {
      if (networks.has(nic.domain)) continue;
      const where = (m: string) => new LabError(confFile, nic.line, m);
      const name = umlName(prefix, nic.domain, 32, where);
      const other = netByUml.get(name);
      if (other !== undefined)
        throw where(`collision domains ${other} and ${nic.domain} both become the network ${name}`);
      netByUml.set(name, nic.domain);
      networks.set(nic.domain, name);
    }

  const images = new Set(opts.images);
  const sharedFiles = folder.trees.get("shared") ?? [];
  const sharedStartup = folder.startups.get("shared");
  const machines = conf.machines.map((mc): LabMachinePlan => {
    const name = machineNames.get(mc.name)!;
    if (mc.image && !images.has(mc.image.name))
      throw new LabError(
        confFile,
        mc.image.line,
        `image ${JSON.stringify(mc.image.name)} of ${mc.name} has no base: name one in importLab's images table (known: ${[...images].join(", ") || "none"})`,
      );
    if (!mc.image && !opts.defaultBase)
      throw new LabError(
        confFile,
        mc.line,
        `${mc.name} names no image and importLab has no default base: give ${mc.name}[image]=... or importLab's base`,
      );
    // Kathará copies shared/ first, then the machine's folder over it.
    const files = new Map<string, LabTreeFile>();
    for (const f of [...sharedFiles, ...(folder.trees.get(mc.name) ?? [])]) files.set(f.path, f);
    const scripts: [string, string][] = [];
    if (sharedStartup !== undefined) scripts.push(["shared", sharedStartup]);
    const own = folder.startups.get(mc.name);
    if (own !== undefined) scripts.push([mc.name, own]);
    for (const [who, text] of scripts) {
      const path = `${HOSTLAB}/${who}.startup`;
      files.set(path, { path, content: text, mode: 0o755, from: `${who}.startup` });
    }
    const list = [...files.values()];
    const where = (m: string) => new LabError(`${folder.dir}/${mc.name}`, undefined, m);
    if (list.length > MAX_FILES)
      throw where(
        `${mc.name} gets ${list.length} files (shared/, ${mc.name}/ and startup scripts): at most ${MAX_FILES}`,
      );
    const bytes = list.reduce((n, f) => n + Buffer.byteLength(f.content), 0);
    if (bytes > MAX_FILES_BYTES)
      throw where(
        `${mc.name}'s files come to ${bytes} bytes: at most ${MAX_FILES_BYTES} in all (${MAX_FILE_BYTES} each)`,
      );
    // shared.startup first, then the machine's (Kathará's order); the first failure is the exit status.
    const startup =
      scripts.length === 0
        ? undefined
        : [
            `# Kathará's order: shared.startup, then ${mc.name}.startup (copied to ${HOSTLAB}).`,
            "rc=0",
            ...scripts.map(
              ([who, text]) =>
                `${runLine(`${HOSTLAB}/${who}.startup`, text)} || { r=$?; [ "$rc" -ne 0 ] || rc=$r; }`,
            ),
            'exit "$rc"',
            "",
          ].join("\n");
    return {
      labName: mc.name,
      name,
      ...(mc.image ? { image: mc.image.name } : {}),
      ...(mc.memoryMiB !== undefined ? { memoryMiB: mc.memoryMiB } : {}),
      nics: mc.interfaces.map((n) => ({
        network: networks.get(n.domain)!,
        ...(n.mac ? { mac: n.mac } : {}),
      })),
      kernelArgs: [...(opts.ipForward === false ? [] : ["sysctl.net.ipv4.ip_forward=1"]), ...mc.sysctls],
      files: list.map((f) => ({ path: f.path, content: f.content, mode: f.mode })),
      ...(startup !== undefined ? { startup } : {}),
      dependsOn: (folder.deps.get(mc.name) ?? []).map((d) => machineNames.get(d)!),
    };
  });
  return { meta: conf.meta, networks, machines };
}
