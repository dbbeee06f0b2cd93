/**
 * The provider's implementation, loaded in the dynamic-provider process by
 * `require("umlfleet/dist/provider/impl")` from the serialized shim (see
 * shim.ts for why). Everything here may change between versions; what it reads
 * from state (the outputs of older versions) is versioned by `schemaVersion`.
 */
import { describeGroupChange, planGroupChange, planInstanceChange } from "../src/change-plan";
import { withDeadline as deadline } from "../src/deadline";
import { InvalidSpecError, UmlfleetError, type FieldProblem } from "../src/errors";
import type {
  BaseInfo,
  DiskInfo,
  HostDriver,
  InstanceInfo,
  Inventory,
  KernelInfo,
  MemberInfo,
  NetworkInfo,
} from "../src/host/driver";
import { ancestorNamed, isAlive, type ProcessIdentity } from "../src/process";
import type { InstanceGroupSpec, SpecKind } from "../src/spec";
import { SpecValidator, memberRootDisk, packageVersion } from "../src/validation";
import { defaultStateDir, driverFor, removeUploaded, sshOf, uploadFile, UNKNOWN } from "./driver-factory";
import { checkHost, hostChange, hostOutputs, hostSpecProblems, verifyKnownHost } from "./host";
import {
  applySpan,
  CABLE_KINDS,
  readSpan,
  removeSpan,
  spanHosts,
  spanProblems,
  type CableKind,
} from "./spanning";

export { UNKNOWN };
export const OUTPUT_SCHEMA_VERSION = 1;
/**
 * The umlfleet that created or last updated a resource, in its outputs
 * (`providerVersion`), so an upgrade shows in the state. Not an input: diff
 * ignores it, and an upgrade alone changes nothing.
 */
export const PROVIDER_VERSION = packageVersion();

/** The resource kinds: a spec kind of the runtime's schemas, or a Host (provider/host.ts). */
export type Kind = SpecKind | "host";
type Props = Record<string, unknown>;

/** Inputs that are not part of the runtime spec: where, and identities of what it depends on. */
const META: Record<SpecKind, string[]> = {
  kernel: ["stateDir", "host", "upload"],
  base: ["stateDir", "host", "upload"],
  disk: ["stateDir", "host", "baseImageSha"],
  network: ["stateDir", "host", "hosts", "cable"],
  instance: ["stateDir", "host", "kernelSha256", "rootDiskId", "change"],
  "serial-link": ["stateDir", "host", "instanceIds"],
  "instance-group": ["stateDir", "host", "baseImageSha", "kernelSha256", "change"],
};

/**
 * Properties create/update add to the inputs. `diff` gets the old outputs as
 * `olds`, so these must be left out when comparing with the new inputs.
 */
const OUTPUTS: Record<SpecKind, string[]> = {
  kernel: ["sha256", "version", "bootPath"],
  base: ["imagePath", "imageSha", "sizeBytes", "drift"],
  disk: ["path", "sizeBytes", "backingPath", "diskId", "drift"],
  network: ["switchDir", "running", "pid", "switches", "cables"],
  instance: [
    "state",
    "pid",
    "startedAtMs",
    "consoleLog",
    "mconsoleSocket",
    "serialPorts",
    "nicInfo",
    "diskInfo",
    "bootMemoryMiB",
    "bootCount",
    "startupExitCode",
    "lastChange",
    "instanceId",
  ],
  "serial-link": ["up"],
  "instance-group": ["memberInfo", "lastChange"],
};

/** Deadlines per operation: Pulumi never cancels a dynamic provider. */
const DEADLINE_MS: Record<Kind, number> = {
  host: 2 * 60_000,
  kernel: 50 * 60_000,
  base: 15 * 60_000,
  disk: 5 * 60_000,
  network: 60_000,
  instance: 5 * 60_000,
  "serial-link": 60_000,
  // Every member boots at once; the runtime's own per-member deadlines come first.
  "instance-group": 30 * 60_000,
};

