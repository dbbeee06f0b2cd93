/**
 * The Host resource: where other resources live. Without `ssh`, the machine
 * running the provider; with it, a target host reached over the system ssh
 * running `umlfleet-agent dial-stdio` (docs/hosts.md). Create and refresh
 * connect, check the agent's version against the provider's, and report the
 * host's facts; a host that lacks something umlfleet needs fails with one
 * error listing all of it and the command that installs it.
 */
import { UmlfleetError, type FieldProblem } from "../src/errors";
import type { HostDriver } from "../src/host/driver";
import { packageVersion, SpecValidator } from "../src/validation";
import { defaultStateDir, driverFor, hostIdOf, remoteVersion, type SshSpec, UNKNOWN } from "./driver-factory";

type Props = Record<string, unknown>;
type HostFact = Awaited<ReturnType<HostDriver["hostFacts"]>>[number];

const validator = new SpecValidator();

/** Which fields of `ssh` say which host and account: changing one is another host. */
const IDENTITY = ["host", "port", "user", "agentCommand", "stateDir"] as const;

const isUnknown = (v: unknown): boolean =>
  v === UNKNOWN ||
  (Array.isArray(v) ? v.some(isUnknown) : !!v && typeof v === "object" && Object.values(v).some(isUnknown));

/** Problems with a Host's inputs (a copy is validated: defaults stay out of the inputs). */
export function hostSpecProblems(spec: Props): FieldProblem[] {
  const copy = JSON.parse(JSON.stringify(spec)) as Props;
  return validator.hostProblems(copy);
}

/**
 * A Host's check: its inputs against schema/host.json, then the host itself
 * (connect, version, needs), so that a wrong host key or user, a host
 * without umlfleet or UML, or another version fails `pulumi preview`, before
 * anything is made anywhere. Errors carry their code; never a key.
 *
 * A target host already in the stack and reached the same way (`olds`) is
 * not probed again: its needs were checked when it was made, and `pulumi
 * refresh` (or a change to its `ssh`) checks them anew. Its connection and
 * version are checked by its diff, which waits for the connection this check
 * begins: the engine makes checks one resource at a time (and diffs too,
 * unless PULUMI_PARALLEL_DIFF=true), so a check that waited cost every `up`
 * and preview 0.35 s per host, one host after another (measured, 3 hosts).
 */
export async function checkHost(
  news: Props,
  olds: Props = {},
): Promise<{ inputs: Props; failures: { property: string; reason: string }[] }> {
  const checked = checkHostSpec(news);
  if (checked.failures.length > 0 || isUnknown(checked.inputs)) return checked;
  const ssh = checked.inputs.ssh as SshSpec | undefined;
  if (ssh !== undefined && olds.ssh !== undefined && hostChange(olds, checked.inputs) === "same") {
    void connecting(ssh);
    return checked;
  }
  try {
    await hostOutputs(checked.inputs);
  } catch (e) {
    checked.failures.push({ property: "", reason: hostFailure(ssh, e) });
  }
  return checked;
}

const hostFailure = (ssh: SshSpec | undefined, e: unknown): string =>
  `host ${hostIdOf(ssh)}: ${e instanceof UmlfleetError ? `[${e.code}] ` : ""}${e instanceof Error ? e.message : String(e)}`;

/** Connections (and version checks) begun by checks, by the Host's ssh: their diffs wait for them. */
const pending = new Map<string, Promise<unknown>>();

function connecting(ssh: SshSpec): Promise<unknown> {
  const key = JSON.stringify(ssh);
  let p = pending.get(key);
  if (!p) {
    p = remoteVersion(ssh);
    p.catch(() => undefined); // reported by the diff
    pending.set(key, p);
  }
  return p;
}

/**
 * The diff's half of a known Host's check: connected, and the same umlfleet
 * version, or an error naming the host and the code (never a key).
 */
export async function verifyKnownHost(inputs: Props): Promise<void> {
  const ssh = inputs.ssh as SshSpec | undefined;
  if (!ssh || isUnknown(ssh)) return;
  const key = JSON.stringify(ssh);
  try {
    await connecting(ssh);
  } catch (e) {
    throw new UmlfleetError(
      e instanceof UmlfleetError ? e.code : "UMLFLEET_HOST_UNREACHABLE",
      hostFailure(ssh, e),
      { hostId: hostIdOf(ssh) },
    );
  } finally {
    pending.delete(key); // the next check (another up in this process) connects anew if need be
  }
}

