/**
 * The provider's implementation, loaded in the dynamic-provider process by
 * `require("umlfleet/dist/provider/impl")` from the serialized shim (see
 * shim.ts for why). Everything here may change between versions; what it reads
 * from state (the outputs of older versions) is versioned by `schemaVersion`.
 */
import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import { accessSync, constants, readFileSync, readlinkSync, statSync } from "node:fs";
import { basename, join } from "node:path";
import { InvalidSpecError, UmlfleetError, type FieldProblem } from "../src/errors";
import { planInstanceChange, type ChangePlan } from "../src/host/change-plan";
import { buildKernel } from "../src/host/kernels";
import { identify, isAlive, type ProcessIdentity } from "../src/host/process";
import { LocalRuntime } from "../src/host/runtime";
import { StateDir } from "../src/host/state";
import type { InstanceGroupSpec, SpecKind } from "../src/spec";
import { describeGroupChange, planGroupChange } from "../src/host/groups";
import { SpecValidator, packageRoot } from "../src/validation";

/** Pulumi's placeholder for values not known until apply (preview). */
export const UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9";
export const OUTPUT_SCHEMA_VERSION = 1;
/**
 * The umlfleet that created or last updated a resource, in its outputs
 * (`providerVersion`), so an upgrade shows in the state. Not an input: diff
 * ignores it, and an upgrade alone changes nothing.
 */
export const PROVIDER_VERSION = (
  JSON.parse(readFileSync(join(packageRoot(), "package.json"), "utf8")) as { version: string }
).version;

export type Kind = "kernel" | "base" | "disk" | "network" | "instance" | "serial-link" | "instance-group";
type Props = Record<string, unknown>;

/** Inputs that are not part of the runtime spec: where, and identities of what it depends on. */
const META: Record<Kind, string[]> = {
  kernel: ["stateDir"],
  base: ["stateDir"],
  disk: ["stateDir", "baseImageSha"],
  network: ["stateDir"],
  instance: ["stateDir", "kernelSha256", "rootDiskId", "change"],
  "serial-link": ["stateDir", "instanceIds"],
  "instance-group": ["stateDir", "baseImageSha", "kernelSha256", "change"],
};

/**
 * Properties create/update add to the inputs. `diff` gets the old outputs as
 * `olds`, so these must be left out when comparing with the new inputs.
 */
