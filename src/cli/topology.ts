import { join } from "node:path";
import type { LocalRuntime } from "../host/runtime";
import { readJson } from "../host/state";
import { Cables, type CableSpec } from "../host/cables";

/**
 * A lab's topology, whichever way it was read (a state folder, or a stack's
 * outputs): per host its machines, switches, bases and serial links, and the
 * cables that join one network's switches across hosts. `host` is a hostId:
 * "local", or ssh://user@host:port as the Host resource names it.
 */
export interface Topology {
  machines: { host: string; name: string; base?: string; nics: TopologyNic[] }[];
  networks: { host: string; name: string }[];
  bases: { host: string; name: string }[];
  links: { host: string; name: string; a: LinkEnd; b: LinkEnd }[];
  cables: { name: string; network: string; from: string; to: string; up: boolean }[];
}
export interface TopologyNic {
  network: string;
  ipv4?: string;
  /** The link's declared impairment (schema/instance.json nics[].impairment). */
  impairment?: Impairment;
}
interface Impairment {
  delayMs?: number;
  jitterMs?: number;
  lossPercent?: number;
  rateKbit?: number;
  duplicatePercent?: number;
  down?: boolean;
}
interface LinkEnd {
  instance: string;
  line: number;
}

export const LOCAL = "local";

/** The topology of a state folder: everything in it, and its cables to other hosts. */
export async function topologyOf(rt: LocalRuntime): Promise<Topology> {
  const inv = await rt.inventory();
  const t: Topology = { machines: [], networks: [], bases: [], links: [], cables: [] };
  for (const name of inv.networks) t.networks.push({ host: LOCAL, name });
  for (const name of inv.bases) t.bases.push({ host: LOCAL, name });
  for (const name of inv.instances) {
    const spec = rt.instances.get(name)?.spec;
    if (!spec) continue;
    const base = rt.disks.get(spec.rootDisk)?.spec.base;
    t.machines.push({
      host: LOCAL,
      name,
      ...(base ? { base } : {}),
      nics: (spec.nics ?? []).map((n) => ({
        network: n.network,
        ...(n.ipv4 ? { ipv4: n.ipv4 } : {}),
        ...(n.impairment ? { impairment: n.impairment } : {}),
      })),
    });
  }
  for (const name of inv.links) {
    const s = rt.links.get(name)?.spec;
    if (s) t.links.push({ host: LOCAL, name, a: s.a, b: s.b });
  }
  // A cable end on this host (SSH: it is a spanning network's first host; UDP: either end): its far end is another host.
  const cables = new Cables(rt.state, () => undefined);
  for (const name of cables.list()) {
    const r = readJson<{ spec?: CableSpec }>(join(rt.state.root, "cables", name, "cable.json"));
    if (!r?.spec) continue;
    const { host, port } = r.spec.peer;
    const bracketed = host.includes(":") ? `[${host}]` : host;
    const to =
      r.spec.kind === "udp" ? `udp://${bracketed}:${port}` : `ssh://${r.spec.peer.user}@${bracketed}:${port}`;
    const up = cables.info(name)?.up ?? false;
    t.cables.push({ name, network: r.spec.network, from: LOCAL, to, up });
    t.networks.push({ host: to, name: r.spec.network });
  }
  return t;
}

/** A DOT identifier, quoted (names are [a-z0-9-], but quoting keeps any input well-formed). */
const q = (text: string) => JSON.stringify(text);
const byName = <T extends { host: string; name: string }>(xs: T[]) =>
  [...xs].sort((x, y) => `${x.host} ${x.name}`.localeCompare(`${y.host} ${y.name}`));
const uniq = <T extends { host: string; name: string }>(xs: T[]) => [
  ...new Map(xs.map((x) => [`${x.host} ${x.name}`, x])).values(),
];

