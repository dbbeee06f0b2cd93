import { spawnSync } from "node:child_process";
import { mkdirSync, readFileSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { shellQuote } from "../../src/host/console-log";
import { binaryFiles, SANDBOX_BIN, switchSandboxArgv } from "../../src/host/sandbox";
import { SECCOMP_FD, seccompFile } from "../../src/host/seccomp";
import { inPidNamespaceOf, TestHost } from "../helpers/runtime";

/** The Seccomp field of a process's status; undefined for one that exited meanwhile. */
const seccompMode = (pid: number) => {
  let status: string;
  try {
    status = readFileSync(`/proc/${pid}/status`, "utf8");
  } catch {
    return undefined;
  }
  return Number(/^Seccomp:\s+(\d+)/m.exec(status)![1]);
};

/**
 * The seccomp filter (src/host/seccomp.ts) is loaded by bwrap into every
 * guest's and switch's sandbox. The host side proves it is there (mode 2,
 * inherited by every process of the sandbox) and that it denies what it lists
 * under the very sandbox flags of a switch, with a control run without it.
 */
describe.runIf(process.arch === "x64")("seccomp filter in the sandboxes", () => {
  const host = new TestHost("seccomp");

  beforeAll(async () => {
    await host.lab(["a", "b"], {
      extra: (n) => (n === "b" && process.getuid?.() === 0 ? { runAs: { pool: true } } : {}),
    });
  });
  afterAll(() => host.destroy());

  it("guests boot under it and reach each other through their switch", async () => {
    await host.sh("a", "ping -c 1 -W 5 10.0.0.2");
  });

  it("every process of each guest's sandbox and the switch run in seccomp filter mode", async () => {
    // A guest process, so the guest side of the sandbox has more than the kernel.
    await host.sh("a", "sleep 300 >/dev/null 2>&1 &");
    for (const n of ["a", "b"]) {
      const pid = host.rt.instances.get(n)!.sandbox!.pid;
      const all = inPidNamespaceOf(pid);
      expect(all.length, n).toBeGreaterThan(1);
      const modes = all.map(seccompMode).filter((m) => m !== undefined);
      expect(modes.length, n).toBeGreaterThan(1);
      expect(new Set(modes), n).toEqual(new Set([2]));
    }
    const sw = host.rt.networks.get("lan")!.switch!.pid;
    expect(seccompMode(sw)).toBe(2);
    // Control: the test's own process is not filtered, so the field is read right.
    expect(seccompMode(process.pid)).toBe(0);
  });

  it("denies unshare and personality inside a sandbox; without the filter the same calls work", () => {
    const dir = `${host.dir}/probe`;
    mkdirSync(dir, { recursive: true });
    const filter = seccompFile(host.stateDir)!;
    const probe = (withFilter: boolean, argv: string[]) => {
      const files = binaryFiles(argv[0]!);
      const flags = switchSandboxArgv(dir, files, undefined, withFilter ? { seccompFd: SECCOMP_FD } : {});
      const line = `exec ${[SANDBOX_BIN, ...flags, ...argv].map(shellQuote).join(" ")} ${SECCOMP_FD}<${shellQuote(filter)}`;
      return spawnSync("bash", ["-c", line], { encoding: "utf8", timeout: 30_000 });
    };
    const calls = [
      ["/usr/bin/unshare", "--user", "/usr/bin/unshare", "--version"],
      ["/usr/bin/setarch", "x86_64", "-R", "/usr/bin/setarch", "--version"],
    ];
    for (const argv of calls) {
      const open = probe(false, argv);
      expect(open.status, `${argv[0]} without the filter: ${open.stderr}`).toBe(0);
      const denied = probe(true, argv);
      expect(denied.status, argv[0]).not.toBe(0);
      expect(denied.stderr, argv[0]).toMatch(/Operation not permitted/);
    }
  });
});
