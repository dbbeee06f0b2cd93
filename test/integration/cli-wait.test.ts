import { spawn, type ChildProcess } from "node:child_process";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { TestHost } from "../helpers/runtime";

const BIN = join(__dirname, "..", "..", "bin", "umlfleet");

/** `umlfleet wait ...` as a user runs it, stdout a pipe; resolves with its status and output. */
function startWait(args: string[]) {
  const child: ChildProcess = spawn(process.execPath, [BIN, "wait", ...args], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  let err = "";
  child.stdout!.on("data", (d: Buffer) => (out += d.toString()));
  child.stderr!.on("data", (d: Buffer) => (err += d.toString()));
  const done = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
  return { child, done, out: () => out, err: () => err };
}

describe("umlfleet wait: a fleet coming up, followed from the state folder", () => {
  const host = new TestHost("cli-wait");
  const started: ChildProcess[] = [];
  afterAll(async () => {
    for (const c of started) if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL");
    await host.destroy();
  });

  it("prints ready N/3 as plain lines, N never falling, while 3 guests boot; ends with 3/3 and exit 0", async () => {
    const w = startWait(["--state-dir", host.stateDir, "--count", "3", "--timeout-ms", "300000"]);
    started.push(w.child);
    // Its first line before anything exists: the guests it sees are those made after it started.
    await expect.poll(w.out, { timeout: 20_000 }).toContain("ready 0/3 (not made yet 3)\n");
    await host.lab(["a", "b", "c"]);
    expect(await w.done, w.err()).toBe(0);
    const lines = w.out().split("\n").filter(Boolean);
    // A pipe gets no terminal controls: one plain line per change.
    expect(w.out()).not.toMatch(/[\r\x1b]/);
    for (const l of lines) expect(l).toMatch(/^ready [0-3]\/3( \(.*\))?$/);
    const ready = lines.map((l) => Number(/^ready (\d)/.exec(l)![1]));
    expect(ready).toEqual([...ready].sort());
    expect(lines.length).toBeGreaterThan(1);
    expect(new Set(lines).size).toBe(lines.length); // a change per line, no repeats
    expect(lines.at(-1)).toBe("ready 3/3");
    expect(w.err()).toBe("");
  });

  it("named guests: all ready is 0 at once; one stopped is 1, naming it", async () => {
    const ok = startWait(["--state-dir", host.stateDir, "a", "b", "c"]);
    started.push(ok.child);
    expect(await ok.done).toBe(0);
    expect(ok.out()).toBe("ready 3/3\n");
    await host.rt.stopInstance("b", { timeoutMs: 10_000 });
    const bad = startWait(["--state-dir", host.stateDir, "--timeout-ms", "60000", "a", "b", "c"]);
    started.push(bad.child);
    expect(await bad.done).toBe(1);
    expect(bad.out()).toBe("ready 2/3 (stopped 1)\n");
    expect(bad.err()).toBe("umlfleet wait: not all will be ready: b stopped\n");
  });
});
