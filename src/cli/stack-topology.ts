import { UmlfleetError } from "../errors";
import { LOCAL, type Topology } from "./topology";

/**
 * The topology of a stack from `pulumi stack export` (a file): what the
 * program declared, wherever it runs (target hosts included), read from
 * the resources' outputs with no connection to any host. The hosts'
 * connection details are secrets (encrypted in an export): a resource's
 * host is found through its dependency on a Host resource, whose `hostId`
 * is in clear.
 */
interface ExportedResource {
  urn: string;
  type: string;
  outputs?: Record<string, unknown>;
  propertyDependencies?: Record<string, string[]>;
}

const SECRET_SIG = "4dabf18193072939515e22adb298388d";
const TYPE = /^pulumi-nodejs:dynamic\/umlfleet:(\w+)$/;

/** A value, or its plaintext when it is a secret exported with --show-secrets (undefined when encrypted). */
function reveal(v: unknown): unknown {
  if (v && typeof v === "object" && SECRET_SIG in v) {
    const plain = (v as { plaintext?: unknown }).plaintext;
    return typeof plain === "string" ? (JSON.parse(plain) as unknown) : undefined;
  }
  return v;
}
const str = (v: unknown) => (typeof v === "string" ? v : undefined);
const list = (v: unknown): Record<string, unknown>[] =>
  Array.isArray(v)
    ? (v.map(reveal).filter((x) => x && typeof x === "object") as Record<string, unknown>[])
    : [];

export function stackTopology(exported: unknown, file = "the stack export"): Topology {
  const resources = (exported as { deployment?: { resources?: unknown } })?.deployment?.resources;
  if (!Array.isArray(resources))
    throw new UmlfleetError(
      "UMLFLEET_INVALID_SPEC",
      `${file}: not a \`pulumi stack export\` (no deployment.resources)`,
      { field: "deployment.resources", value: file },
    );
  const byKind = new Map<string, ExportedResource[]>();
  for (const r of resources as ExportedResource[]) {
    const kind = TYPE.exec(String(r?.type))?.[1];
    if (kind) byKind.set(kind, [...(byKind.get(kind) ?? []), r]);
  }
  const of = (kind: string) => byKind.get(kind) ?? [];
  const out = (r: ExportedResource, k: string) => reveal(r.outputs?.[k]);
  const hostIds = new Map(of("Host").map((h) => [h.urn, str(out(h, "hostId")) ?? LOCAL]));
  const hostOf = (r: ExportedResource): string => {
    const dep = r.propertyDependencies?.host?.find((u) => hostIds.has(u));
    if (dep) return hostIds.get(dep)!;
    return str((out(r, "host") as { hostId?: unknown } | undefined)?.hostId) ?? LOCAL;
  };
  const nameOf = (r: ExportedResource) => str(out(r, "name")) ?? r.urn.split("::").pop()!;

  const t: Topology = { machines: [], networks: [], bases: [], links: [], cables: [] };
  for (const r of of("RootFilesystem")) t.bases.push({ host: hostOf(r), name: nameOf(r) });
  for (const r of of("Network")) {
    const switches = list(out(r, "switches"));
    if (switches.length === 0) t.networks.push({ host: hostOf(r), name: nameOf(r) });
    for (const s of switches) t.networks.push({ host: str(s.hostId) ?? LOCAL, name: nameOf(r) });
    for (const c of list(out(r, "cables")))
      t.cables.push({
        name: str(c.name) ?? "?",
        network: nameOf(r),
        from: str(c.from) ?? LOCAL,
        to: str(c.to) ?? LOCAL,
        up: c.up === true,
      });
  }
  const disks = new Map(of("Disk").map((d) => [`${hostOf(d)} ${nameOf(d)}`, str(out(d, "base"))]));
  const nicsOf = (settings: Record<string, unknown> | undefined, info: unknown) => {
    // The declared NICs (an echoed input), else what the guest reported.
    const declared = list(settings?.nics);
    return (declared.length > 0 ? declared : list(info)).map((n) => ({
      network: str(n.network) ?? "?",
      ...(str(n.ipv4) ? { ipv4: str(n.ipv4) } : {}),
      ...(n.impairment && typeof n.impairment === "object" ? { impairment: n.impairment } : {}),
    }));
  };
  for (const r of of("Instance")) {
    const host = hostOf(r);
    const base = disks.get(`${host} ${str(out(r, "rootDisk"))}`);
    t.machines.push({
      host,
      name: nameOf(r),
      ...(base ? { base } : {}),
      nics: nicsOf(r.outputs && { nics: out(r, "nics") }, out(r, "nicInfo")),
    });
  }
  for (const r of of("InstanceGroup")) {
    const host = hostOf(r);
    const base = str(out(r, "base"));
    // Members may be a secret (a login's hash): their reports name them too.
    const members = (out(r, "members") ?? {}) as Record<string, Record<string, unknown>>;
    const info = (out(r, "memberInfo") ?? {}) as Record<string, Record<string, unknown>>;
    for (const m of [...new Set([...Object.keys(members), ...Object.keys(info)])])
      t.machines.push({
        host,
        name: m,
        ...(base ? { base } : {}),
        nics: nicsOf(members[m], info[m]?.nicInfo),
      });
  }
  for (const r of of("SerialLink")) {
    const end = (k: string) => {
      const e = (out(r, k) ?? {}) as Record<string, unknown>;
      return { instance: str(e.instance) ?? "?", line: Number(e.line) };
    };
    t.links.push({ host: hostOf(r), name: nameOf(r), a: end("a"), b: end("b") });
  }
  return t;
}
