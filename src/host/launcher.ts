import { spawn } from "node:child_process";
import { rmSync, writeFileSync } from "node:fs";
import { UmlfleetError } from "../errors";
import { consoleRelayCommand, shellQuote } from "./console-log";
import { SECCOMP_FD } from "./seccomp";

/** One detached guest process to start. */
export interface LaunchRequest {
  argv: string[];
  /** stdout and stderr go through the capped relay into this file (console-log.ts). stdin is /dev/null. */
  consoleLog: string;
  consoleCapBytes: number;
  /** Opened read-write (FIFOs: never blocks, never EOF) as fds 3, 4, ... */
  fifos: string[];
  /** Written by bwrap's --info-fd (the sandbox's pid 1, host pid): at fd guestFds().info. */
  infoFile: string;
  /** Open fds of ours handed to the guest's process (shares, bound by fd): at guestFds().pass. */
  passFds: number[];
  /** The compiled seccomp filter (seccomp.ts), opened at SECCOMP_FD for bwrap to read. */
  seccompFile?: string;
}

/** The fd numbers a guest's process gets: FIFOs from 3, then the info fd, then passed fds. */
export function guestFds(fifoCount: number, passCount: number): { info: number; pass: number[] } {
  const info = 3 + fifoCount;
  return { info, pass: Array.from({ length: passCount }, (_, i) => info + 1 + i) };
}

/** What became of the process, as far as the launcher can tell. */
export interface Launched {
  pid: number | undefined;
  /** Set once the process exited, when the launcher is its parent (direct spawn only). */
  exit(): { code: number | null; signal: NodeJS.Signals | null } | undefined;
}

export interface Launcher {
  launch(req: LaunchRequest): Promise<Launched>;
}

/**
 * Passed fds sit at 100 and up in the launching bash, out of the way of the
 * guests' own numbers (at most 3 + 19 FIFOs + 1 + 16 shares), and each guest
 * command moves its own to where its argv expects them.
 */
const PASS_BASE = 100;

/** Bash redirections that give one guest its fds and nothing of another's. */
function redirections(req: LaunchRequest, held: Map<number, number>): string {
  const fds = guestFds(req.fifos.length, req.passFds.length);
  // The relay's own output goes nowhere: it must not hold the launching bash's pipes open.
  const relay = `exec ${consoleRelayCommand(req.consoleLog, req.consoleCapBytes).map(shellQuote).join(" ")}`;
  const words = ["</dev/null", `> >(${relay} >/dev/null 2>&1 ${closing(held)})`, "2>&1"];
  req.fifos.forEach((f, i) => words.push(`${3 + i}<>${shellQuote(f)}`));
  words.push(`${fds.info}>${shellQuote(req.infoFile)}`);
  req.passFds.forEach((fd, i) => words.push(`${fds.pass[i]}<&${held.get(fd)!}`));
  if (req.seccompFile) words.push(`${SECCOMP_FD}<${shellQuote(req.seccompFile)}`);
  words.push(closing(held));
  return words.join(" ");
}

/** Close every fd the launching bash holds for guests (each guest has dup'ed its own). */
const closing = (held: Map<number, number>) => [...held.values()].map((n) => `${n}<&-`).join(" ");

/** The stdio of a bash that holds `fds` at PASS_BASE and up; returns where each landed. */
type Stdio = "ignore" | "pipe" | number;
function stdioHolding(first: Stdio[], fds: number[]): { stdio: Stdio[]; held: Map<number, number> } {
  const stdio: Stdio[] = [...first];
  const held = new Map<number, number>();
  if (fds.length === 0) return { stdio, held };
  while (stdio.length < PASS_BASE) stdio.push("ignore");
  for (const fd of fds) {
    held.set(fd, stdio.length);
    stdio.push(fd);
  }
  return { stdio, held };
}

/**
 * The default: this process starts the guest through a bash that execs it in
 * place (detached, new session, empty environment), so its exit status is
 * ours to hear. The bash only sets up the fds and the console relay.
 */
export const directLauncher: Launcher = {
  launch(req: LaunchRequest): Promise<Launched> {
    const { stdio, held } = stdioHolding(["ignore", "ignore", "ignore"], req.passFds);
    // exec -c: an empty environment without an `env -i` exec of its own (one fewer per boot).
    const line = `exec -c ${req.argv.map(shellQuote).join(" ")} ${redirections(req, held)}`;
    let exited: ReturnType<Launched["exit"]>;
    const child = spawn("bash", ["-c", line], {
      detached: true,
      stdio,
      env: { PATH: process.env.PATH ?? "/usr/bin:/bin" },
    });
    child.on("exit", (code, signal) => (exited = { code, signal }));
    child.on("error", () => (exited = { code: null, signal: null }));
    child.unref();
    return Promise.resolve({ pid: child.pid, exit: () => exited });
  },
};