const validator = new SpecValidator();

const isUnknown = (v: unknown): boolean =>
  v === UNKNOWN ||
  (Array.isArray(v) ? v.some(isUnknown) : !!v && typeof v === "object" && Object.values(v).some(isUnknown));

function clean(props: Props): Props {
  const out: Props = {};
  for (const [k, v] of Object.entries(props)) if (!k.startsWith("__") && v !== undefined) out[k] = v;
  return out;
}

/**
 * Properties every kind records that are not its spec, and that diff ignores:
 * the versions, and `owner`, the stack that declared it (`<project>/<stack>`,
 * an input the resource classes add; stacks made before it was passed still
 * preview no change). The host records it (src/host/owners.ts).
 */
const VERSIONS = ["schemaVersion", "providerVersion", "owner"];

/** The stack a resource belongs to, as its inputs or old outputs name it (none in older states). */
const ownerOf = (props: Props) => (typeof props.owner === "string" ? { owner: props.owner } : {});

/** The runtime spec inside a resource's inputs (or old outputs). */
function specOf(kind: SpecKind, props: Props): Props {
  const out: Props = {};
  for (const [k, v] of Object.entries(clean(props))) {
    if (!META[kind].includes(k) && !OUTPUTS[kind].includes(k) && !VERSIONS.includes(k)) out[k] = v;
  }
  return out;
}

/** Drop unknown leaves so the rest can be checked at preview. */
function withoutUnknowns(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(withoutUnknowns);
  if (v && typeof v === "object") {
    const o: Props = {};
    for (const [k, x] of Object.entries(v)) if (x !== UNKNOWN) o[k] = withoutUnknowns(x);
    return o;
  }
  return v;
}

// ---- check -------------------------------------------------------------------

export interface CheckFailure {
  property: string;
  reason: string;
}

export async function check(
  kind: Kind,
  olds: Props,
  news: Props,
): Promise<{ inputs: Props; failures: CheckFailure[] }> {
  if (kind === "host") return checkHost(news, olds);
  const inputs = clean(news);
  // A resource that names no state folder lives in its host's default one
  // (a target host's comes from its Host: the resource class passes it).
  if (inputs.stateDir === undefined && !sshOf(inputs) && inputs.hosts === undefined)
    inputs.stateDir = defaultStateDir();
  const failures: CheckFailure[] = [];
  if (inputs.upload !== undefined && !isUnknown(inputs.upload)) {
    const source = inputs.source as { kind?: unknown } | undefined;
    const file = kind === "kernel" ? inputs.build === undefined : kind === "base" && source?.kind === "image";
    if (typeof inputs.upload !== "boolean" || !file)
      failures.push({
        property: "upload",
        reason: `${kind}/upload: applies to a file (a Kernel's path, a RootFilesystem's image source) and is true or false (got ${JSON.stringify(inputs.upload)})`,
      });
  }
  if (kind === "network" && inputs.hosts !== undefined && !isUnknown(inputs.hosts))
    for (const p of spanProblems(inputs.hosts))
      failures.push({ property: "", reason: `network/hosts${p.startsWith("/") ? "" : ": "}${p}` });
  if (kind === "network" && inputs.cable !== undefined && !isUnknown(inputs.cable)) {
    if (!CABLE_KINDS.includes(inputs.cable as CableKind))
      failures.push({
        property: "cable",
        reason: `network/cable: ${CABLE_KINDS.map((k) => JSON.stringify(k)).join(" or ")} (got ${JSON.stringify(inputs.cable)})`,
      });
    else if (inputs.hosts === undefined)
      failures.push({
        property: "cable",
        reason: `network/cable: joins a network's switches on several hosts; give \`hosts\` too (got cable ${JSON.stringify(inputs.cable)} without hosts)`,
      });
  }
  // Where it lives is checked like the rest, before any step.
  if (inputs.host !== undefined && !isUnknown(inputs.host)) {
    const ssh = sshOf(inputs);
    for (const p of ssh ? hostSpecProblems({ ssh }) : [])
      failures.push({
        // Not "host": the engine prints a failing property's value, key and all.
        property: "",
        reason: `${kind}/host${p.field}: ${p.message} (got ${JSON.stringify(p.value) ?? "nothing"})`,
      });
  }
  // The state folder reaches UML's command line too: refused here, before any step.
  if (inputs.stateDir !== undefined && !isUnknown(inputs.stateDir))
    for (const p of validator.stateDirProblems(inputs.stateDir))
      failures.push({
        property: "stateDir",
        reason: `${kind}/stateDir: ${p.message} (got ${JSON.stringify(p.value)})`,
      });
  const spec = specOf(kind, inputs);
  const problems = validator.problems(kind, withoutUnknowns(spec)).filter(
    // A required field that is only unknown at preview is not missing.
    (p) => !(p.value === undefined && isUnknown(getPointer(spec, p.field))),
  );
  failures.push(...problems.map((p) => toFailure(kind, p)));
  // Another stack's name on this host: said by preview (create refuses it anyway).
  if (failures.length === 0) failures.push(...(await foreignNames(kind, inputs)));
  // Keep defaults out of the inputs: the program's own values are what diff compares.
  if ((kind === "instance" || kind === "instance-group") && failures.length === 0) {
    // Pulumi's dynamic-provider host passes the engine no detailed diff, so a
    // preview cannot say live or restart by itself. The change plan goes into
    // an input of its own, which diff ignores: `pulumi preview --diff` shows
    // e.g. `change: "live: memoryMiB live, nics live"` (for a group, per
    // member), and the next no-change run, where it is gone, stays `same`.
    const before = specOf(kind, clean(olds));
    if (Object.keys(before).length > 0 && !isUnknown(spec)) {
      const summary =
        kind === "instance"
          ? describeInstanceChange(before, spec)
          : describeGroupChange(planGroupChange(before as never, spec as never));
      if (summary) inputs.change = summary;
    }
  }
  return { inputs, failures };
}

