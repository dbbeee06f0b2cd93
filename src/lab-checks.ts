import { UmlfleetError, type FieldProblem } from "./errors";
import type { LabCheck, LabChecksSpec } from "./spec";

/**
 * Lab checks as code (LabChecks): what each check runs in which guest, and
 * whether what came back passes. Pure apart from the `exec` it is given (the
 * host driver's, in the provider).
 */

/** One check's result, as stack outputs show it. */
export interface CheckResult {
  ok: boolean;
  /** The guest guest ran it in. */
  on: string;
  /** The script's exit status; null when it could not run (guest down, deadline). */
  exitCode: number | null;
  /** The end of its output (stdout and stderr), at most MAX_OUTPUT characters. */
  output: string;
  /** Why it failed, in a line. */
  reason?: string;
}
/** How much of a check's output is kept (its end: where a failure shows). */
export const MAX_OUTPUT = 4096;
const DEFAULT_TIMEOUT_MS = 30_000;
const DEFAULT_COUNT = 3;

type Exec = (
  guest: string,
  script: string,
  opts: { timeoutMs: number },
) => Promise<{ exitCode: number; output: string }>;

/** Rules the schema cannot say: exactly one of reach and command, names unique. */
export function labChecksProblems(spec: LabChecksSpec): FieldProblem[] {
  const out: FieldProblem[] = [];
  const seen = new Set<string>();
  spec.checks.forEach((c, i) => {
    if ((c.reach === undefined) === (c.command === undefined))
      out.push({
        field: `/checks/${i}`,
        value: c.name,
        message: "must have exactly one of reach and command",
      });
    if (seen.has(c.name))
      out.push({ field: `/checks/${i}/name`, value: c.name, message: "names another check too" });
    seen.add(c.name);
  });
  return out;
}

/** The guest a check runs in and the script it runs there. */
export function checkScript(c: LabCheck): { on: string; script: string } {
  if (c.reach) {
    // The address matched schema common.json ipAddress (digits, '.', ':', a-f): nothing to quote.
    return { on: c.reach.from, script: `ping -c ${c.reach.count ?? DEFAULT_COUNT} -W 2 ${c.reach.to}` };
  }
  return { on: c.command!.on, script: c.command!.run };
}

const tail = (s: string) => (s.length > MAX_OUTPUT ? `...${s.slice(-MAX_OUTPUT)}` : s);

/** Whether what the guest answered passes the check. */
export function judge(c: LabCheck, r: { exitCode: number; output: string }): CheckResult {
  const on = checkScript(c).on;
  const base = { on, exitCode: r.exitCode, output: tail(r.output) };
  if (c.reach)
    return r.exitCode === 0
      ? { ok: true, ...base }
      : { ok: false, ...base, reason: `${on} got no reply from ${c.reach.to}` };
  const want = c.command!.expect?.exitCode ?? 0;
  if (r.exitCode !== want)
    return { ok: false, ...base, reason: `exit status ${r.exitCode}, expected ${want}` };
  const text = c.command!.expect?.output;
  if (text !== undefined && !r.output.includes(text))
    return { ok: false, ...base, reason: `output does not contain ${JSON.stringify(text)}` };
  return { ok: true, ...base };
}

/** Runs every check, one after another; a check that cannot run fails (it never throws). */
export async function runChecks(spec: LabChecksSpec, exec: Exec): Promise<Record<string, CheckResult>> {
  const results: Record<string, CheckResult> = {};
  for (const c of spec.checks) {
    const { on, script } = checkScript(c);
    try {
      results[c.name] = judge(c, await exec(on, script, { timeoutMs: c.timeoutMs ?? DEFAULT_TIMEOUT_MS }));
    } catch (e) {
      const why = e instanceof UmlfleetError ? `[${e.code}] ${e.message}` : String(e);
      results[c.name] = {
        ok: false,
        on,
        exitCode: null,
        output: "",
        reason: `could not run in ${on}: ${why}`,
      };
    }
  }
  return results;
}

/** UMLFLEET_CHECK_FAILED naming each failed check, with its reason and output. */
export function checksFailed(results: Record<string, CheckResult>): UmlfleetError | undefined {
  const failed = Object.entries(results).filter(([, r]) => !r.ok);
  if (failed.length === 0) return undefined;
  const parts = failed.map(
    ([name, r]) =>
      `check "${name}" failed: ${r.reason}${r.output ? `\n--- output (${r.on}) ---\n${r.output.trimEnd()}\n---` : ""}`,
  );
  return new UmlfleetError(
    "UMLFLEET_CHECK_FAILED",
    `${failed.length} of ${Object.keys(results).length} lab checks failed: ${parts.join("\n")}`,
    { failed: failed.map(([name]) => name) },
  );
}