const OUTPUTS: Record<Kind, string[]> = {
  kernel: ["sha256", "version", "bootPath"],
  base: ["imagePath", "imageSha", "sizeBytes", "drift"],
  disk: ["path", "sizeBytes", "backingPath", "diskId"],
  network: ["switchDir", "running", "pid"],
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
const runtimes = new Map<string, LocalRuntime>();
function runtimeFor(stateDir: unknown): LocalRuntime {
  const dir = typeof stateDir === "string" && stateDir !== UNKNOWN ? stateDir : StateDir.defaultRoot();
  let rt = runtimes.get(dir);
  if (!rt) {
    rt = new LocalRuntime({ stateDir: dir }, validator);
    runtimes.set(dir, rt);
  }
  return rt;
}

const isUnknown = (v: unknown): boolean =>
  v === UNKNOWN ||
  (Array.isArray(v) ? v.some(isUnknown) : !!v && typeof v === "object" && Object.values(v).some(isUnknown));

function clean(props: Props): Props {
  const out: Props = {};
  for (const [k, v] of Object.entries(props)) if (!k.startsWith("__") && v !== undefined) out[k] = v;
  return out;
}

/** Outputs every kind records. */
const VERSIONS = ["schemaVersion", "providerVersion"];

/** The runtime spec inside a resource's inputs (or old outputs). */
function specOf(kind: Kind, props: Props): Props {
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

const SPEC_KIND: Partial<Record<Kind, SpecKind>> = {
  kernel: "kernel",
  base: "base",
  disk: "disk",
  network: "network",
  instance: "instance",
  "serial-link": "serial-link",
  "instance-group": "instance-group",
};

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
  const inputs = clean(news);
  if (inputs.stateDir === undefined) inputs.stateDir = StateDir.defaultRoot();
  const failures: CheckFailure[] = [];
  // The state folder reaches UML's command line too: refused here, before any step.
  if (!isUnknown(inputs.stateDir))
    for (const p of validator.stateDirProblems(inputs.stateDir))
      failures.push({
        property: "stateDir",
        reason: `${kind}/stateDir: ${p.message} (got ${JSON.stringify(p.value)})`,
      });
  const specKind = SPEC_KIND[kind];
  const spec = specOf(kind, inputs);
  if (specKind) {
    const partial = withoutUnknowns(spec);
    const problems = validator.problems(specKind, partial).filter(
      // A required field that is only unknown at preview is not missing.
      (p) => !(p.value === undefined && isUnknown(getPointer(spec, p.field))),
    );
    failures.push(...problems.map((p) => toFailure(specKind, p)));
    // Keep defaults out of the inputs: the program's own values are what diff compares.
  }
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
  const keys = new Set([...Object.keys(specOf(kind, o)), ...Object.keys(specOf(kind, n)), ...META[kind]]);
  if (kind === "instance") {
    const before = specOf(kind, o);
    const after = specOf(kind, n);
    if (isUnknown(after)) {
      for (const k of keys) if (!same(o[k], n[k])) mark(k, true);
    } else {
      const plan = planInstanceChange(before as never, after as never);
      for (const c of plan.changes) mark(c.field.slice(1), c.kind === "replace");
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
    for (const k of keys) if (!same(o[k], n[k])) mark(k, true);
    // Drift found by refresh: a dead switch or relay is restarted by update.
    if (kind === "network" && o.running === false && !replaces.length)
      detailedDiff.running = { kind: "update", inputDiff: false };
    if (kind === "base" && typeof o.drift === "string" && o.drift !== "" && !replaces.length)
      detailedDiff.drift = { kind: "update", inputDiff: false };
    if (kind === "serial-link" && o.up === false && !replaces.length)
      detailedDiff.up = { kind: "update", inputDiff: false };
  }
  return { changes: Object.keys(detailedDiff).length > 0, replaces, deleteBeforeReplace: true, detailedDiff };
}

// ---- create / read / update / delete -------------------------------------------

export async function create(kind: Kind, inputs: Props): Promise<{ id: string; outs: Props }> {
  return withDeadline(kind, "create", async () => {
    const props = clean(inputs);
    const outs = await apply(kind, props, undefined);
    return { id: String(props.name ?? outs.name), outs };
  });
}

export async function update(kind: Kind, _id: string, olds: Props, news: Props): Promise<{ outs: Props }> {
  return withDeadline(kind, "update", async () => ({ outs: await apply(kind, clean(news), clean(olds)) }));
}

export async function read(kind: Kind, id: string, props: Props): Promise<{ id?: string; props?: Props }> {
  return tracked(() => readNow(kind, id, props));
}

async function readNow(kind: Kind, id: string, props: Props): Promise<{ id?: string; props?: Props }> {
  const p = clean(props);
  const rt = runtimeFor(p.stateDir);
  const gone = { id: undefined, props: undefined };
  switch (kind) {
    case "kernel": {
      const path = String(p.bootPath ?? p.path);
      return existsExecutable(path) ? { id, props: { ...p, ...(await kernelFacts(path)) } } : gone;
    }
    case "base": {
      const r = rt.images.get(id);
      if (!r) return gone;
      // A changed or missing image is drift, named: the next up restores it
      // from its recipe when that gives the recorded bytes, or says why not.
      const i = await rt.images.integrity(r);
      return { id, props: { ...p, ...baseOuts(r), drift: i.ok ? "" : i.message } };
    }
    case "disk": {
      const r = rt.disks.get(id);
      if (!r) return gone;
      try {
        statSync(r.path);
      } catch {
        return gone; // deleted behind our back: the next up creates it again
      }
      return { id, props: { ...p, ...diskOuts(rt, id) } };
    }
    case "network": {
      const st = rt.networkStatus(id);
      return st ? { id, props: { ...p, ...networkOuts(rt, id) } } : gone;
    }
    case "instance": {
      if (!rt.instances.get(id)) return gone;
      return { id, props: { ...p, ...instanceOuts(rt, id) } };
    }
    case "serial-link": {
      const r = rt.links.get(id);
      return r ? { id, props: { ...p, up: rt.links.isUp(r) } } : gone;
    }
    case "instance-group":
      return { id, props: { ...p, memberInfo: groupOuts(rt, specOf(kind, p) as never) } };
  }
}

export async function remove(kind: Kind, id: string, props: Props): Promise<void> {
  return withDeadline(kind, "delete", async () => {
    const rt = runtimeFor(clean(props).stateDir);
    switch (kind) {
      case "kernel":
        return;
      case "base":
        return rt.removeBase(id);
      case "disk":
        return rt.removeDisk(id);
      case "network":
        return rt.removeNetwork(id);
      case "instance":
        return rt.removeInstance(id, { timeoutMs: 30_000 });
      case "serial-link":
        return rt.removeSerialLink(id);
      case "instance-group":
        return rt.groups.remove(specOf(kind, clean(props)) as never);
    }
  });
}

/** Create or update: make the host match `props`. Idempotent. */
async function apply(kind: Kind, props: Props, olds: Props | undefined): Promise<Props> {
  const rt = runtimeFor(props.stateDir);
  const spec = specOf(kind, props);
  const base = { ...props, schemaVersion: OUTPUT_SCHEMA_VERSION, providerVersion: PROVIDER_VERSION };
  switch (kind) {
    case "kernel": {
      // A build form is built once per content hash; the path is an output.
      const path = spec.build ? await buildKernel(spec.build) : String(spec.path);
      if (!existsExecutable(path)) {
        throw new UmlfleetError(
          "UMLFLEET_NOT_FOUND",
          `kernel/path: ${JSON.stringify(path)} is not an executable file`,
          {
            field: "/path",
          },
        );
      }
      return { ...base, bootPath: path, ...(await kernelFacts(path)) };
    }
    case "base":
      return { ...base, ...baseOuts(await rt.ensureBase(spec as never)) };
    case "disk":
      await rt.ensureDisk(spec as never);
      return { ...base, ...diskOuts(rt, String(spec.name)) };
    case "network":
      await rt.ensureNetwork(spec as never);
      return { ...base, ...networkOuts(rt, String(spec.name)) };
    case "instance": {
      const name = String(spec.name);
      let lastChange: ChangePlan | undefined;
      if (olds && rt.instances.get(name)) {
        lastChange = await rt.updateInstance(spec);
        if (rt.instanceStatus(name).state !== "running") await rt.startInstance(name);
      } else {
        await rt.createInstance(spec);
      }
      return { ...base, ...instanceOuts(rt, name), ...(lastChange ? { lastChange } : {}) };
    }
    case "serial-link":
      await rt.ensureSerialLink(spec as never);
      return { ...base, up: true };
    case "instance-group": {
      const result = await rt.groups.apply(spec, olds ? (specOf(kind, olds) as never) : undefined);
      const summary = describeGroupChange(result);
      return {
        ...base,
        memberInfo: groupOuts(rt, spec as never),
        ...(olds && summary ? { lastChange: summary } : {}),
      };
    }
  }
}

/**
 * Per member: what an Instance resource has as outputs; `state: "missing"` for
 * one gone from the host, `"damaged"` (with the `problem`) for one whose
 * overlay is gone: drift that diff turns into an update, which remakes it.
 */
function groupOuts(rt: LocalRuntime, spec: InstanceGroupSpec): Props {
  return Object.fromEntries(
    Object.keys(spec.members).map((m) => {
      if (!rt.instances.get(m)) return [m, { state: "missing" }];
      const problem = rt.groups.overlayProblem(spec.base, m);
      return [m, { ...instanceOuts(rt, m), ...(problem ? { state: "damaged", problem } : {}) }];
    }),
  );
}

function baseOuts(r: { imagePath: string; imageSha: string; sizeBytes: number }): Props {
  return { imagePath: r.imagePath, imageSha: r.imageSha, sizeBytes: r.sizeBytes, drift: "" };
}

function diskOuts(rt: LocalRuntime, name: string): Props {
  const r = rt.disks.get(name)!;
  return {
    path: r.path,
    sizeBytes: r.sizeBytes,
    ...(r.backingPath ? { backingPath: r.backingPath } : {}),
    // Identity of this disk file: a replaced disk of the same name gets a new one.
    diskId: createHash("sha256")
      .update(`${r.path}\0${statSync(r.path).birthtimeMs}\0${statSync(r.path).ino}`)
      .digest("hex")
      .slice(0, 16),
  };
}

function networkOuts(rt: LocalRuntime, name: string): Props {
  const st = rt.networkStatus(name)!;
  return { switchDir: st.switchDir, running: st.running, ...(st.pid ? { pid: st.pid } : {}) };
}

function instanceOuts(rt: LocalRuntime, name: string): Props {
  const st = rt.instanceStatus(name);
  const dir = statSync(rt.state.instanceDir(name));
  return {
    instanceId: createHash("sha256")
      .update(`${name}\0${dir.ino}\0${dir.birthtimeMs}`)
      .digest("hex")
      .slice(0, 16),
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

function existsExecutable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return statSync(path).isFile();
  } catch {
    return false;
  }
}

async function kernelFacts(path: string): Promise<Props> {
  const sha256 = createHash("sha256").update(readFileSync(path)).digest("hex");
  const version = await new Promise<string>((resolve) =>
    execFile(path, ["--version"], { timeout: 10_000, env: {} }, (_e, out) => resolve(String(out).trim())),
  );
  return { sha256, version };
}

async function withDeadline<T>(kind: Kind, op: string, fn: () => Promise<T>): Promise<T> {
  const ms = DEADLINE_MS[kind];
  let timer: NodeJS.Timeout | undefined;
  inFlight++;
  try {
    return await Promise.race([
      fn(),
      new Promise<never>((_, reject) => {
        timer = setTimeout(
          () =>
            reject(
              new UmlfleetError(
                "UMLFLEET_OPERATION_TIMEOUT",
                `${kind} ${op} did not finish within ${ms} ms`,
                {
                  kind,
                  op,
                },
              ),
            ),
          ms,
        );
      }),
    ]);
  } catch (e) {
    // Pulumi shows only the message: make it carry the code and the field.
    if (e instanceof InvalidSpecError || e instanceof UmlfleetError) e.message = `[${e.code}] ${e.message}`;
    throw e;
  } finally {
    clearTimeout(timer);
    inFlight--;
  }
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

/**
 * The nearest ancestor named `pulumi` (the CLI: the provider's parent is the
 * /bin/sh wrapper), as pid and start time; undefined when there is none.
 */
export function engineProcess(pid = process.ppid): ProcessIdentity | undefined {
  for (let depth = 0; pid > 1 && depth < 16; depth++) {
    let stat: string;
    try {
      stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    } catch {
      return undefined;
    }
    // "pid (comm) state ppid ...": comm may hold spaces and parentheses.
    const comm = stat.slice(stat.indexOf("(") + 1, stat.lastIndexOf(")"));
    if (comm === "pulumi" || exeName(pid) === "pulumi") return identify(pid) ?? undefined;
    pid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
  }
  return undefined;
}

function exeName(pid: number): string | undefined {
  try {
    return basename(readlinkSync(`/proc/${pid}/exe`));
  } catch {
    return undefined;
  }
}

startWatchdog();
