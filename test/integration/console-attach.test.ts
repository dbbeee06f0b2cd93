import { spawn } from "node:child_process";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TestHost } from "../helpers/runtime";

const UMLFLEET = join(__dirname, "..", "..", "bin", "umlfleet");

/** The real CLI (dist/, so `npm run build` first) with `input` piped to its stdin. */
function umlfleet(args: string[], input = ""): Promise<{ status: number | null; out: string; err: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [UMLFLEET, ...args], { stdio: ["pipe", "pipe", "pipe"] });
    let out = "";
    let err = "";
    child.stdout.on("data", (d: Buffer) => (out += d.toString()));
    child.stderr.on("data", (d: Buffer) => (err += d.toString()));
    child.on("error", reject);
    child.on("close", (status) => resolve({ status, out, err }));
    child.stdin.end(input);
  });
}

/**
 * `umlfleet console` and `umlfleet serial` from a pipe, as a script would use
 * them: a command typed in is answered by the guest, the session ends with
 * its input, and the guest keeps running. What is checked is the command's
 * output (a computed value), never the echo of what was typed.
 */
describe("umlfleet console and serial", () => {
  const host = new TestHost("attach");
  const n = Math.floor(Math.random() * 1e6);
  beforeAll(async () => {
    await host.lab(["a"], { extra: () => ({ serialLines: 2 }) });
  }, 240_000);
  afterAll(() => host.destroy());

  it("console: a command typed in is answered; the session ends with its input; the guest keeps running", async () => {
    const line = (tag: string) => `echo ${tag}-$((6*7))-${n} pid=$$.\n`;
    const args = ["console", "--state-dir", host.stateDir, "--wait-ms", "3000", "a"];
    const r = await umlfleet(args, line("hello"));
    expect(r.err).toContain("attached to the console of a");
    expect(r.status, r.err).toBe(0);
    expect(r.out).toContain(`hello-42-${n}`);
    const pid = /hello-42-\d+ pid=(\d+)\./.exec(r.out)?.[1];
    expect(pid, r.out).toBeDefined();
    // A second attach finds the same shell, not a new one.
    const again = await umlfleet(args, line("again"));
    expect(again.out).toContain(`again-42-${n} pid=${pid}.`);
    expect(host.rt.instanceStatus("a")).toMatchObject({ state: "running", bootCount: 1 });
  });

  it("serial: talks to what the guest runs on the line", async () => {
    await host.sh("a", "setsid sh -c 'exec sh </dev/ttyS0 >/dev/ttyS0 2>&1' </dev/null >/dev/null 2>&1 &");
    const r = await umlfleet(
      ["serial", "--state-dir", host.stateDir, "--wait-ms", "3000", "a", "0"],
      `echo serial-$((6*7))-${n}\n`,
    );
    expect(r.status, r.err).toBe(0);
    expect(r.err).toContain("attached to serial line 0 (ttyS0) of a");
    expect(r.out).toContain(`serial-42-${n}`);
    expect(host.rt.instanceStatus("a")).toMatchObject({ state: "running", bootCount: 1 });
  });

  it("names what is wrong: no such line, a bad line, no such instance, a stopped one", async () => {
    const dir = ["--state-dir", host.stateDir];
    const noLine = await umlfleet(["serial", ...dir, "a", "5"]);
    expect(noLine.status).toBe(1);
    expect(noLine.err).toContain("instance a has 2 serial line(s) (ttyS0..); no line 5");
    const bad = await umlfleet(["serial", ...dir, "a", "x"]);
    expect(bad.status).toBe(2);
    expect(bad.err).toContain('LINE must be a serial line number (got "x")');
    const none = await umlfleet(["console", ...dir, "zz"]);
    expect(none.status).toBe(1);
    expect(none.err).toContain('no instance "zz"');
    await host.rt.stopInstance("a");
    const stopped = await umlfleet(["console", ...dir, "a"]);
    expect(stopped.status).toBe(1);
    expect(stopped.err).toContain("instance a is not running");
  });
});
