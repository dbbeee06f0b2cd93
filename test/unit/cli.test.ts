import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { guestScript } from "../../src/cli/exec";
import { main } from "../../src/cli/main";
import type { Io } from "../../src/cli/verb";

/** `umlfleet` without a machine: argument handling, exit statuses, messages. */
async function umlfleet(args: string[], env: NodeJS.ProcessEnv = {}) {
  let out = "";
  let err = "";
  const io: Io = { out: (t) => (out += t), err: (t) => (err += t), env };
  const status = await main(args, io);
  return { status, out, err };
}

describe("the umlfleet command", () => {
  it("lists its commands; no command is a usage error", async () => {
    const help = await umlfleet(["help"]);
    expect(help.status).toBe(0);
    expect(help.out).toContain("umlfleet doctor [--json]");
    expect(help.out).toContain("umlfleet exec ");
    expect((await umlfleet([])).status).toBe(2);
  });

  it("names an unknown command and the ones it has", async () => {
    const r = await umlfleet(["lss"]);
    expect(r.status).toBe(2);
    expect(r.err).toContain(
      'unknown command "lss" (commands: doctor, ls, wait, logs, exec, console, serial, graph, gc)',
    );
    expect((await umlfleet(["toString"])).status).toBe(2);
  });

  it("--help on every verb prints its usage and exits 0; after `--` it is the guest command's", async () => {
    for (const verb of ["doctor", "ls", "wait", "logs", "exec", "console", "serial", "graph", "gc"]) {
      const r = await umlfleet([verb, "--help"]);
      expect(r.status, verb).toBe(0);
      expect(r.out, verb).toMatch(new RegExp(`^usage: umlfleet ${verb} `));
    }
    expect((await umlfleet(["console", "-h"])).out).toContain("Ctrl-] detaches");
    const passed = await umlfleet([
      "exec",
      "--state-dir",
      "/nonexistent/umlfleet-cli-test",
      "a",
      "--",
      "ls",
      "--help",
    ]);
    expect(passed.out).not.toContain("usage:");
  });

  it("console and serial: name what is wrong with their arguments", async () => {
    const env = { UMLFLEET_STATE_DIR: "/nonexistent/umlfleet-cli-test" };
    const cases: [string[], number, string][] = [
      [["console"], 2, "give one instance name"],
      [["console", "a", "b"], 2, "give one instance name"],
      [["serial", "a"], 2, "give NAME and LINE"],
      [
        ["console", "--wait-ms", "soon", "a"],
        2,
        '--wait-ms must be a positive whole number of milliseconds (got "soon")',
      ],
      [["serial", "--bogus", "a", "0"], 2, 'unknown option "--bogus"'],
      [["console", "a"], 1, "no state folder /nonexistent/umlfleet-cli-test"],
    ];
    for (const [args, status, message] of cases) {
      const r = await umlfleet(args, env);
      expect(r.status, args.join(" ")).toBe(status);
      expect(r.err, args.join(" ")).toContain(message);
    }
  });

  it("exec: names what is wrong with its arguments, before touching any state", async () => {
    const stateDir = "/nonexistent/umlfleet-cli-test";
    const cases: [string[], string][] = [
      [["exec"], "no instance name"],
      [["exec", "--", "ls"], "no instance name"],
      [["exec", "alpha"], "no command"],
      [["exec", "alpha", "--"], "no command"],
      [
        ["exec", "--timeout-ms", "soon", "alpha", "--", "ls"],
        '--timeout-ms must be a positive whole number of milliseconds (got "soon")',
      ],
      [["exec", "--verbose", "x", "alpha", "--", "ls"], 'unknown option "--verbose"'],
      [["exec", "--state-dir"], "--state-dir needs a value"],
    ];
    for (const [args, message] of cases) {
      const r = await umlfleet(args, { UMLFLEET_STATE_DIR: stateDir });
      expect(r.status, args.join(" ")).toBe(2);
      expect(r.err, args.join(" ")).toContain(message);
    }
    const missing = await umlfleet(["exec", "alpha", "--", "ls"], { UMLFLEET_STATE_DIR: stateDir });
    expect(missing.status).toBe(1);
    expect(missing.err).toContain('[UMLFLEET_NOT_FOUND] instance "alpha" does not exist');
    expect(existsSync(stateDir)).toBe(false);
  });

  it("doctor: refuses arguments it does not know", async () => {
    const r = await umlfleet(["doctor", "--yaml"]);
    expect(r.status).toBe(2);
    expect(r.err).toContain('unknown argument "--yaml"');
  });

  it("exec: several words reach the guest's sh as given; one word is a script", () => {
    const words = ["printf", "%s|", "a b", "it's", "$HOME", ";", "*", ""];
    // The host's sh parses the script as the guest's busybox sh does (POSIX quoting).
    expect(execFileSync("sh", ["-c", guestScript(words)], { encoding: "utf8" })).toBe("a b|it's|$HOME|;|*||");
    expect(guestScript(["echo a | tr a b"])).toBe("echo a | tr a b");
  });
});
