import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { LocalRuntime } from "../../src";
import { AgentClient, sshTransport, type SshTarget } from "../../src/client";
import { processesMentioning, processStartTicks, waitFor } from "../../src/process";
import { AGENT_BIN } from "../helpers/agent";
import { newTestDir, testKernel } from "../helpers/runtime";

/**
 * sshTransport against Debian's real sshd, started by the test on 127.0.0.1
 * on a free port with a throwaway host key, and the test's own key as the
 * only authorized one. The test runs as root, so it logs in as root on
 * loopback only (StrictModes off: the key files live under the test root in
 * /tmp). The agent command is this worktree's bin/umlfleet-agent.
 * Network-namespace hosts with unprivileged users: test/helpers/hosts.ts.
 */
const SSHD = "/usr/sbin/sshd";
const REPO = join(__dirname, "..", "..");
const canRun = existsSync(SSHD) && process.getuid?.() === 0;

/** Everything but vitest naming `needle` (the agents run as `node .../umlfleet-agent`: counted here). */
const left = (needle: string) => processesMentioning(needle).filter((p) => !p.args.includes("vitest"));

async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, "127.0.0.1", r));
  const port = (s.address() as { port: number }).port;
  await new Promise((r) => s.close(r));
  return port;
}

describe.skipIf(!canRun)("sshTransport to a real sshd on loopback", () => {
  const dir = newTestDir("ssh");
  const stateDir = `${dir}/s`;
  let sshd: ChildProcess;
  let sshdLog = "";
  let port: number;
  let hostKey: string;
  let otherHostKey: string;

  const keygen = (file: string) =>
    execFileSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", "umlfleet-test", "-f", file]);

  beforeAll(async () => {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    mkdirSync("/run/sshd", { recursive: true }); // sshd's privilege separation folder
    keygen(`${dir}/host`);
    keygen(`${dir}/other-host`);
    keygen(`${dir}/id`);
    keygen(`${dir}/wrong`);
    hostKey = readFileSync(`${dir}/host.pub`, "utf8");
    otherHostKey = readFileSync(`${dir}/other-host.pub`, "utf8");
    writeFileSync(`${dir}/authorized_keys`, readFileSync(`${dir}/id.pub`), { mode: 0o600 });
    port = await freePort();
    writeFileSync(
      `${dir}/sshd_config`,
      [
        `Port ${port}`,
        "ListenAddress 127.0.0.1",
        `HostKey ${dir}/host`,
        `AuthorizedKeysFile ${dir}/authorized_keys`,
        `PidFile ${dir}/sshd.pid`,
        "PermitRootLogin prohibit-password",
        "PasswordAuthentication no",
        "KbdInteractiveAuthentication no",
        "PubkeyAuthentication yes",
        "UsePAM no",
        "StrictModes no",
        "MaxSessions 20",
        "LogLevel VERBOSE",
      ].join("\n") + "\n",
    );
    // -D: stays our child; -e: its log on stderr.
    sshd = spawn(SSHD, ["-D", "-e", "-f", `${dir}/sshd_config`], { stdio: ["ignore", "ignore", "pipe"] });
    sshd.stderr!.on("data", (c: Buffer) => (sshdLog += c.toString()));
    await waitFor(() => sshdLog.includes("Server listening") || sshd.exitCode !== null, 20_000, 20);
    if (sshd.exitCode !== null) throw new Error(`sshd did not start: ${sshdLog}`);
  });

  afterAll(async () => {
    await new LocalRuntime({ stateDir }).destroyAll({ timeoutMs: 10_000 });
    if (sshd && sshd.exitCode === null) {
      // "exit", not "close": a connection's sshd child may hold its stderr a moment longer.
      const gone = new Promise((r) => sshd.once("exit", r));
      sshd.kill("SIGTERM");
      await gone;
    }
    await waitFor(() => left(dir).length === 0, 10_000, 50).catch(() => undefined);
    expect(left(dir)).toEqual([]);
    rmSync(dir, { recursive: true, force: true });
  });

  const target = (extra: Partial<SshTarget> = {}): SshTarget => ({
    host: "127.0.0.1",
    port,
    user: "root",
    privateKeyPath: `${dir}/id`,
    hostKey,
    agentCommand: [AGENT_BIN],
    stateDir,
    connectTimeoutMs: 10_000,
    ...extra,
  });

  /** Connect with `t`: the error it fails with; the transport's folder and processes are gone after. */
  async function failure(t: SshTarget): Promise<{ code: string; message: string }> {
    const transport = sshTransport(t);
    const e = (await AgentClient.connect(transport).catch((x: unknown) => x)) as {
      code: string;
      message: string;
    };
    await transport.close();
    expect(existsSync(transport.controlDir)).toBe(false);
    expect(left(transport.controlDir)).toEqual([]);
    return e;
  }

  it("calls run over one SSH connection; guests outlive the sessions; close() ends the master", async () => {
    const transport = sshTransport(target());
    const c = await AgentClient.connect(transport);
    try {
      await overOneConnection(c);
    } finally {
      await c.close();
    }
    expect(existsSync(transport.controlDir)).toBe(false);
    expect(left(transport.controlDir)).toEqual([]);
    await waitFor(() => left("dial-stdio").filter((p) => p.args.includes(stateDir)).length === 0, 10_000, 50);
    expect(new LocalRuntime({ stateDir }).instanceStatus("g").state).toBe("running");

    // A new connection finds it and removes everything.
    const d = await AgentClient.connect(sshTransport(target()));
    try {
      await d.removeInstance("g");
      await d.removeDisk("g-root");
      await d.removeBase("bb");
      await d.removeNetwork("lan");
      expect(await d.inventory()).toEqual({
        bases: [],
        disks: [],
        networks: [],
        instances: [],
        links: [],
        owners: {},
      });
    } finally {
      await d.close();
    }
  });

  async function overOneConnection(c: AgentClient): Promise<void> {
    expect(c.stateDir).toBe(stateDir);
    const facts = await c.hostFacts();
    expect(facts.find((f) => f.id === "vde_switch")).toMatchObject({ ok: true });
    // Concurrent calls: several sessions, one SSH connection (one login).
    await c.ensureNetwork({ name: "lan" });
    const many = await Promise.all([
      c.inventory(),
      c.networkInfo("lan"),
      c.inventory(),
      c.networkInfo("lan"),
      c.hostFacts(),
    ]);
    expect(many[1]).toMatchObject({ name: "lan", running: true });
    expect(sshdLog.match(/Accepted publickey for root/g)).toHaveLength(1);
    // A real guest through the wire; it runs on after the client and every session are gone.
    await c.ensureBase({ name: "bb", source: { kind: "busybox", sizeMiB: 32 } });
    await c.ensureDisk({ name: "g-root", kind: "overlay", base: "bb" });
    await c.createInstance({
      name: "g",
      kernel: testKernel(), // sshd's sessions do not carry $UMLFLEET_KERNEL
      rootDisk: "g-root",
      nics: [{ network: "lan", ipv4: "10.0.0.1/24" }],
    });
    expect(await c.exec("g", "echo over ssh")).toEqual({ exitCode: 0, output: "over ssh\n" });
  }

  it("a master connection lost (killed) is made again by the next call, once", async () => {
    const transport = sshTransport(target());
    const c = await AgentClient.connect(transport);
    try {
      await c.inventory();
      const logins = sshdLog.match(/Accepted publickey/g)!.length;
      const master = left(transport.controlDir).find((p) => p.args.includes(" -M "))!;
      process.kill(master.pid, "SIGKILL");
      // Dead as ensureMaster judges it (a zombie or gone); before that, for a few ms, a session may
      // still be sent to the dead socket, and ssh then logs in on its own (correct, not shared).
      await waitFor(() => processStartTicks(master.pid) === null, 10_000, 5);
      // Idempotent calls, concurrently: one new master, one new login, shared by what follows.
      await Promise.all([c.inventory(), c.hostFacts(), c.inventory()]);
      expect(sshdLog.match(/Accepted publickey/g), sshdLog.split("\n").slice(-30).join("\n")).toHaveLength(
        logins + 1,
      );
      expect(left(transport.controlDir).filter((p) => p.args.includes(" -M "))).toHaveLength(1);
      await Promise.all([c.inventory(), c.hostFacts(), c.networkInfo("lan"), c.inventory()]);
      expect(sshdLog.match(/Accepted publickey/g)).toHaveLength(logins + 1);
    } finally {
      await c.close();
    }
    expect(left(transport.controlDir)).toEqual([]);
  });

  it("a host key other than the pinned one: UMLFLEET_HOST_KEY_MISMATCH", async () => {
    const e = await failure(target({ hostKey: otherHostKey }));
    expect(e.code).toBe("UMLFLEET_HOST_KEY_MISMATCH");
    expect(e.message).toContain("127.0.0.1");
  });

  it("no pinned key and a key the user's known_hosts does not know: refused, UMLFLEET_HOST_KEY_MISMATCH", async () => {
    const t = target();
    delete t.hostKey;
    expect((await failure(t)).code).toBe("UMLFLEET_HOST_KEY_MISMATCH");
  });

  it("insecureIgnoreHostKey accepts any key (the written opt-out)", async () => {
    const t = target({ insecureIgnoreHostKey: true });
    delete t.hostKey;
    const c = await AgentClient.connect(sshTransport(t));
    expect(c.stateDir).toBe(stateDir);
    await c.close();
  });

  it("a key the host does not authorize: UMLFLEET_HOST_AUTH_FAILED", async () => {
    expect((await failure(target({ privateKeyPath: `${dir}/wrong` }))).code).toBe(
      "UMLFLEET_HOST_AUTH_FAILED",
    );
  });

  it("a user the host does not have: UMLFLEET_HOST_AUTH_FAILED", async () => {
    expect((await failure(target({ user: "umlf-nobody" }))).code).toBe("UMLFLEET_HOST_AUTH_FAILED");
  });

  it("no agent on the host: UMLFLEET_AGENT_MISSING, not sent again", async () => {
    const e = await failure(target({ agentCommand: ["umlfleet-agent-not-installed"] }));
    expect(e.code).toBe("UMLFLEET_AGENT_MISSING");
    expect(e.message).toContain("not found");
    expect((await failure(target({ agentCommand: [`${dir}/no/such/agent`] }))).code).toBe(
      "UMLFLEET_AGENT_MISSING",
    );
  });

  it("nothing listening: UMLFLEET_HOST_UNREACHABLE", async () => {
    expect((await failure(target({ port: await freePort() }))).code).toBe("UMLFLEET_HOST_UNREACHABLE");
  });

  it("a target that would smuggle options or shell words is refused before ssh runs", () => {
    expect(() => sshTransport(target({ host: "-oProxyCommand=touch /tmp/x" }))).toThrow(/\/host/);
    expect(() => sshTransport(target({ agentCommand: ["umlfleet-agent;", "reboot"] }))).toThrow(
      /\/agentCommand\/0/,
    );
    expect(() => sshTransport(target({ stateDir: "/tmp/a b" }))).toThrow(/\/stateDir/);
  });

  it("a client process killed outright (SIGKILL) leaves no ssh behind; its folder is swept by the next transport", async () => {
    // A provider process as Pulumi ends it: no close(), no exit handlers.
    const script = `
      const c = require(${JSON.stringify(`${REPO}/dist/src/client/index.js`)});
      const t = c.sshTransport(${JSON.stringify(target())});
      c.AgentClient.connect(t).then((a) => a.inventory()).then(() => console.log(t.controlDir));
      setInterval(() => {}, 1000);`;
    const child = spawn(process.execPath, ["-e", script], { stdio: ["ignore", "pipe", "inherit"] });
    let out = "";
    child.stdout.on("data", (c: Buffer) => (out += c.toString()));
    await waitFor(() => out.includes("\n"), 30_000, 20);
    const controlDir = out.trim();
    expect(left(controlDir).length).toBeGreaterThan(0); // the master, a session
    const gone = new Promise((r) => child.once("exit", r));
    child.kill("SIGKILL");
    await gone;
    await waitFor(() => left(controlDir).length === 0, 20_000, 50);
    expect(existsSync(controlDir)).toBe(true);
    const next = sshTransport(target());
    expect(existsSync(controlDir)).toBe(false);
    await next.close();
  });

  it("none of the failed attempts created anything on the host", () => {
    expect(existsSync(stateDir)).toBe(false);
  });
});