/** The inventory kind of what a stack owns alone (a base is shared: never another stack's). */
const OWNED_AS: Partial<Record<Kind, keyof NonNullable<Inventory["owners"]>>> = {
  disk: "disks",
  network: "networks",
  instance: "instances",
  "serial-link": "links",
};

/**
 * The names of this resource that another stack owns on its host, as check
 * failures, so that `pulumi preview` says so before `up` (whose create
 * refuses them anyway). A host that cannot be asked now is asked by create.
 */
async function foreignNames(kind: Kind, inputs: Props): Promise<CheckFailure[]> {
  const owner = inputs.owner;
  if (
    typeof owner !== "string" ||
    inputs.hosts !== undefined ||
    isUnknown(inputs.stateDir) ||
    isUnknown(inputs.host)
  )
    return [];
  const names: [field: string, of: keyof NonNullable<Inventory["owners"]>, name: string][] = [];
  const members = inputs.members;
  if (kind === "instance-group" && members && typeof members === "object")
    for (const m of Object.keys(members))
      names.push([`/members/${m}`, "instances", m], [`/members/${m}`, "disks", memberRootDisk(m)]);
  const of = OWNED_AS[kind];
  if (of && typeof inputs.name === "string" && !isUnknown(inputs.name))
    names.push(["/name", of, inputs.name]);
  if (names.length === 0) return [];
  let inventory: Inventory;
  try {
    inventory = await driverFor(inputs).inventory({ timeoutMs: 30_000 });
  } catch {
    return [];
  }
  const where = typeof inputs.stateDir === "string" ? ` (state folder ${inputs.stateDir})` : "";
  return names.flatMap(([field, of, name]) => {
    const owners = inventory.owners?.[of]?.[name];
    if (!owners?.length || owners.includes(owner)) return [];
    const whose = owners.map((o) => JSON.stringify(o)).join(", ");
    const what =
      of === "disks" && field !== "/name" ? `its overlay ${JSON.stringify(name)}` : JSON.stringify(name);
    return [
      {
        property: field.split("/")[1]!,
        reason: `[UMLFLEET_CONFLICT] ${kind}${field}: ${what} belongs to stack ${whose} on this host${where}, not to ${JSON.stringify(owner)}; names are per host state folder: give this one another name, or another stateDir`,
      },
    ];
  });
}

