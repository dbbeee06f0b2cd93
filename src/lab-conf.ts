import { UmlfleetError } from "./errors";

/**
 * Netkit/Kathará lab files as data: lab.conf (machines, their interfaces on
 * collision domains, memory, image, sysctls, LAB_* metadata) and lab.dep
 * (start order). Pure: the texts come in, a description or an error naming
 * the file and line comes out. Anything umlfleet does not import is an error,
 * never skipped: a lab that half-boots is worse than one that does not.
 */

/** A lab file umlfleet cannot import: `details.file` and `details.line` say where. */
export class LabError extends UmlfleetError {
  constructor(file: string, line: number | undefined, message: string) {
    super("UMLFLEET_LAB_INVALID", `${line === undefined ? file : `${file}:${line}`}: ${message}`, {
      file,
      ...(line !== undefined ? { line } : {}),
    });
    this.name = "LabError";
  }
}

export interface LabMeta {
  /** LAB_NAME (newer Kathará labs). */
  name?: string;
  description?: string;
  version?: string;
  author?: string;
  email?: string;
  web?: string;
}
const META_KEYS: Record<string, keyof LabMeta> = {
  LAB_NAME: "name",
  LAB_DESCRIPTION: "description",
  LAB_VERSION: "version",
  LAB_AUTHOR: "author",
  LAB_EMAIL: "email",
  LAB_WEB: "web",
};

export interface LabInterface {
  /** The guest's eth<index>. */
  index: number;
  /** The collision domain's name as lab.conf spells it. */
  domain: string;
  /** `pc1[0]=A/02:42:...`: a fixed MAC, lower case. */
  mac?: string;
  line: number;
}
export interface LabMachine {
  /** As lab.conf spells it: it names the folder `<name>/` and the file `<name>.startup`. */
  name: string;
  /** The line that first names it. */
  line: number;
  interfaces: LabInterface[];
  memoryMiB?: number;
  image?: { name: string; line: number };
  /** `machine[sysctl]=key=value` lines, as kernel words `sysctl.key=value`. */
  sysctls: string[];
}
export interface LabConf {
  meta: LabMeta;
  /** In the order lab.conf first names them. */
  machines: LabMachine[];
}

/** Options umlfleet imports; the message of any other lists them. */
const SUPPORTED = "N (an interface), mem, image, sysctl";
/** Machine and collision-domain names: they become file names and umlfleet names, so no '.', '/' or spaces. */
const LAB_NAME = /^[A-Za-z0-9_-]{1,64}$/;
const MAC = /^[0-9a-f][26ae](:[0-9a-f]{2}){5}$/;
// The kernel's sysctl words as umlfleet's kernelArgs allow-list takes them (schema/instance.json).
const SYSCTL = /^[a-z0-9_]+([.][a-z0-9_-]+)+=[A-Za-z0-9_.,:/+@%-]{0,128}$/;
/** NICs a guest may have (schema/instance.json nics maxItems). */
export const MAX_INTERFACES = 16;

/**
 * A value after `=`: "double" or 'single' quoted (no escapes, as Kathará
 * reads them) or a bare word, then nothing but blanks or a `# comment`.
 */
