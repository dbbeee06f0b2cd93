import { LocalRuntime } from "../host/runtime";
import { parseCommon } from "./options";
import type { Verb } from "./verb";

/** A DOT identifier, quoted (names are [a-z0-9-], but quoting keeps any input well-formed). */
const id = (kind: string, name: string) => JSON.stringify(`${kind}:${name}`);
const label = (text: string) => JSON.stringify(text);

/**
 * The topology of a state folder as Graphviz DOT: machines (boxes), networks
 * (ellipses) and bases (cylinders) as nodes; a NIC as an edge from its machine
 * to its network, a serial link as a dashed edge between two machines, a root
 * overlay as a dotted edge to its base. Render with `dot -Tsvg`.
 */
export async function topologyDot(rt: LocalRuntime): Promise<string> {
  const inv = await rt.inventory();
  const L = ["graph umlfleet {", "  node [fontname=sans];"];
  for (const n of inv.networks) L.push(`  ${id("net", n)} [label=${label(n)}, shape=ellipse];`);
  for (const b of inv.bases) L.push(`  ${id("base", b)} [label=${label(b)}, shape=cylinder];`);
  for (const name of inv.instances) {
    const spec = rt.instances.get(name)?.spec;
    if (!spec) continue;
    L.push(`  ${id("vm", name)} [label=${label(name)}, shape=box];`);
    (spec.nics ?? []).forEach((nic, i) => {
      const addr = nic.ipv4 ? ` ${nic.ipv4}` : "";
      L.push(`  ${id("vm", name)} -- ${id("net", nic.network)} [label=${label(`eth${i}${addr}`)}];`);
    });
    const base = rt.disks.get(spec.rootDisk)?.spec.base;
    if (base) L.push(`  ${id("vm", name)} -- ${id("base", base)} [style=dotted];`);
  }
  for (const l of inv.links) {
    const s = rt.links.get(l)?.spec;
    if (!s) continue;
    L.push(
      `  ${id("vm", s.a.instance)} -- ${id("vm", s.b.instance)} [style=dashed, label=${label(`${l}: ttyS${s.a.line}-ttyS${s.b.line}`)}];`,
    );
  }
  L.push("}");
  return `${L.join("\n")}\n`;
}

/** `umlfleet graph [--state-dir DIR]`: the topology as DOT on stdout (`| dot -Tsvg > lab.svg`). */
export const graph: Verb = {
  usage: "graph [--state-dir DIR]",
  summary: "print the machines, networks, bases and serial links as Graphviz DOT",
  async run(args, io) {
    const o = parseCommon("graph", this.usage, args, io);
    if (typeof o === "number") return o;
    io.out(await topologyDot(new LocalRuntime({ stateDir: o.stateDir })));
    return 0;
  },
};