/** One line for a preview: "live: memoryMiB live, nics live", or "" for no change. */
function describeInstanceChange(before: Props, after: Props): string {
  const plan = planInstanceChange(before as never, after as never);
  if (plan.kind === "none") return "";
  return `${plan.kind}: ${plan.changes.map((c) => `${c.field.slice(1)} ${c.kind}`).join(", ")}`;
}

function toFailure(kind: string, p: FieldProblem): CheckFailure {
  return {
    property: p.field.split("/")[1] ?? "",
    reason: `${kind}${p.field || "/"}: ${p.message} (got ${JSON.stringify(p.value) ?? "nothing"})`,
  };
}

function getPointer(obj: unknown, pointer: string): unknown {
  let cur: unknown = obj;
  for (const part of pointer.split("/").slice(1)) {
    if (!cur || typeof cur !== "object") return undefined;
    cur = (cur as Props)[part];
  }
  return cur;
}

// ---- diff --------------------------------------------------------------------

export interface DiffResult {
  changes: boolean;
  replaces: string[];
  deleteBeforeReplace: boolean;
  detailedDiff: Record<
    string,
    {
      kind: "update" | "update-replace" | "add" | "add-replace" | "delete" | "delete-replace";
      inputDiff: boolean;
    }
  >;
}

const same = (a: unknown, b: unknown) => JSON.stringify(a ?? null) === JSON.stringify(b ?? null);

