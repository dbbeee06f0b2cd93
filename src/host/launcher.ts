import { spawn } from "node:child_process";
import { closeSync, constants, openSync } from "node:fs";
import { UmlfleetError } from "../errors";

/** One detached guest process to start. */
export interface LaunchRequest {
  argv: string[];
  /** stdout and stderr: appended to this file. stdin is /dev/null. */
  logFile: string;
  /** Opened read-write (FIFOs: never blocks, never EOF) as fds 3, 4, ... */
  fifos: string[];
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
 * The default: this process spawns the guest itself (detached, new session,
 * empty environment) and hears its exit status.
 */
export const directLauncher: Launcher = {
  launch(req: LaunchRequest): Promise<Launched> {
    const fds: number[] = [];
    const open = (file: string, flags: number) => {
      const fd = openSync(file, flags, 0o600);
      fds.push(fd);
      return fd;
    };
    try {
      const log = open(req.logFile, constants.O_WRONLY | constants.O_APPEND | constants.O_CREAT);
      const stdio: ("ignore" | number)[] = [
        "ignore",
        log,
        log,
        ...req.fifos.map((f) => open(f, constants.O_RDWR)),
      ];
      let exited: ReturnType<Launched["exit"]>;
      const child = spawn(req.argv[0]!, req.argv.slice(1), { detached: true, stdio, env: {} });
      child.on("exit", (code, signal) => (exited = { code, signal }));
      child.on("error", () => (exited = { code: null, signal: null }));
      child.unref();
      return Promise.resolve({ pid: child.pid, exit: () => exited });
    } finally {
      for (const fd of fds) closeSync(fd);
    }
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
    if (this.pending > 0 || this.requests.length === 0) return;
    const batch = this.requests.splice(0);
    startAll(batch.map((b) => b.req)).then(
      (pids) => batch.forEach((b, i) => b.resolve({ pid: pids[i], exit: () => undefined })),
      (e) => batch.forEach((b) => b.reject(e)),
    );
  }
}

const quote = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

/** Start every request from one bash (fed on stdin); resolve their pids in order. */
function startAll(reqs: LaunchRequest[]): Promise<(number | undefined)[]> {
  const script = [
    "set -u",
    ...reqs.map((r) => {
      const redirs = [
        "</dev/null",
        `>>${quote(r.logFile)}`,
        "2>&1",
        ...r.fifos.map((f, i) => `${i + 3}<>${quote(f)}`),
      ].join(" ");
      // setsid execs in place (a background job of a non-interactive shell
      // leads no process group), then env -i: $! is the guest's own pid.
      return `setsid env -i ${r.argv.map(quote).join(" ")} ${redirs} & echo "$!"`;
    }),
  ].join("\n");
  return new Promise((resolve, reject) => {
    const sh = spawn("bash", ["-s"], {
      stdio: ["pipe", "pipe", "pipe"],
      env: { PATH: process.env.PATH ?? "/usr/bin:/bin" },
    });
    let out = "";
    let err = "";
    sh.stdout.on("data", (d: Buffer) => (out += d.toString()));
    sh.stderr.on("data", (d: Buffer) => (err += d.toString()));
    sh.on("error", reject);
    sh.on("close", (code) => {
      const pids = out.split("\n").filter(Boolean).map(Number);
      if (code !== 0 || pids.length !== reqs.length)
        reject(
          new UmlfleetError(
            "UMLFLEET_COMMAND_FAILED",
            `bash could not start ${reqs.length} guests: ${err.trim()}`,
            {
              code,
            },
          ),
        );
      else resolve(pids);
    });
    sh.stdin.end(`${script}\n`);
  });
}
