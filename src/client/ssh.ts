import { spawn, type ChildProcess } from "node:child_process";
import {
  existsSync,
  lstatSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { Agent } from "node:http";
import type { Duplex } from "node:stream";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { InvalidSpecError, UmlfleetError, type FieldProblem } from "../errors";
import { identify, isAlive, processStartTicks, sleep, type ProcessIdentity } from "../process";
import { StreamSocket } from "../stream-socket";
import type { Transport } from "./transport";

export interface SshTarget {
  host: string;
  port?: number;
  user?: string;
  /** A private key file (`-i`, and only it is offered: IdentitiesOnly). Default: ssh's own (agent, ~/.ssh). */
  privateKeyPath?: string;
  /**
   * The host's public key, `<type> <base64>` as in its /etc/ssh/ssh_host_*_key.pub:
   * the only key accepted. Without it, the user's known_hosts decides (an
   * unknown key is refused either way).
   */
  hostKey?: string;
  /** Accept any host key. Only for throwaway hosts: anyone on the path can then read and change the traffic. */
  insecureIgnoreHostKey?: boolean;
  /** How long the SSH connection may take to come up. Default 15 s. */
  connectTimeoutMs?: number;
  /** The agent command on the host. Default ["umlfleet-agent"]. */
  agentCommand?: string[];
  /** The state folder on the host (--state-dir). Default: the agent's default. */
  stateDir?: string;
  /** The ssh binary. Default "ssh" (on PATH). */
  sshPath?: string;
}

/** Where a pinned host key is known under: the alias ssh checks instead of host and port. */
const HOST_KEY_ALIAS = "umlfleet-target";

/** Words that reach the remote shell: no quoting is needed for these, and nothing else is sent. */
const SHELL_SAFE = /^[A-Za-z0-9._/=:@+-]+$/;

/**
 * The agent on another host, through the system `ssh` (so ~/.ssh/config,
 * ssh-agent and ProxyJump work as the user expects): one master connection
 * per transport (ControlMaster, its socket in a private 0700 folder), and one
 * multiplexed session per HTTP connection, each running
 * `umlfleet-agent dial-stdio`; sessions are kept alive and reused. The host
 * key is pinned (StrictHostKeyChecking=yes against a private known_hosts), no
 * prompt is ever shown (BatchMode). close() ends the sessions and the master.
 */
export function sshTransport(target: SshTarget): Transport & { readonly controlDir: string } {
  checkTarget(target);
  return new SshTransport(target);
}

class SshTransport implements Transport {
  readonly describe: string;
  readonly requestOptions: Transport["requestOptions"];
  readonly freshAgent: Agent;
  /** The private folder of the master's socket and the pinned known_hosts; gone after close(). */
  readonly controlDir: string;
  private readonly control: string;
  private readonly common: string[];
  private master?: { child: ChildProcess; ready: Promise<void> };
  private closed = false;
  private readonly onExit = () => this.killAll();
  private readonly sessions = new Set<ChildProcess>();

  constructor(private readonly t: SshTarget) {
    this.describe = `ssh://${t.user ? `${t.user}@` : ""}${t.host}${t.port ? `:${t.port}` : ""}`;
    sweepStale(tmpdir());
    this.controlDir = mkdtempSync(join(tmpdir(), DIR_PREFIX)); // mode 0700
    writeFileSync(join(this.controlDir, "owner"), JSON.stringify(identify(process.pid)), { mode: 0o600 });
    this.control = join(this.controlDir, "cm");
    this.common = this.options();
    const agent = new Agent({ keepAlive: true, maxSockets: 8 });
    const fresh = new Agent({ keepAlive: false });
    // A new HTTP connection is a new session over the master (made first when needed).
    agent.createConnection = fresh.createConnection = (_opts, done) => {
      this.session().then(
        (s) => done?.(null, s),
        (e: Error) => done?.(e, undefined as unknown as Duplex),
      );
      return undefined;
    };
    this.requestOptions = { agent, host: HOST_KEY_ALIAS };
    this.freshAgent = fresh;
    process.once("exit", this.onExit);
  }

  /** ssh options every invocation shares. */
  private options(): string[] {
    const t = this.t;
    const o = (kv: string) => ["-o", kv];
    const args = [
      ...o("BatchMode=yes"),
      ...o(`ConnectTimeout=${Math.max(1, Math.ceil((t.connectTimeoutMs ?? 15_000) / 1000))}`),
      // A dead peer is noticed (and the calls on it fail) within about 45 s.
      ...o("ServerAliveInterval=15"),
      ...o("ServerAliveCountMax=3"),
      ...o(`ControlPath=${this.control}`),
    ];
    if (t.insecureIgnoreHostKey) {
      args.push(
        ...o("StrictHostKeyChecking=no"),
        ...o("UserKnownHostsFile=/dev/null"),
        ...o("GlobalKnownHostsFile=/dev/null"),
      );
    } else if (t.hostKey) {
      const file = join(this.controlDir, "known_hosts");
      const [type, key] = t.hostKey.trim().split(/\s+/);
      writeFileSync(file, `${HOST_KEY_ALIAS} ${type} ${key}\n`, { mode: 0o600 });
      args.push(
        ...o("StrictHostKeyChecking=yes"),
        ...o(`UserKnownHostsFile=${file}`),
        ...o("GlobalKnownHostsFile=/dev/null"),
        ...o(`HostKeyAlias=${HOST_KEY_ALIAS}`),
        ...o("CheckHostIP=no"),
      );
    } else {
      args.push(...o("StrictHostKeyChecking=yes"));
    }
    if (t.privateKeyPath) args.push("-i", t.privateKeyPath, ...o("IdentitiesOnly=yes"));
    if (t.port) args.push("-p", String(t.port));
    if (t.user) args.push("-l", t.user);
    return args;
  }

  /** The master connection: started once, again after it died. */
  private ensureMaster(): Promise<void> {
    if (this.closed) return Promise.reject(this.unreachable("the transport is closed"));
    // /proc, not only the child's exit event: a master just killed may not be reaped yet, and a
    // session sent to its dead socket would log in on its own instead.
    const m = this.master;
    if (
      m &&
      m.child.exitCode === null &&
      m.child.signalCode === null &&
      processStartTicks(m.child.pid!) !== null
    )
      return m.ready;
    // A master that died (killed, connection lost) leaves its socket: a new
    // master would refuse to replace it and run unshared.
    rmSync(this.control, { force: true });
    const child = spawnSsh(
      this.t.sshPath ?? "ssh",
      ["-M", "-N", "-T", ...this.o("ControlPersist=no"), ...this.common, "--", this.t.host],
      ["ignore", "ignore", "pipe"],
    );
    const stderr = tail(child);
    const exited = new Promise<number | null>((resolve) => child.once("close", (code) => resolve(code)));
    child.on("error", () => {}); // a missing ssh binary shows as exit code null with stderr empty
    const ready = (async () => {
      const limit = performance.now() + (this.t.connectTimeoutMs ?? 15_000) + 5_000;
      for (;;) {
        if (existsSync(this.control)) return;
        const code = await Promise.race([exited, sleep(25).then(() => "waiting" as const)]);
        if (code !== "waiting") throw sshError(code, stderr(), this.describe, "connect");
        if (performance.now() > limit) {
          child.kill();
          throw this.unreachable(`no SSH connection within ${this.t.connectTimeoutMs ?? 15_000} ms`);
        }
      }
    })();
    this.master = { child, ready };
    ready.catch(() => {});
    return ready;
  }

  private o(kv: string): string[] {
    return ["-o", kv];
  }

  /** One session running the agent, as a socket for http. */
  private async session(): Promise<StreamSocket> {
    await this.ensureMaster();
    const command = [
      ...(this.t.agentCommand ?? ["umlfleet-agent"]),
      "dial-stdio",
      ...(this.t.stateDir ? ["--state-dir", this.t.stateDir] : []),
    ];
    const child = spawnSsh(
      this.t.sshPath ?? "ssh",
      ["-T", ...this.o("ControlMaster=no"), ...this.common, this.t.host, "--", ...command],
      ["pipe", "pipe", "pipe"],
    );
    this.sessions.add(child);
    const stderr = tail(child);
    const socket = new StreamSocket(child.stdout!, child.stdin!);
    const exited = new Promise<number | null>((resolve) =>
      child.once("close", (code) => {
        this.sessions.delete(child);
        resolve(code);
        socket.destroy();
      }),
    );
    child.on("error", () => {});
    sessionOf.set(socket, { exited, stderr });
    return socket;
  }

  async explain(error: Error, socket: unknown): Promise<UmlfleetError | undefined> {
    if (error instanceof UmlfleetError) return error;
    const s = socket instanceof StreamSocket ? sessionOf.get(socket) : undefined;
    if (!s) return undefined;
    const code = await Promise.race([s.exited, sleep(2_000).then(() => "running" as const)]);
    if (code === "running") return undefined;
    return sshError(code, s.stderr(), this.describe, "session");
  }

  private unreachable(why: string): UmlfleetError {
    return new UmlfleetError("UMLFLEET_HOST_UNREACHABLE", `${this.describe}: ${why}`, {
      target: this.describe,
    });
  }

  async close(): Promise<void> {
    this.closed = true;
    process.removeListener("exit", this.onExit);
    this.requestOptions.agent.destroy();
    this.freshAgent.destroy();
    const children = [...this.sessions, ...(this.master ? [this.master.child] : [])];
    await Promise.all(children.map((c) => stop(c)));
    rmSync(this.controlDir, { recursive: true, force: true });
  }

  /** At process exit: no time to wait, but nothing may be left behind. */
  private killAll(): void {
    for (const c of this.sessions) c.kill("SIGKILL");
    this.master?.child.kill("SIGKILL");
    rmSync(this.controlDir, { recursive: true, force: true });
  }
}

const DIR_PREFIX = "umlfleet-ssh-";
const SETPRIV = "/usr/bin/setpriv";

/**
 * Run ssh so that it ends with this process even when this process is
 * killed outright (Pulumi ends provider processes so, and an ssh master
 * would otherwise hold its connection open): the kernel sends it SIGTERM
 * when its parent dies (setpriv --pdeathsig, util-linux).
 */
function spawnSsh(ssh: string, args: string[], stdio: ("pipe" | "ignore")[]): ChildProcess {
  return existsSync(SETPRIV)
    ? spawn(SETPRIV, ["--pdeathsig", "SIGTERM", "--", ssh, ...args], { stdio })
    : spawn(ssh, args, { stdio });
}

/** Remove the folders of transports whose process died without close() (killed): they hold a known_hosts and a dead socket. */
function sweepStale(root: string): void {
  let names: string[];
  try {
    names = readdirSync(root).filter((n) => n.startsWith(DIR_PREFIX));
  } catch {
    return;
  }
  for (const name of names) {
    const dir = join(root, name);
    try {
      const st = lstatSync(dir);
      if (!st.isDirectory() || st.uid !== process.getuid?.()) continue;
      const owner = JSON.parse(readFileSync(join(dir, "owner"), "utf8")) as ProcessIdentity;
      if (!isAlive(owner)) rmSync(dir, { recursive: true, force: true });
    } catch {
      /* not ours, or being made right now: leave it */
    }
  }
}

const sessionOf = new WeakMap<StreamSocket, { exited: Promise<number | null>; stderr: () => string }>();

/** End a child: SIGTERM, then SIGKILL if it lingers. */
async function stop(c: ChildProcess): Promise<void> {
  if (c.exitCode !== null || c.signalCode !== null) return;
  const gone = new Promise<void>((resolve) => c.once("close", () => resolve()));
  c.kill("SIGTERM");
  const done = await Promise.race([gone.then(() => true), sleep(3_000).then(() => false)]);
  if (!done) {
    c.kill("SIGKILL");
    await gone;
  }
}

/** The last 4 KiB a child wrote to stderr. */
function tail(child: ChildProcess): () => string {
  let text = "";
  child.stderr?.on("data", (c: Buffer) => {
    text = (text + c.toString("utf8")).slice(-4096);
  });
  return () => text.trim();
}

/** What an ssh exit means, from its exit code and stderr (ssh's own failures exit 255). */
export function sshError(
  code: number | null,
  stderr: string,
  target: string,
  stage: "connect" | "session",
): UmlfleetError {
  const said = stderr ? `: ${stderr.split("\n").slice(-6).join(" | ")}` : "";
  const details = { target, exitCode: code, stderr };
  if (
    /Host key verification failed|REMOTE HOST IDENTIFICATION HAS CHANGED|host key for .* has changed|No \S+ host key is known/i.test(
      stderr,
    )
  )
    return new UmlfleetError(
      "UMLFLEET_HOST_KEY_MISMATCH",
      `${target}: the host's SSH key is unknown or differs from the pinned one (hostKey); nothing was sent${said}`,
      details,
    );
  if (/Permission denied|Too many authentication failures|no more authentication methods/i.test(stderr))
    return new UmlfleetError(
      "UMLFLEET_HOST_AUTH_FAILED",
      `${target}: the host refused the SSH user or key${said}`,
      details,
    );
  if (
    code !== 255 &&
    stage === "session" &&
    (code === 127 || /command not found|No such file or directory/.test(stderr))
  )
    return new UmlfleetError(
      "UMLFLEET_AGENT_MISSING",
      `${target}: umlfleet-agent is not installed for this user on the host (install umlfleet there, or set agentCommand)${said}`,
      details,
    );
  if (code === null && !stderr)
    return new UmlfleetError(
      "UMLFLEET_HOST_UNREACHABLE",
      `${target}: ssh could not be run (is openssh-client installed?)`,
      details,
    );
  return new UmlfleetError(
    "UMLFLEET_HOST_UNREACHABLE",
    `${target}: ${stage === "connect" ? "could not connect" : `the SSH session ended (exit ${code})`}${said}`,
    details,
  );
}

/** Refuse a target that could carry an option or a shell word into ssh's command line. */
function checkTarget(t: SshTarget): void {
  const problems: FieldProblem[] = [];
  const bad = (field: string, value: unknown, message: string) => problems.push({ field, value, message });
  if (typeof t.host !== "string" || !/^[A-Za-z0-9_.:[\]%-]+$/.test(t.host) || t.host.startsWith("-"))
    bad(
      "/host",
      t.host,
      "must be a host name or address (letters, digits, '.', '-', ':'), not starting with '-'",
    );
  if (t.port !== undefined && (!Number.isInteger(t.port) || t.port < 1 || t.port > 65535))
    bad("/port", t.port, "must be a TCP port 1-65535");
  if (t.user !== undefined && !/^[a-z_][a-z0-9_.-]{0,31}$/i.test(t.user))
    bad("/user", t.user, "must be a user name (letters, digits, '_', '.', '-')");
  if (
    t.hostKey !== undefined &&
    (typeof t.hostKey !== "string" ||
      !/^[a-z0-9@.-]+\s+[A-Za-z0-9+/]+={0,3}(\s[^\n]*)?$/.test(t.hostKey.trim()))
  )
    bad("/hostKey", t.hostKey, "must be a public key line, '<type> <base64> [comment]'");
  if (
    t.privateKeyPath !== undefined &&
    (typeof t.privateKeyPath !== "string" || t.privateKeyPath.startsWith("-"))
  )
    bad("/privateKeyPath", t.privateKeyPath, "must be a file path");
  for (const [i, w] of (t.agentCommand ?? []).entries())
    if (typeof w !== "string" || !SHELL_SAFE.test(w))
      bad(`/agentCommand/${i}`, w, "has characters a shell would read");
  if (t.agentCommand !== undefined && t.agentCommand.length === 0)
    bad("/agentCommand", [], "must name a command");
  if (
    t.stateDir !== undefined &&
    (typeof t.stateDir !== "string" || !SHELL_SAFE.test(t.stateDir) || !t.stateDir.startsWith("/"))
  )
    bad("/stateDir", t.stateDir, "must be an absolute path without spaces or shell characters");
  if (problems.length > 0) throw new InvalidSpecError("ssh", problems);
}
