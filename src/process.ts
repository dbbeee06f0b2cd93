import { spawn } from "node:child_process";
import { readdirSync, readFileSync, readlinkSync } from "node:fs";
import { basename } from "node:path";
import { UmlfleetError } from "./errors";

export interface RunOptions {
  timeoutMs?: number;
  signal?: AbortSignal;
  input?: string | Buffer;
  env?: NodeJS.ProcessEnv;
  /** Resolve instead of throwing on a non-zero exit. */
  allowFailure?: boolean;
}

export interface RunResult {
  file: string;
  args: readonly string[];
  stdout: string;
  stderr: string;
  exitCode: number | null;
  signal: NodeJS.Signals | null;
  timedOut: boolean;
  durationMs: number;
}

/**
 * Run a host tool to completion under a deadline (default 60 s): on expiry the
 * whole process group gets SIGKILL. Throws UMLFLEET_COMMAND_FAILED with the
 * facts as fields, unless `allowFailure`.
 */
export function run(file: string, args: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  const timeoutMs = opts.timeoutMs ?? 60_000;
  const started = performance.now();
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, {
      stdio: ["pipe", "pipe", "pipe"],
      detached: true,
      env: opts.env ?? process.env,
    });
    let stdout = "";
    let stderr = "";
    let timedOut = false;
    child.stdout.setEncoding("utf8").on("data", (d: string) => (stdout += d));
    child.stderr.setEncoding("utf8").on("data", (d: string) => (stderr += d));
    const killGroup = () => {
      try {
        if (child.pid) process.kill(-child.pid, "SIGKILL");
      } catch {
        /* already gone */
      }
    };
    const timer = setTimeout(() => {
      timedOut = true;
      killGroup();
    }, timeoutMs);
    const onAbort = () => {
      timedOut = true;
      killGroup();
    };
    opts.signal?.addEventListener("abort", onAbort, { once: true });
    child.on("error", (err) => {
      clearTimeout(timer);
      opts.signal?.removeEventListener("abort", onAbort);
      reject(
        new UmlfleetError(
          "UMLFLEET_COMMAND_FAILED",
          `${file}: ${err.message}`,
          { file, args },
          { cause: err },
        ),
      );
    });
    child.on("close", (exitCode, signal) => {
      clearTimeout(timer);
      opts.signal?.removeEventListener("abort", onAbort);
      const result: RunResult = {
        file,
        args,
        stdout,
        stderr,
        exitCode,
        signal,
        timedOut,
        durationMs: Math.round(performance.now() - started),
      };
      if ((exitCode === 0 && !timedOut) || opts.allowFailure) return resolve(result);
      const how = timedOut ? `timed out after ${timeoutMs} ms` : `exited with ${exitCode ?? signal}`;
      reject(
        new UmlfleetError(
          "UMLFLEET_COMMAND_FAILED",
          `${file} ${args.join(" ")} ${how}: ${(stderr || stdout).trim().slice(-2000)}`,
          { ...result },
        ),
      );
    });
    child.stdin.on("error", () => {
      /* the tool may exit without reading its input */
    });
    child.stdin.end(opts.input ?? "");
  });
}

/**
 * A process as recorded in a state file: its pid plus its start time in clock
 * ticks since boot (/proc/<pid>/stat field 22), so a recycled pid is never
 * mistaken for ours.
 */
export interface ProcessIdentity {
  pid: number;
  startTicks: number;
}

export function processStartTicks(pid: number): number | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // The command name (field 2) may hold spaces and parentheses: split after the last ')'.
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    const state = fields[0];
    if (state === "Z" || state === "X") return null;
    return Number(fields[19]);
  } catch {
    return null;
  }
}

export function identify(pid: number): ProcessIdentity | null {
  const startTicks = processStartTicks(pid);
  return startTicks === null ? null : { pid, startTicks };
}

export function isAlive(p: ProcessIdentity | undefined | null): boolean {
  return !!p && processStartTicks(p.pid) === p.startTicks;
}

