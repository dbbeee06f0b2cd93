import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, expect } from "vitest";
import { LocalRuntime } from "../../src";
import { newTestDir, processesMentioning } from "../helpers/runtime";
import { haveCli, type Result } from "./stack-harness";

export { haveCli };
const driver = join(__dirname, "fixtures", "example-driver.js");

/**
 * One example (examples/<name>/lab.ts) as a test stack: brought up and torn
 * down through the real `pulumi` CLI (Automation API, file backend) in a
 * fresh folder, its guests reached through a runtime over the stack's state
 * folder. After the tests, whatever is left is destroyed, and the host must
 * hold no process or file of it.
 */
export function useExample(name: string, opts: { env?: Record<string, string>; timeoutMs?: number } = {}) {
  const dir = newTestDir(`ex-${name}`);
  const stateDir = join(dir, "s");
  const backendDir = join(dir, "b");
  const pulumi = (
    action: "up" | "preview" | "refresh" | "destroy" | "export",
    options: Record<string, unknown> = {},
  ): Result => {
    const out = execFileSync(
      "node",
      [driver, JSON.stringify({ example: name, options, action, stateDir, backendDir, env: opts.env })],
      { encoding: "utf8", timeout: opts.timeoutMs ?? 600_000, maxBuffer: 64 << 20 },
    );
    const line = out.split("\n").find((l) => l.startsWith("@@RESULT "));
    if (!line) throw new Error(`driver printed no result:\n${out}`);
    return JSON.parse(line.slice("@@RESULT ".length)) as Result;
  };
  const ok = (r: Result) => {
    if (r.error) throw new Error(`${r.error}\n${r.stdout}`);
    return r;
  };
  const leftOnHost = () => ({
    processes: processesMentioning(stateDir),
    files: existsSync(stateDir)
      ? execFileSync("find", [stateDir], { encoding: "utf8" }).trim().split("\n")
      : [],
  });
  beforeAll(() => mkdirSync(dir, { recursive: true }));
  afterAll(async () => {
    if (existsSync(stateDir)) {
      pulumi("destroy");
      await new LocalRuntime({ stateDir }).destroyAll();
    }
    rmSync(dir, { recursive: true, force: true });
  });
  const rt = () => new LocalRuntime({ stateDir });
  return {
    dir,
    stateDir,
    pulumi,
    ok,
    rt,
    /** A command in a guest; its output, or a thrown error with it. */
    sh: async (guest: string, script: string, timeoutMs = 30_000) => {
      const r = await rt().exec(guest, script, { timeoutMs });
      if (r.exitCode !== 0) throw new Error(`${guest}: exited ${r.exitCode}: ${script}\n${r.output}`);
      return r.output;
    },
    /** `pulumi destroy`, then: nothing of the stack is left on the host. */
    destroyClean: () => {
      ok(pulumi("destroy"));
      expect(leftOnHost()).toEqual({ processes: [], files: [] });
    },
  };
}