function parseValue(raw: string, where: (m: string) => LabError): string {
  let value: string;
  let rest: string;
  const q = raw[0];
  if (q === '"' || q === "'") {
    const end = raw.indexOf(q, 1);
    if (end < 0) throw where(`unterminated ${q} quote`);
    value = raw.slice(1, end);
    rest = raw.slice(end + 1);
  } else {
    const m = /^[^\s#"']*/.exec(raw)!;
    value = m[0];
    rest = raw.slice(value.length);
  }
  const trailing = rest.trim();
  if (trailing !== "" && !(trailing.startsWith("#") && /^\s/.test(rest)))
    throw where(
      `unexpected text after the value: ${JSON.stringify(trailing)} (quote a value holding spaces)`,
    );
  if (value === "") throw where("empty value");
  return value;
}

/** `512`, `512m`, `1g` (Kathará's and Netkit's spellings) in MiB. */
function parseMemory(v: string, where: (m: string) => LabError): number {
  const m = /^([0-9]{1,6})([mMgG]?)[bB]?$/.exec(v);
  if (!m) throw where(`mem must be a size in MiB like 256 or 256m (got ${JSON.stringify(v)})`);
  const mib = Number(m[1]) * (/g/i.test(m[2]!) ? 1024 : 1);
  if (mib < 8 || mib > 65536) throw where(`mem must be 8 to 65536 MiB (got ${JSON.stringify(v)})`);
  return mib;
}

/** Parses lab.conf's text; `file` names it in errors. */
export function parseLabConf(text: string, file = "lab.conf"): LabConf {
  const meta: LabMeta = {};
  const machines = new Map<string, LabMachine>();
  const seen = new Map<string, number>();
  text.split("\n").forEach((rawLine, i) => {
    const line = i + 1;
    const where = (m: string) => new LabError(file, line, m);
    const s = rawLine.replace(/\r$/, "").trim();
    if (s === "" || s.startsWith("#")) return;
    const metaLine = /^(LAB_[A-Z_]+)\s*=\s*(.*)$/.exec(s);
    if (metaLine) {
      const key = META_KEYS[metaLine[1]!];
      if (!key)
        throw where(
          `unknown lab setting ${metaLine[1]} (umlfleet reads ${Object.keys(META_KEYS).join(", ")})`,
        );
      if (meta[key] !== undefined) throw where(`${metaLine[1]} is set twice`);
      meta[key] = parseValue(metaLine[2]!, where);
      return;
    }
    const m = /^([^[\]=\s]+)\[([^\]]*)\]\s*=\s*(.*)$/.exec(s);
    if (!m)
      throw where(
        `not a lab.conf line: ${JSON.stringify(s)} (expected machine[option]=value or LAB_*=value)`,
      );
    const [, name, option, raw] = m as unknown as [string, string, string, string];
    if (!LAB_NAME.test(name))
      throw where(
        `machine name ${JSON.stringify(name)}: only letters, digits, '-' and '_' (it names the folder ${name}/ and the file ${name}.startup)`,
      );
    const value = parseValue(raw, where);
    let mc = machines.get(name);
    if (!mc) {
      mc = { name, line, interfaces: [], sysctls: [] };
      machines.set(name, mc);
    }
    const once = (what: string) => {
      const key = `${name}[${what}]`;
      const first = seen.get(key);
      if (first !== undefined) throw where(`${key} is set twice (first at line ${first})`);
      seen.set(key, line);
    };
    if (/^[0-9]+$/.test(option)) {
      const index = Number(option);
      if (index >= MAX_INTERFACES)
        throw where(`interface ${option} of ${name}: a guest has at most ${MAX_INTERFACES} (eth0-eth15)`);
      once(String(index));
      const [domain, mac, ...more] = value.split("/");
      if (more.length > 0 || !LAB_NAME.test(domain!))
        throw where(
          `collision domain ${JSON.stringify(value)}: a name of letters, digits, '-' and '_', optionally /MAC`,
        );
      if (mac !== undefined && !MAC.test(mac.toLowerCase()))
        throw where(
          `MAC ${JSON.stringify(mac)} must be a locally administered unicast address like 02:42:0a:00:00:01`,
        );
      mc.interfaces.push({
        index,
        domain: domain!,
        ...(mac !== undefined ? { mac: mac.toLowerCase() } : {}),
        line,
      });
      return;
    }
    switch (option) {
      case "mem":
        once(option);
        mc.memoryMiB = parseMemory(value, where);
        return;
      case "image":
        once(option);
        mc.image = { name: value, line };
        return;
      case "sysctl":
        if (!SYSCTL.test(value))
          throw where(`sysctl ${JSON.stringify(value)} must be key=value like net.ipv4.ip_forward=1`);
        mc.sysctls.push(`sysctl.${value}`);
        return;
      default:
        throw where(
          `option ${JSON.stringify(option)} of machine ${name} is not supported (umlfleet imports ${SUPPORTED})`,
        );
    }
  });
  // Interfaces become NICs in order: eth N must be the Nth.
  for (const mc of machines.values()) {
    mc.interfaces.sort((a, b) => a.index - b.index);
    mc.interfaces.forEach((nic, n) => {
      if (nic.index !== n)
        throw new LabError(
          file,
          nic.line,
          `interface ${nic.index} of ${mc.name} without interface ${n}: a guest's NICs are eth0, eth1, ... in order, with no gaps`,
        );
    });
  }
  return { meta, machines: [...machines.values()] };
}

/**
 * Parses lab.dep (`machine: dep dep ...` lines, Make-like, `#` comments):
 * each machine to the machines it starts after. A machine lab.conf does not
 * name, or a cycle, is an error naming the line.
 */
export function parseLabDep(
  text: string,
  machines: readonly string[],
  file = "lab.dep",
): Map<string, string[]> {
  const known = new Set(machines);
  const deps = new Map<string, string[]>();
  const lineOf = new Map<string, number>();
  text.split("\n").forEach((rawLine, i) => {
    const line = i + 1;
    const where = (m: string) => new LabError(file, line, m);
    const s = rawLine.replace(/#.*$/, "").trim();
    if (s === "") return;
    const m = /^([^:\s]+)\s*:(.*)$/.exec(s);
    if (!m) throw where(`not a lab.dep line: ${JSON.stringify(s)} (expected "machine: machine ...")`);
    const target = m[1]!;
    const after = m[2]!.trim().split(/\s+/).filter(Boolean);
    for (const n of [target, ...after]) {
      if (!LAB_NAME.test(n))
        throw where(`machine name ${JSON.stringify(n)}: only letters, digits, '-' and '_'`);
      if (!known.has(n)) throw where(`machine ${n} is not in lab.conf`);
    }
    if (after.includes(target)) throw where(`${target} depends on itself`);
    const list = deps.get(target) ?? [];
    for (const d of after) if (!list.includes(d)) list.push(d);
    deps.set(target, list);
    if (!lineOf.has(target)) lineOf.set(target, line);
  });
  // Depth-first search for a cycle: Pulumi would refuse it with a less helpful message.
  const state = new Map<string, "open" | "done">();
  const visit = (n: string, path: string[]): void => {
    if (state.get(n) === "done") return;
    if (state.get(n) === "open") {
      const cycle = [...path.slice(path.indexOf(n)), n];
      throw new LabError(file, lineOf.get(n), `start order has a cycle: ${cycle.join(" -> ")}`);
    }
    state.set(n, "open");
    for (const d of deps.get(n) ?? []) visit(d, [...path, n]);
    state.set(n, "done");
  };
  for (const n of deps.keys()) visit(n, []);
  return deps;
}
