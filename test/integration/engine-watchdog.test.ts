import { spawn, type ChildProcess } from "node:child_process";
import { chmodSync, existsSync, mkdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { identify, isAlive, waitFor, type ProcessIdentity } from "../../src/process";
import { newTestDir } from "../helpers/runtime";

/**
 * The watchdogs that end our plugin processes once the `pulumi` CLI is gone
 * (provider/impl.ts, bin/pulumi-language-nodejs), under a stand-in CLI: a
 * /bin/sh started through a link named `pulumi` (so its process name is
 * `pulumi`), killed with SIGKILL. test/e2e/killed-up.test.ts does the same
 * with the real CLI.
 */

const REPO = resolve(__dirname, "../..");
const IMPL = join(REPO, "dist", "provider", "impl.js");
const LANGUAGE_HOST = join(REPO, "bin", "pulumi-language-nodejs");
/** Far more than the watchdogs' 1 s polls; only bounds a wait that must end. */
const GONE_WITHIN_MS = 20_000;

// Loads impl as the dynamic-provider host does (its main module is
// .../cmd/dynamic-provider/index.js), optionally starts a create, and then serves forever.
const FAKE_PROVIDER = `
const fs = require("fs");
const impl = require(process.env.IMPL);
fs.writeFileSync(process.env.OUT, "loaded\\n");
if (process.env.SLOW_KERNEL) {
  impl.create("kernel", { path: process.env.SLOW_KERNEL }).then(
    () => fs.appendFileSync(process.env.OUT, "created\\n"),
    (e) => fs.appendFileSync(process.env.OUT, "failed " + e.message + "\\n"),
  );
}
setInterval(() => {}, 1000);
`;

describe("plugin processes exit once the pulumi CLI is gone", () => {
  const dir = newTestDir("wdog");
  mkdirSync(join(dir, "cmd", "dynamic-provider"), { recursive: true });
  const fakeCli = join(dir, "pulumi");
  symlinkSync("/bin/sh", fakeCli);
  const providerMain = join(dir, "cmd", "dynamic-provider", "index.js");
  writeFileSync(providerMain, FAKE_PROVIDER);
  // A "kernel" whose --version takes 3 s: a create that is in flight when the CLI dies.
  const slowKernel = join(dir, "slow-kernel");
  writeFileSync(slowKernel, "#!/bin/sh\n/bin/sleep 3\necho 'fake 6.1'\n");
  chmodSync(slowKernel, 0o755);

  const children = new Map<ChildProcess, ProcessIdentity>();
  afterEach(() => {
    // Whatever a failed test left, by pid and start time.
    for (const id of children.values()) if (isAlive(id)) process.kill(id.pid, "SIGKILL");
    children.clear();
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  /** The stand-in CLI running `command` as its child (sh forks it: a command follows). */
  const underCli = (command: string, env: NodeJS.ProcessEnv, label: string) => {
    const out = join(dir, `${label}.out`);
    const cli = spawn(fakeCli, ["-c", `${command}; true`], {
      env: { ...process.env, ...env, OUT: out },
      stdio: ["ignore", "pipe", "inherit"],
    });
    return { cli, out };
  };
  /** The one child of `pid` (the plugin under the stand-in CLI). */
  const childOf = async (pid: number): Promise<ProcessIdentity> => {
    const child = await waitFor(() => {
      const list = readFileSync(`/proc/${pid}/task/${pid}/children`, "utf8").trim();
      return list ? Number(list.split(" ")[0]) : undefined;
    }, 10_000);
    expect(child, "the plugin process").toBeDefined();
    return identify(child!)!;
  };
  const waitForFile = (f: string, text: string) =>
    waitFor(() => existsSync(f) && readFileSync(f, "utf8").includes(text), 30_000);

  it("the provider exits after the CLI's kill -9 when idle, and not while the CLI lives", async () => {
    const { cli, out } = underCli(`node ${providerMain}`, { IMPL }, "idle");
    const provider = await childOf(cli.pid!);
    children.set(cli, provider);
    expect(await waitForFile(out, "loaded")).toBe(true);
    await new Promise((r) => setTimeout(r, 2_500)); // two polls with the CLI alive
    expect(isAlive(provider)).toBe(true);
    cli.kill("SIGKILL");
    expect(await waitFor(() => !isAlive(provider), GONE_WITHIN_MS, 100)).toBe(true);
  });

  it("the provider finishes a create in flight before it exits", async () => {
    const { cli, out } = underCli(`node ${providerMain}`, { IMPL, SLOW_KERNEL: slowKernel }, "busy");
    const provider = await childOf(cli.pid!);
    children.set(cli, provider);
    expect(await waitForFile(out, "loaded")).toBe(true);
    cli.kill("SIGKILL"); // the create has begun: its kernel's --version takes 3 s
    expect(await waitFor(() => !isAlive(provider), GONE_WITHIN_MS, 100)).toBe(true);
    expect(readFileSync(out, "utf8")).toBe("loaded\ncreated\n");
  });

  it("a program that merely imports the provider module is not watched", async () => {
    const { cli, out } = underCli(
      `node -e 'require(process.env.IMPL); require("fs").writeFileSync(process.env.OUT, "loaded\\n"); setInterval(() => {}, 1000)'`,
      { IMPL },
      "program",
    );
    const program = await childOf(cli.pid!);
    children.set(cli, program);
    expect(await waitForFile(out, "loaded")).toBe(true);
    cli.kill("SIGKILL");
    await new Promise((r) => setTimeout(r, 3_000)); // three polls without the CLI
    expect(isAlive(program)).toBe(true);
  });

  it("the language host exits after the CLI's kill -9", async () => {
    const { cli } = underCli(`node ${LANGUAGE_HOST} 127.0.0.1:1`, {}, "langhost");
    const host = await childOf(cli.pid!);
    children.set(cli, host);
    // It prints its port once it serves.
    let stdout = "";
    cli.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    expect(await waitFor(() => /^\d+\n/.test(stdout), 30_000)).toBe(true);
    await new Promise((r) => setTimeout(r, 2_500));
    expect(isAlive(host)).toBe(true);
    cli.kill("SIGKILL");
    expect(await waitFor(() => !isAlive(host), GONE_WITHIN_MS, 100)).toBe(true);
  });
});