export async function diff(kind: Kind, _id: string, olds: Props, news: Props): Promise<DiffResult> {
  const o = clean(olds);
  const n = clean(news);
  const detailedDiff: DiffResult["detailedDiff"] = {};
  const replaces: string[] = [];
  const mark = (field: string, replace: boolean) => {
    detailedDiff[field] = { kind: replace ? "update-replace" : "update", inputDiff: true };
    if (replace) replaces.push(field);
  };
  // Another host is another resource; the same host reached with a new key or host key is an update.
  const where = hostChange(kind === "host" ? o : o.host, kind === "host" ? n : n.host);
  if (where !== "same") mark(kind === "host" ? "ssh" : "host", where === "replace");
  // A known Host's check only began its connection (provider/host.ts): here it must have come up.
  if (kind === "host" && where === "same") await verifyKnownHost(n);
  if (kind === "host")
    return {
      changes: Object.keys(detailedDiff).length > 0,
      replaces,
      deleteBeforeReplace: true,
      detailedDiff,
    };
  const keys = new Set([...Object.keys(specOf(kind, o)), ...Object.keys(specOf(kind, n)), ...META[kind]]);
  keys.delete("host");
  // A network across hosts: other hosts (or another order: another star) replace it, a new key updates it.
  if (kind === "network" && (o.hosts !== undefined || n.hosts !== undefined)) {
    const hs = (v: unknown) => (Array.isArray(v) ? (v as Props[]) : []);
    const [before, after] = [hs(o.hosts), hs(n.hosts)];
    const changes =
      before.length !== after.length
        ? ["replace"]
        : before.map((b, i) => (same(b.stateDir, after[i]!.stateDir) ? hostChange(b, after[i]) : "replace"));
    if (changes.includes("replace")) mark("hosts", true);
    else if (changes.includes("update")) mark("hosts", false);
    keys.delete("hosts");
  }
  if (kind === "instance") {
    const before = specOf(kind, o);
    const after = specOf(kind, n);
    if (isUnknown(after)) {
      for (const k of keys) if (!same(o[k], n[k])) mark(k, true);
    } else {
      const plan = planInstanceChange(before as never, after as never);
      // A nested field ("/nics/0/impairment") as Pulumi's property path ("nics[0].impairment").
      const path = (f: string) =>
        f
          .slice(1)
          .replace(/\/(\d+)(?=\/|$)/g, "[$1]")
          .replace(/\//g, ".");
      for (const c of plan.changes) mark(path(c.field), c.kind === "replace");
    }
    // A new kernel or root disk (replaced behind the same name) is a new machine.
    for (const k of ["kernelSha256", "rootDiskId", "stateDir"]) if (!same(o[k], n[k])) mark(k, true);
    // Drift found by refresh: a guest that is not running is started by update.
    if (o.state === "stopped" && !replaces.length) detailedDiff.state = { kind: "update", inputDiff: false };
  } else if (kind === "instance-group") {
    // Members change in place (created, updated live or restarted, removed) by
    // update. A new kernel or base replaces the whole group: Pulumi must delete
    // it before the base it boots from can go.
    for (const k of keys) {
      if (k === "change" || same(o[k], n[k])) continue;
      mark(k, ["stateDir", "name", "base", "baseImageSha", "kernel", "kernelSha256"].includes(k));
    }
    // Drift found by refresh: members stopped or gone are started or made again by update.
    const info = (o.memberInfo ?? {}) as Record<string, { state?: string }>;
    if (!replaces.length && Object.values(info).some((m) => m.state !== "running"))
      detailedDiff.memberInfo = { kind: "update", inputDiff: false };
  } else {
    // Bases and disks are immutable, a switch or a link is cheap to remake
    // (a link's relays hold the FIFOs of the instances it joined): any change replaces.
    // A spanning network's cables change kind in place: its switches, and the NICs on them, stay.
    for (const k of keys) if (!same(o[k], n[k])) mark(k, !(kind === "network" && k === "cable"));
    // Drift found by refresh: a dead switch or relay is restarted by update.
    if (kind === "network" && o.running === false && !replaces.length)
      detailedDiff.running = { kind: "update", inputDiff: false };
    if (kind === "base" && typeof o.drift === "string" && o.drift !== "" && !replaces.length)
      detailedDiff.drift = { kind: "update", inputDiff: false };
    // A disk file deleted, truncated or rewritten behind our back: its data is
    // gone, and only a new disk (and a new instance on it) can follow.
    if (kind === "disk" && typeof o.drift === "string" && o.drift !== "") mark("drift", true);
    if (kind === "serial-link" && o.up === false && !replaces.length)
      detailedDiff.up = { kind: "update", inputDiff: false };
  }
  return { changes: Object.keys(detailedDiff).length > 0, replaces, deleteBeforeReplace: true, detailedDiff };
}

// ---- create / read / update / delete -------------------------------------------

export async function create(kind: Kind, inputs: Props): Promise<{ id: string; outs: Props }> {
  const props = clean(inputs);
  if (kind === "host")
    return withDeadline(kind, "create", async () => {
      const outs = await hostApply(props);
      return { id: String(outs.hostId), outs };
    });
  const id = typeof props.name === "string" ? props.name : "";
  return withDeadline(kind, "create", async (signal) => {
    try {
      const outs = await apply(kind, props, undefined, signal);
      // A kernel has no name: its id is the binary it names.
      return { id: id || String(outs.bootPath), outs };
    } catch (e) {
      // Another stack's resource of that name is not this one's, even partly.
      if (isOwnershipConflict(e)) throw e;
      throw await partialFailure(kind, id, props, inputs.__provider, e);
    }
  });
}

export async function update(kind: Kind, _id: string, olds: Props, news: Props): Promise<{ outs: Props }> {
  if (kind === "host")
    return withDeadline(kind, "update", async () => ({ outs: await hostApply(clean(news)) }));
  return withDeadline(kind, "update", async (signal) => ({
    outs: await apply(kind, clean(news), clean(olds), signal),
  }));
}

export async function read(kind: Kind, id: string, props: Props): Promise<{ id?: string; props?: Props }> {
  return tracked(() => readNow(kind, id, props));
}

async function readNow(kind: Kind, id: string, props: Props): Promise<{ id?: string; props?: Props }> {
  const p = clean(props);
  if (kind === "host") return { id, props: await hostApply(p) };
  const found = await outputsOnHost(kind, id, p, driverFor(p));
  return found ? { id, props: { ...p, ...found } } : { id: undefined, props: undefined };
}

/** What the host has of a resource, as its outputs; undefined when it is gone. */
async function outputsOnHost(
  kind: SpecKind,
  id: string,
  p: Props,
  d: HostDriver,
): Promise<Props | undefined> {
  switch (kind) {
    case "kernel": {
      const k = await d.kernelInfo(String(p.bootPath ?? p.path));
      return k && { sha256: k.sha256, version: k.version };
    }
    case "base": {
      // A changed or missing image is drift, named in `drift`: the next up
      // restores it from its recipe when that gives the recorded bytes.
      const b = await d.baseInfo(id);
      return b && baseOuts(b);
    }
    case "disk": {
      // A disk file deleted, truncated or rewritten behind our back is `drift`,
      // naming the file: the next up replaces it (its data is gone).
      const di = await d.diskInfo(id);
      return di && diskOuts(di);
    }
    case "network": {
      const hosts = spanHosts(p);
      if (hosts) return readSpan(hosts, id);
      const n = await d.networkInfo(id);
      return n && networkOuts(n);
    }
    case "instance": {
      const i = await d.instanceInfo(id);
      return i && instanceOuts(i);
    }
    case "serial-link": {
      const l = await d.serialLinkInfo(id);
      return l && { up: l.up };
    }
    case "instance-group":
      return { memberInfo: memberOuts(await d.groupInfo(specOf(kind, p) as never)) };
  }
}

export async function remove(kind: Kind, id: string, props: Props): Promise<void> {
  const p = clean(props);
  // A Host is a view of a machine: forgetting it changes nothing there.
  if (kind === "host") return;
  const d = driverFor(p);
  const opts = (signal: AbortSignal) => ({ signal, ...ownerOf(p) });
  return withDeadline(kind, "delete", async (signal) => {
    switch (kind) {
      case "kernel":
        return forgetUpload(kind, p);
      case "base":
        await d.removeBase(id, opts(signal));
        return forgetUpload(kind, p);
      case "disk":
        return d.removeDisk(id, opts(signal));
      case "network": {
        const hosts = spanHosts(p);
        return hosts ? removeSpan(hosts, id, signal, ownerOf(p).owner) : d.removeNetwork(id, opts(signal));
      }
      case "instance":
        return d.removeInstance(id, opts(signal));
      case "serial-link":
        return d.removeSerialLink(id, opts(signal));
      case "instance-group":
        return d.removeGroup(specOf(kind, p) as never, opts(signal));
    }
  });
}

/** Create or update: make the host match `props`. Idempotent. */
async function apply(
  kind: SpecKind,
  props: Props,
  olds: Props | undefined,
  signal: AbortSignal,
): Promise<Props> {
  const d = driverFor(props);
  const spec = await uploaded(kind, props, specOf(kind, props));
  const base = { ...props, schemaVersion: OUTPUT_SCHEMA_VERSION, providerVersion: PROVIDER_VERSION };
  const opts = { signal, ...ownerOf(props) };
  switch (kind) {
    case "kernel":
      return { ...base, ...kernelOuts(await d.ensureKernel(spec, opts)) };
    case "base":
      return { ...base, ...baseOuts(await d.ensureBase(spec as never, opts)) };
    case "disk":
      return { ...base, ...diskOuts(await d.ensureDisk(spec as never, opts)) };
    case "network": {
      const hosts = spanHosts(props);
      if (hosts)
        return {
          ...base,
          ...(await applySpan(hosts, spec as never, signal, opts.owner, (props.cable as CableKind) ?? "ssh")),
        };
      return { ...base, ...networkOuts(await d.ensureNetwork(spec as never, opts)) };
    }
    case "instance": {
      if (olds && (await d.instanceInfo(String(spec.name)))) {
        const { plan, info } = await d.updateInstance(spec, opts);
        return { ...base, ...instanceOuts(info), lastChange: plan };
      }
      return { ...base, ...instanceOuts(await d.createInstance(spec, opts)) };
    }
    case "serial-link":
      return { ...base, up: (await d.ensureSerialLink(spec as never, opts)).up };
    case "instance-group": {
      const previous = olds ? (specOf(kind, olds) as unknown as InstanceGroupSpec) : undefined;
      const { result, members } = await d.applyGroup(spec, previous, opts);
      const summary = describeGroupChange(result);
      return {
        ...base,
        memberInfo: memberOuts(members),
        ...(olds && summary ? { lastChange: summary } : {}),
      };
    }
  }
}

/**
 * `upload: true` on a target host: the file named is on the machine running
 * the provider; it is sent by content and the spec names the copy there.
 */
async function uploaded(kind: SpecKind, props: Props, spec: Props): Promise<Props> {
  if (props.upload !== true || !sshOf(props)) return spec;
  if (kind === "kernel" && typeof spec.path === "string")
    return { ...spec, path: (await uploadFile(props, spec.path)).path };
  const source = spec.source as { kind?: string; path?: string } | undefined;
  if (kind === "base" && source?.kind === "image" && typeof source.path === "string")
    return { ...spec, source: { ...source, path: (await uploadFile(props, source.path)).path } };
  return spec;
}

/** The uploaded file of a kernel or base goes with it (a base's image was copied from it: same sha256). */
async function forgetUpload(kind: SpecKind, props: Props): Promise<void> {
  if (props.upload !== true || !sshOf(props)) return;
  const sha = kind === "kernel" ? props.sha256 : kind === "base" ? props.imageSha : undefined;
  if (typeof sha === "string") await removeUploaded(props, sha);
}

/**
 * A create that failed after the resource came to exist on the host (a
 * cleanup that could not finish, a deadline that ran out late) is reported
 * as Pulumi's partial failure: the id and what the host has are recorded, so
 * the next up repairs it instead of creating it a second time. A create that
 * left nothing behind fails plainly.
 */
async function partialFailure(
  kind: SpecKind,
  id: string,
  props: Props,
  provider: unknown,
  e: unknown,
): Promise<unknown> {
  if (!id || !(e instanceof Error)) return e;
  const found = await outputsOnHost(kind, id, props, driverFor(props)).catch(() => undefined);
  if (!found) return e;
  return Object.assign(e, {
    id,
    properties: {
      ...props,
      ...found,
      schemaVersion: OUTPUT_SCHEMA_VERSION,
      providerVersion: PROVIDER_VERSION,
      __provider: provider,
    },
    reasons: [e.message],
  });
}

/** UMLFLEET_CONFLICT because the resource of that name is another stack's (src/host/owners.ts). */
function isOwnershipConflict(e: unknown): boolean {
  return e instanceof UmlfleetError && e.code === "UMLFLEET_CONFLICT" && Array.isArray(e.details.owners);
}

/** A Host's inputs and its facts. */
async function hostApply(props: Props): Promise<Props> {
  return {
    ...props,
    ...(await hostOutputs(props)),
    schemaVersion: OUTPUT_SCHEMA_VERSION,
    providerVersion: PROVIDER_VERSION,
  };
}

function kernelOuts(k: KernelInfo): Props {
  return { bootPath: k.path, sha256: k.sha256, version: k.version };
}

function baseOuts(b: BaseInfo): Props {
  return { imagePath: b.imagePath, imageSha: b.imageSha, sizeBytes: b.sizeBytes, drift: b.drift };
}

function diskOuts(d: DiskInfo): Props {
  return {
    path: d.path,
    sizeBytes: d.sizeBytes,
    ...(d.backingPath ? { backingPath: d.backingPath } : {}),
    diskId: d.diskId,
    drift: d.problem ?? "",
  };
}

function networkOuts(n: NetworkInfo): Props {
  return { switchDir: n.switchDir, running: n.running, ...(n.pid ? { pid: n.pid } : {}) };
}

function instanceOuts(st: InstanceInfo): Props {
  return {
    instanceId: st.instanceId,
    state: st.state,
    ...(st.pid ? { pid: st.pid } : {}),
    ...(st.startedAtMs ? { startedAtMs: st.startedAtMs } : {}),
    consoleLog: st.consoleLog,
    mconsoleSocket: st.mconsoleSocket,
    serialPorts: st.serialLines,
    nicInfo: st.nics,
    diskInfo: st.disks,
    bootMemoryMiB: st.maxMemoryMiB,
    bootCount: st.bootCount,
    ...(st.startupExitCode !== undefined ? { startupExitCode: st.startupExitCode } : {}),
  };
}

/**
 * Per member: what an Instance resource has as outputs; `state: "missing"` for
 * one gone from the host, `"damaged"` (with the `problem`) for one whose
 * overlay is gone: drift that diff turns into an update, which remakes it.
 */
function memberOuts(members: Record<string, MemberInfo>): Props {
  return Object.fromEntries(
    Object.entries(members).map(([m, info]) => {
      if (info.state === "missing") return [m, { state: "missing" }];
      const outs = instanceOuts(info as InstanceInfo);
      return [m, "problem" in info ? { ...outs, state: "damaged", problem: info.problem } : outs];
    }),
  );
}

/**
 * Every create, update and delete runs under its kind's deadline, with one
 * signal threaded down to the host: when it passes, the operation stops and
 * cleans up (Pulumi never cancels a dynamic provider). Pulumi shows only the
 * message, so it carries the code.
 */
async function withDeadline<T>(kind: Kind, op: string, fn: (signal: AbortSignal) => Promise<T>): Promise<T> {
  return tracked(async () => {
    try {
      return await deadline(`${kind} ${op}`, { timeoutMs: DEADLINE_MS[kind] }, fn);
    } catch (e) {
      if (e instanceof InvalidSpecError || e instanceof UmlfleetError) e.message = `[${e.code}] ${e.message}`;
      throw e;
    }
  });
}

// ---- watchdog ------------------------------------------------------------------

/** Creates, updates, deletes and reads running now. */
let inFlight = 0;

async function tracked<T>(fn: () => Promise<T>): Promise<T> {
  inFlight++;
  try {
    return await fn();
  } finally {
    inFlight--;
  }
}

/**
 * Pulumi never tells a dynamic provider that its engine is gone: after kill -9
 * of the `pulumi` CLI, this process and the /bin/sh script that started it
 * (`pulumi-resource-pulumi-nodejs`) kept running for good (measured, issue #8).
 * So a provider process watches the CLI by pid and start time, and exits once
 * the CLI is gone and no create, update, delete or read is running: those
 * finish, so the host is left as a whole operation leaves it and the next run
 * adopts what it made. Started only in the dynamic-provider process (its main
 * module) under a `pulumi` process, never where a test or a program imports
 * this module.
 */
export function startWatchdog(intervalMs = 1_000): ProcessIdentity | undefined {
  if (!/[/\\]cmd[/\\]dynamic-provider([/\\]index\.js)?$/.test(process.argv[1] ?? "")) return undefined;
  const engine = engineProcess();
  if (!engine) return undefined;
  setInterval(() => {
    if (inFlight === 0 && !isAlive(engine)) process.exit(0);
  }, intervalMs).unref();
  return engine;
}

/** The `pulumi` CLI this provider serves (the provider's parent is the /bin/sh wrapper). */
export function engineProcess(pid = process.ppid): ProcessIdentity | undefined {
  return ancestorNamed("pulumi", pid);
}

startWatchdog();
