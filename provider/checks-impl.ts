/**
 * LabChecks' provider, loaded by name in the dynamic-provider process (see
 * shim.ts). Checks run through the host driver's exec, in the guests they
 * name; they change nothing on the host, so delete has nothing to do.
 */
import { randomUUID } from "node:crypto";
import { checksFailed, runChecks } from "../src/lab-checks";
import { SpecValidator } from "../src/validation";
import { defaultStateDir, driverFor, sshOf } from "./driver-factory";
// Loading impl starts the provider process's watchdog (it ends the process when the engine is gone).
import { UNKNOWN } from "./impl";

type Props = Record<string, unknown>;
const validator = new SpecValidator();

const clean = (props: Props): Props =>
  Object.fromEntries(Object.entries(props).filter(([k, v]) => !k.startsWith("__") && v !== undefined));
const isUnknown = (v: unknown): boolean =>
  v === UNKNOWN ||
  (Array.isArray(v) ? v.some(isUnknown) : !!v && typeof v === "object" && Object.values(v).some(isUnknown));
const same = (a: unknown, b: unknown) => JSON.stringify(a ?? null) === JSON.stringify(b ?? null);
/** Inputs that, changed, re-run the checks. */
const INPUTS = ["checks", "boots", "host", "stateDir"];

export function check(
  _olds: Props,
  news: Props,
): { inputs: Props; failures: { property: string; reason: string }[] } {
  const inputs = clean(news);
  delete inputs.results;
  delete inputs.passed;
  if (inputs.stateDir === undefined && !sshOf(inputs)) inputs.stateDir = defaultStateDir();
  if (isUnknown(inputs.checks)) return { inputs, failures: [] };
  const problems = validator.labChecksProblems(structuredClone({ checks: inputs.checks }));
  return {
    inputs,
    failures: problems.map((p) => ({
      property: "checks",
      reason: `lab-checks${p.field}: ${p.message} (got ${JSON.stringify(p.value) ?? "nothing"})`,
    })),
  };
}

/** A change re-runs the checks, and so does the up after a failed run (a refresh that found one failing). */
export function diff(_id: string, olds: Props, news: Props) {
  const changed = INPUTS.filter((k) => !same(olds[k], news[k]));
  const rerun = olds.passed === false;
  const detailedDiff = Object.fromEntries(
    [...changed, ...(rerun && changed.length === 0 ? ["passed"] : [])].map((k) => [
      k,
      { kind: "update" as const, inputDiff: k !== "passed" },
    ]),
  );
  return { changes: changed.length > 0 || rerun, replaces: [], detailedDiff };
}

async function run(inputs: Props): Promise<{ results: Props; passed: boolean; error?: Error }> {
  const spec = validator.validateLabChecks({ checks: inputs.checks });
  const driver = driverFor(inputs);
  const results = await runChecks(spec, (guest, script, opts) => driver.exec(guest, script, opts));
  const error = checksFailed(results);
  return { results: results as unknown as Props, passed: error === undefined, ...(error ? { error } : {}) };
}

export async function create(news: Props): Promise<{ id: string; outs: Props }> {
  const inputs = clean(news);
  const r = await run(inputs);
  // Pulumi shows only the message: it carries the code, as impl.ts's errors do.
  if (r.error) throw Object.assign(r.error, { message: `[UMLFLEET_CHECK_FAILED] ${r.error.message}` });
  return { id: `checks-${randomUUID()}`, outs: { ...inputs, results: r.results, passed: true } };
}

export async function update(_id: string, _olds: Props, news: Props): Promise<{ outs: Props }> {
  return { outs: (await create(news)).outs };
}

/**
 * Refresh runs every check again and fails nothing (the next up does). When
 * every check has the verdict it had, the recorded results stay as they are:
 * a ping's timings differ on every run, and a refresh that rewrote them would
 * show drift to `pulumi preview --refresh --expect-no-changes` where there is
 * none.
 */
export async function read(id: string, props: Props): Promise<{ id: string; props: Props }> {
  const inputs = clean(props);
  const r = await run(inputs);
  if (sameVerdicts(props.results, r.results)) return { id, props };
  return { id, props: { ...inputs, results: r.results, passed: r.passed } };
}

/** Do two runs' results pass and fail the same checks? */
export function sameVerdicts(before: unknown, after: Props): boolean {
  if (!before || typeof before !== "object") return false;
  const old = before as Record<string, { ok?: unknown }>;
  const names = Object.keys(after);
  return (
    names.length === Object.keys(old).length &&
    names.every((n) => old[n]?.ok === (after[n] as { ok?: unknown } | undefined)?.ok)
  );
}

export function remove(): Promise<void> {
  return Promise.resolve();
}