/** Signal a process group led by `p`, if `p` is still the process we recorded. */
export function signalGroup(p: ProcessIdentity, signal: NodeJS.Signals): boolean {
  if (!isAlive(p)) return false;
  try {
    process.kill(-p.pid, signal);
    return true;
  } catch {
    try {
      process.kill(p.pid, signal);
      return true;
    } catch {
      return false;
    }
  }
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/**
 * Poll `check` every `intervalMs` until it returns a value, `timeoutMs`
 * passes or `signal` aborts (then undefined: the caller tells which from the
 * signal). `pause` replaces the sleep between checks (one that may end early).
 */
export async function waitFor<T>(
  check: () => T | undefined | null | false | Promise<T | undefined | null | false>,
  timeoutMs: number,
  intervalMs = 25,
  signal?: AbortSignal,
  pause: (ms: number) => Promise<void> = sleep,
): Promise<T | undefined> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    if (signal?.aborted) return undefined;
    const v = await check();
    if (v) return v;
    if (performance.now() >= deadline) return undefined;
    await pause(intervalMs);
  }
}

/** SIGKILL a process group and wait until its leader is gone. */
export async function killGroup(p: ProcessIdentity, timeoutMs = 10_000): Promise<void> {
  signalGroup(p, "SIGKILL");
  await waitFor(() => !isAlive(p), timeoutMs, 10);
}

/**
 * Pids of the processes with an argument equal to `path` or below it. An
 * instance's processes all name its vm/ folder: the sandbox (bwrap) and every
 * linux.uml process. linux.uml calls setsid(), so a process group does not
 * hold them all; this does.
 */
export function processesNaming(path: string): number[] {
  return processes()
    .filter((p) => p.argv.some((a) => a === path || a.includes(`${path}/`)))
    .map((p) => p.pid);
}

/**
 * Processes (but this one) whose command line contains `needle` anywhere:
 * for leak checks in tests and benchmarks, which name their root folder.
 */
export function processesMentioning(needle: string): { pid: number; args: string }[] {
  return processes()
    .filter((p) => p.argv.some((a) => a.includes(needle)))
    .map((p) => ({ pid: p.pid, args: p.argv.join(" ").trim() }));
}

/** SIGKILL each pid (gone ones are skipped); how many were signalled. */
export function killPids(pids: readonly number[]): number {
  let n = 0;
  for (const pid of pids) {
    try {
      process.kill(pid, "SIGKILL");
      n++;
    } catch {
      /* already gone */
    }
  }
  return n;
}

/** Every process of the host but this one, with its argv (zombies have none). */
function processes(): { pid: number; argv: string[] }[] {
  let entries: string[] = [];
  try {
    entries = readdirSync("/proc");
  } catch {
    return [];
  }
  const out: { pid: number; argv: string[] }[] = [];
  for (const e of entries) {
    if (!/^\d+$/.test(e) || Number(e) === process.pid) continue;
    try {
      out.push({ pid: Number(e), argv: readFileSync(`/proc/${e}/cmdline`, "utf8").split("\0") });
    } catch {
      /* exited meanwhile */
    }
  }
  return out;
}

/** SIGKILL every process naming `path` and wait until none is left (default 10 s). */
export async function killAllNaming(path: string, timeoutMs = 10_000): Promise<number[]> {
  const killed = processesNaming(path);
  killPids(killed);
  await waitFor(() => processesNaming(path).every((pid) => processStartTicks(pid) === null), timeoutMs, 10);
  return killed;
}

/**
 * The nearest ancestor of `pid` (default: this process's parent) whose
 * command name or executable is `name`, as pid and start time; undefined
 * when there is none within 16 generations.
 */
export function ancestorNamed(name: string, pid = process.ppid): ProcessIdentity | undefined {
  for (let depth = 0; pid > 1 && depth < 16; depth++) {
    let stat: string;
    try {
      stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    } catch {
      return undefined;
    }
    // "pid (comm) state ppid ...": comm may hold spaces and parentheses.
    const comm = stat.slice(stat.indexOf("(") + 1, stat.lastIndexOf(")"));
    let exe: string | undefined;
    try {
      exe = basename(readlinkSync(`/proc/${pid}/exe`));
    } catch {
      exe = undefined;
    }
    if (comm === name || exe === name) return identify(pid) ?? undefined;
    pid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
  }
  return undefined;
}

/**
 * Add /usr/sbin and /sbin to this process's PATH when missing: sshd gives a
 * non-interactive session PATH=/usr/local/bin:/usr/bin:/bin, and umlfleet runs
 * mke2fs and debugfs from /usr/sbin (the agent and `umlfleet doctor` over ssh).
 */
export function withSbinOnPath(env: NodeJS.ProcessEnv = process.env): void {
  const dirs = (env.PATH ?? "").split(":").filter(Boolean);
  for (const d of ["/usr/sbin", "/sbin"]) if (!dirs.includes(d)) dirs.push(d);
  env.PATH = dirs.join(":");
}