function checkHostSpec(news: Props): { inputs: Props; failures: { property: string; reason: string }[] } {
  const inputs: Props = {};
  for (const [k, v] of Object.entries(news)) if (!k.startsWith("__") && v !== undefined) inputs[k] = v;
  const spec = inputs.ssh === undefined ? {} : { ssh: inputs.ssh };
  // A field only unknown at preview (a key read from another resource) is checked at apply.
  const problems = isUnknown(spec) ? [] : hostSpecProblems(spec);
  return {
    inputs,
    // No `property`: the engine would print the property's value with the
    // failure, secret or not (measured: a check failure on `ssh` printed the
    // private key). The reason names the field.
    failures: problems.map((p) => ({
      property: "",
      reason: `host${p.field || "/"}: ${p.message} (got ${JSON.stringify(p.value) ?? "nothing"})`,
    })),
  };
}

/** Same host (nothing), the same host reached otherwise (a new key: update), or another host (replace). */
export function hostChange(olds: unknown, news: unknown): "same" | "update" | "replace" {
  const o = (olds ?? {}) as { ssh?: Props };
  const n = (news ?? {}) as { ssh?: Props };
  if (!o.ssh !== !n.ssh) return "replace";
  if (!o.ssh || !n.ssh) return "same";
  const id = (s: Props) => JSON.stringify(IDENTITY.map((k) => s[k] ?? null));
  if (id(o.ssh) !== id(n.ssh)) return "replace";
  return JSON.stringify(o.ssh) === JSON.stringify(n.ssh) ? "same" : "update";
}

/** Connect, check the version and the needs, and return the facts as outputs. */
export async function hostOutputs(props: Props): Promise<Props> {
  const ssh = props.ssh as SshSpec | undefined;
  const hostId = hostIdOf(ssh);
  const { version, stateDir } = ssh
    ? await remoteVersion(ssh)
    : { version: packageVersion(), stateDir: defaultStateDir() };
  const d = driverFor(ssh ? { host: { hostId, ssh }, stateDir } : { stateDir });
  const facts = await d.hostFacts();
  const missing = facts.filter((f) => f.scope === "host" && !f.ok && !f.optional);
  if (missing.length > 0) throw lacksError(hostId, missing);
  const fact = (id: string) => facts.find((f) => f.id === id);
  const num = (id: string) => Number(fact(id)?.detail ?? NaN);
  const kernelPath = fact("uml-kernel")?.detail ?? "";
  const k = kernelPath ? await d.kernelInfo(kernelPath) : undefined;
  return {
    hostId,
    stateDir,
    version,
    kernels: k ? [{ path: k.path, version: k.version, sha256: k.sha256, default: true }] : [],
    vde2: fact("vde_switch")?.detail ?? "",
    bubblewrap: fact("bwrap")?.detail ?? "",
    cores: num("cpu-cores"),
    memoryMiB: num("memory"),
    freeDiskMiB: num("state-disk-free"),
    userNamespaces: fact("user-namespaces")?.ok ?? false,
    shmExec: fact("guest-ram-exec")?.ok ?? false,
    netTun: fact("net-tun")?.detail === "yes",
    facts: facts
      .filter((f) => f.scope !== "toolchain")
      .map((f) => ({ id: f.id, ok: f.ok, detail: f.detail })),
  };
}

/** One error for everything a host lacks, with one apt command for what packages provide. */
export function lacksError(hostId: string, missing: HostFact[]): UmlfleetError {
  const apt = missing.filter((f) => f.fix && /^(sudo )?apt-get install -y /.test(f.fix));
  const packages = [
    ...new Set(apt.flatMap((f) => f.fix!.replace(/^(sudo )?apt-get install -y /, "").split(/\s+/))),
  ];
  const sudo = apt.some((f) => f.fix!.startsWith("sudo ")) ? "sudo " : "";
  const other = missing.filter((f) => !apt.includes(f) && f.fix).map((f) => `${f.id}: ${f.fix}`);
  const fixes = [
    ...(packages.length > 0 ? [`${sudo}apt-get install -y ${packages.join(" ")}`] : []),
    ...other,
  ];
  return new UmlfleetError(
    "UMLFLEET_HOST_UNSUITABLE",
    `host ${hostId} lacks what umlfleet needs: ${missing.map((f) => `${f.id} (${f.what}: ${f.detail})`).join("; ")}. Fix on the host: ${fixes.join("; ")}`,
    { hostId, missing: missing.map((f) => f.id), fixes },
  );
}
