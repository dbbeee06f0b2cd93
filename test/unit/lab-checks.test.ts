import { describe, expect, it } from "vitest";
import { UmlfleetError } from "../../src/errors";
import { checkScript, checksFailed, judge, MAX_OUTPUT, runChecks } from "../../src/lab-checks";
import type { LabChecksSpec } from "../../src/spec";
import { diff, sameVerdicts } from "../../provider/checks-impl";

const reach = { name: "ping", reach: { from: "pc1", to: "10.0.0.2" } };
const cmd = { name: "web", command: { on: "pc2", run: "wget -qO- localhost", expect: { output: "<html" } } };

describe("lab checks", () => {
  it("a reach pings from its guest; a command runs its script in its guest", () => {
    expect(checkScript(reach)).toEqual({ on: "pc1", script: "ping -c 3 -W 2 10.0.0.2" });
    expect(checkScript({ ...reach, reach: { ...reach.reach, count: 1 } }).script).toBe(
      "ping -c 1 -W 2 10.0.0.2",
    );
    expect(checkScript(cmd)).toEqual({ on: "pc2", script: "wget -qO- localhost" });
  });

  it("judges exit status and expected output", () => {
    expect(judge(reach, { exitCode: 0, output: "1 packets received" }).ok).toBe(true);
    expect(judge(reach, { exitCode: 1, output: "" })).toMatchObject({
      ok: false,
      reason: "pc1 got no reply from 10.0.0.2",
    });
    expect(judge(cmd, { exitCode: 0, output: "<html>hi" }).ok).toBe(true);
    expect(judge(cmd, { exitCode: 0, output: "404" })).toMatchObject({
      ok: false,
      reason: 'output does not contain "<html"',
    });
    expect(judge(cmd, { exitCode: 1, output: "<html" })).toMatchObject({
      ok: false,
      reason: "exit status 1, expected 0",
    });
    const wantsFailure = { name: "no", command: { on: "pc2", run: "false", expect: { exitCode: 1 } } };
    expect(judge(wantsFailure, { exitCode: 1, output: "" }).ok).toBe(true);
    expect(judge(wantsFailure, { exitCode: 0, output: "" }).ok).toBe(false);
  });

  it("keeps the end of a long output", () => {
    const r = judge(cmd, { exitCode: 0, output: `${"x".repeat(2 * MAX_OUTPUT)}<html END` });
    expect(r.output.length).toBeLessThanOrEqual(MAX_OUTPUT + 3);
    expect(r.output.endsWith("<html END")).toBe(true);
  });

  it("runs every check; one that cannot run fails with the reason, and the error names each failed one with its output", async () => {
    const spec: LabChecksSpec = {
      checks: [reach, cmd, { name: "down", command: { on: "pc3", run: "true" } }],
    };
    const ran: string[] = [];
    const results = await runChecks(spec, (guest, script) => {
      ran.push(`${guest}: ${script}`);
      if (guest === "pc3")
        return Promise.reject(new UmlfleetError("UMLFLEET_NOT_RUNNING", "pc3 is not running"));
      return Promise.resolve(
        guest === "pc1" ? { exitCode: 0, output: "ok" } : { exitCode: 0, output: "Not Found\n" },
      );
    });
    expect(ran).toEqual(["pc1: ping -c 3 -W 2 10.0.0.2", "pc2: wget -qO- localhost", "pc3: true"]);
    expect(results.ping!.ok).toBe(true);
    expect(results.down).toMatchObject({ ok: false, exitCode: null });
    expect(results.down!.reason).toContain("[UMLFLEET_NOT_RUNNING] pc3 is not running");
    const err = checksFailed(results)!;
    expect(err.code).toBe("UMLFLEET_CHECK_FAILED");
    expect(err.message).toContain(
      '2 of 3 lab checks failed: check "web" failed: output does not contain "<html"',
    );
    expect(err.message).toContain("--- output (pc2) ---\nNot Found\n---");
    expect(err.message).toContain('check "down" failed: could not run in pc3');
    expect(err.details.failed).toEqual(["web", "down"]);
    expect(checksFailed({ ping: results.ping! })).toBeUndefined();
  });
});

describe("LabChecks' diff: when checks run again", () => {
  const inputs = { checks: [reach], boots: ["id-1#1"], stateDir: "/s" };
  const outs = { ...inputs, results: {}, passed: true };
  it("not on a no-change up (so --expect-no-changes stays quiet)", () =>
    expect(diff("id", outs, inputs).changes).toBe(false));
  it("when a check changes, or a guest it names boots again", () => {
    expect(diff("id", outs, { ...inputs, checks: [cmd] })).toMatchObject({ changes: true, replaces: [] });
    expect(diff("id", outs, { ...inputs, boots: ["id-1#2"] }).changes).toBe(true);
  });
  it("on the up after a run that failed (a refresh found a check failing)", () =>
    expect(diff("id", { ...outs, passed: false }, inputs)).toMatchObject({
      changes: true,
      detailedDiff: { passed: { kind: "update", inputDiff: false } },
    }));
});

describe("LabChecks' refresh keeps the recorded results while every verdict is the same", () => {
  const ok = (output: string) => ({ ok: true, on: "pc1", exitCode: 0, output });
  it("same verdicts, other output: no drift", () =>
    expect(sameVerdicts({ a: ok("time=0.4 ms") }, { a: ok("time=0.7 ms") })).toBe(true));
  it("a verdict that changed, a check added or removed, or nothing recorded: drift", () => {
    expect(sameVerdicts({ a: ok("") }, { a: { ...ok(""), ok: false } })).toBe(false);
    expect(sameVerdicts({ a: ok("") }, { a: ok(""), b: ok("") })).toBe(false);
    expect(sameVerdicts({ a: ok(""), b: ok("") }, { a: ok("") })).toBe(false);
    expect(sameVerdicts(undefined, { a: ok("") })).toBe(false);
  });
});