/**
 * The topology as Graphviz DOT: machines (boxes), networks (ellipses) and
 * bases (cylinders) as nodes; a NIC as an edge from its machine to its
 * network, a serial link as a dashed edge between two machines, a root
 * overlay as a dotted edge to its base. With more than the local host,
 * each host is a cluster and a cable a bold edge between the switches of
 * its network on two hosts (red and dashed when it is down). Sorted by
 * name: the same lab gives the same text, whichever way it was read.
 */
export function topologyDot(t: Topology): string {
  const hosts = [
    ...new Set([
      ...[t.machines, t.networks, t.bases, t.links].flatMap((xs) => xs.map((x) => x.host)),
      ...t.cables.flatMap((c) => [c.from, c.to]),
    ]),
  ].sort();
  const clustered = hosts.some((h) => h !== LOCAL);
  const id = (kind: string, host: string, name: string) =>
    q(host === LOCAL ? `${kind}:${name}` : `${kind}:${host}/${name}`);
  const L = [
    "graph umlfleet {",
    "  graph [fontname=sans];",
    "  node [fontname=sans];",
    "  edge [fontname=sans, fontsize=10];",
  ];
  for (const host of hosts) {
    const pad = clustered ? "    " : "  ";
    if (clustered) L.push(`  subgraph ${q(`cluster_${host}`)} {`, `    label=${q(host)};`);
    for (const n of byName(uniq(t.networks)).filter((x) => x.host === host))
      L.push(`${pad}${id("net", host, n.name)} [label=${q(n.name)}, shape=ellipse];`);
    for (const b of byName(uniq(t.bases)).filter((x) => x.host === host))
      L.push(`${pad}${id("base", host, b.name)} [label=${q(b.name)}, shape=cylinder];`);
    for (const m of byName(t.machines).filter((x) => x.host === host))
      L.push(`${pad}${id("vm", host, m.name)} [label=${q(m.name)}, shape=box];`);
    if (clustered) L.push("  }");
  }
  for (const m of byName(t.machines)) {
    m.nics.forEach((nic, i) => {
      const imp = impairmentText(nic.impairment);
      const label = `eth${i}${nic.ipv4 ? ` ${nic.ipv4}` : ""}${imp ? `\n${imp}` : ""}`;
      // A cut link (impairment down) is drawn as a cable that is down.
      const style = nic.impairment?.down ? ", style=dashed, color=red" : "";
      L.push(
        `  ${id("vm", m.host, m.name)} -- ${id("net", m.host, nic.network)} [label=${q(label)}${style}];`,
      );
    });
    if (m.base) L.push(`  ${id("vm", m.host, m.name)} -- ${id("base", m.host, m.base)} [style=dotted];`);
  }
  for (const l of byName(t.links))
    L.push(
      `  ${id("vm", l.host, l.a.instance)} -- ${id("vm", l.host, l.b.instance)} [style=dashed, label=${q(`${l.name}: ttyS${l.a.line}-ttyS${l.b.line}`)}];`,
    );
  for (const c of [...t.cables].sort((x, y) => x.name.localeCompare(y.name)))
    L.push(
      `  ${id("net", c.from, c.network)} -- ${id("net", c.to, c.network)} [penwidth=2, label=${q(`cable ${c.name}${c.up ? "" : " (down)"}`)}${c.up ? "" : ", style=dashed, color=red"}];`,
    );
  L.push("}");
  return `${L.join("\n")}\n`;
}

/** "delay 20ms ±5ms, loss 1%, 512 kbit/s, dup 2%, down": what a link's impairment declares. */
export function impairmentText(i: Impairment | undefined): string {
  if (!i) return "";
  const parts = [
    ...(i.delayMs ? [`delay ${i.delayMs}ms${i.jitterMs ? ` ±${i.jitterMs}ms` : ""}`] : []),
    ...(i.lossPercent ? [`loss ${i.lossPercent}%`] : []),
    ...(i.rateKbit ? [`${i.rateKbit} kbit/s`] : []),
    ...(i.duplicatePercent ? [`dup ${i.duplicatePercent}%`] : []),
    ...(i.down ? ["down"] : []),
  ];
  return parts.join(", ");
}