/**
 * Starts many guests with one process. Each spawn from Node forks this whole
 * process and blocks until the child has exec'd; once the first guests of a
 * fleet are booting, the CPU is saturated and each such spawn waited up to
 * 470 ms (measured: 32 spawns spread over 1.7-3 s). A shell script forks
 * small and returns at once, so `bench/bare-fleet.sh` started 32 guests in
 * 0.1 s. A batch does the same: every party calls launch() (or leave()), and
 * the last one starts them all from one `bash`, which prints their pids.
 * The guests' exit status is then bash's to hear, not ours: liveness comes
 * from the process identity alone.
 */
export class BatchLauncher {
  private pending: number;
  private readonly requests: {
    req: LaunchRequest;
    resolve: (l: Launched) => void;
    reject: (e: unknown) => void;
  }[] = [];

  private markStarted: () => void = () => {};
  /** Settles once every party has launched or left and the batch's bash is done (its guests started or not). */
  readonly started = new Promise<void>((resolve) => (this.markStarted = resolve));

  constructor(parties: number) {
    this.pending = parties;
  }

  /** One party's handle: launch once, or leave (a party that failed before starting must not hold the others). */
  party(): Launcher & { leave(): void } {
    let counted = false;
    const count = () => {
      if (counted) return false;
      counted = true;
      this.pending--;
      return true;
    };
    return {
      launch: (req) => {
        if (!count()) return directLauncher.launch(req);
        const p = new Promise<Launched>((resolve, reject) => this.requests.push({ req, resolve, reject }));
        this.flushIfComplete();
        return p;
      },
      leave: () => {
        if (count()) this.flushIfComplete();
      },
    };
  }

  private flushIfComplete(): void {
    if (this.pending > 0) return;
    if (this.requests.length === 0) return this.markStarted();
    const batch = this.requests.splice(0);
    startAll(batch.map((b) => b.req))
      .then(
        (pids) => batch.forEach((b, i) => b.resolve({ pid: pids[i], exit: () => undefined })),
        (e) => batch.forEach((b) => b.reject(e)),
      )
      .finally(() => this.markStarted());
  }
}

/**
 * Start every request from one bash; resolve their pids in order. The script
 * is a file bash reads, not its stdin: bash reads a script on stdin a byte at
 * a time (it must not read past what it runs), and with stdin a socket (what
 * Node's "pipe" is) it sources ~/.bashrc first, as for sshd; a wave of 32
 * guests' lines (6 KiB each) is too long for one argument (128 KiB).
 */
async function startAll(reqs: LaunchRequest[]): Promise<(number | undefined)[]> {
  // Beside the first guest's bwrap report: a folder of ours the guests do not see.
  const file = `${reqs[0]!.infoFile}.launch.sh`;
  try {
    return await startScript(file, reqs);
  } finally {
    rmSync(file, { force: true });
  }
}

function startScript(file: string, reqs: LaunchRequest[]): Promise<(number | undefined)[]> {
  const { stdio, held } = stdioHolding(
    ["ignore", "pipe", "pipe"],
    reqs.flatMap((r) => r.passFds),
  );
  const script = [
    "set -u",
    // setsid execs in place (a background job of a non-interactive shell
    // leads no process group), then env -i: $! is the guest's own pid.
    ...reqs.map(
      (r) => `setsid env -i ${r.argv.map(shellQuote).join(" ")} ${redirections(r, held)} & echo "$!"`,
    ),
  ].join("\n");
  writeFileSync(file, `${script}\n`, { mode: 0o600 });
  return new Promise((resolve, reject) => {
    const sh = spawn("bash", [file], { stdio, env: { PATH: process.env.PATH ?? "/usr/bin:/bin" } });
    let out = "";
    let err = "";
    const pids = () => out.split("\n").filter(Boolean).map(Number);
    // Done once bash has exited well and every pid is read. Not at "close": each
    // guest's console relay is forked holding bash's pipes until it execs, which
    // on a CPU full of booting guests took up to 0.8 s after bash was gone.
    let exited: number | null | undefined;
    const settle = () => {
      if (exited === 0 && pids().length === reqs.length) resolve(pids());
    };
    sh.stdout!.on("data", (d: Buffer) => {
      out += d.toString();
      settle();
    });
    sh.stderr!.on("data", (d: Buffer) => (err += d.toString()));
    sh.on("exit", (code) => {
      exited = code;
      settle();
    });
    sh.on("error", reject);
    sh.on("close", (code) => {
      if (code !== 0 || pids().length !== reqs.length)
        reject(
          new UmlfleetError(
            "UMLFLEET_COMMAND_FAILED",
            `bash could not start ${reqs.length} guests: ${err.trim()}`,
            {
              code,
            },
          ),
        );
      else resolve(pids());
    });
  });
}
