/** Small helpers for the benchmarks: statistics, process groups, Pss, environment knobs. */
import { spawn } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import { createHash } from "node:crypto";
import { killPids, processesMentioning } from "../src/process";

export { sleep } from "../src/process";

export function envInt(name: string, dflt: number): number {
  const v = process.env[name];
  if (v === undefined || v === "") return dflt;
  const n = Number(v);
  if (!Number.isFinite(n)) throw new Error(`${name}=${v}: not a number`);
  return Math.round(n);
}

/** A comma-separated list from the environment (BENCH_SIZES=8,32). */
export function envList(name: string, dflt: string): string[] {
  const v = process.env[name];
  return (v === undefined || v === "" ? dflt : v)
    .split(",")
    .map((x) => x.trim())
    .filter(Boolean);
}

export interface Stats {
  n: number;
  median: number;
  p90: number;
  min: number;
  max: number;
  mean: number;
}

/** Nearest-rank percentiles; median of an even count is the mean of the middle two. */
export function stats(xs: number[]): Stats | undefined {
  if (xs.length === 0) return undefined;
  const s = [...xs].sort((a, b) => a - b);
  const n = s.length;
  const at = (i: number) => s[Math.min(n - 1, Math.max(0, i))]!;
  const median = n % 2 ? at((n - 1) / 2) : (at(n / 2 - 1) + at(n / 2)) / 2;
  return {
    n,
    median,
    p90: at(Math.ceil(0.9 * n) - 1),
    min: at(0),
    max: at(n - 1),
    mean: s.reduce((a, b) => a + b, 0) / n,
  };
}

export function loadavg(): string {
  try {
    return readFileSync("/proc/loadavg", "utf8").split(" ").slice(0, 3).join(" ");
  } catch {
    return "?";
  }
}

export function meminfo(): Record<string, number> {
  const out: Record<string, number> = {};
  for (const line of readFileSync("/proc/meminfo", "utf8").split("\n")) {
    const m = /^(\S+):\s+(\d+) kB/.exec(line);
    if (m) out[m[1]!] = Number(m[2]) * 1024;
  }
  return out;
}

function statFields(pid: number): string[] | undefined {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, "utf8");
    return s.slice(s.lastIndexOf(")") + 2).split(" ");
  } catch {
    return undefined;
  }
}

export function pids(): number[] {
  return readdirSync("/proc")
    .filter((d) => /^\d+$/.test(d))
    .map(Number);
}

/** Pids whose process group is `pgid`. */
export function groupMembers(pgid: number): number[] {
  return pids().filter((p) => {
    const f = statFields(p);
    return f !== undefined && Number(f[2]) === pgid && f[0] !== "Z";
  });
}

export interface GroupMemory {
  procs: number;
  /** Distinct address spaces among them (UML helpers share linux.uml's): each counted once. */
  addressSpaces: number;
  /** Sums over the group, bytes. */
  pss: number;
  pssAnon: number;
  pssFile: number;
  pssShmem: number;
  rss: number;
}

/**
 * A guest's processes: the process group led by `root` plus every descendant
 * of `root` (linux.uml calls setsid(), so inside the sandbox it leads its own
 * group and session: measured).
 */
export function guestProcesses(root: number): number[] {
  const parent = new Map<number, number>();
  const all = pids();
  for (const p of all) {
    const f = statFields(p);
    if (f && f[0] !== "Z") parent.set(p, Number(f[1]));
  }
  const out = new Set<number>(groupMembers(root));
  if (parent.has(root)) out.add(root);
  let grew = true;
  while (grew) {
    grew = false;
    for (const [p, pp] of parent) {
      if (!out.has(p) && out.has(pp)) {
        out.add(p);
        grew = true;
      }
    }
  }
  return [...out];
}

/**
 * Sum /proc/<pid>/smaps_rollup over every address space of a guest (see guestProcesses).
 * linux.uml's helper processes are clone(CLONE_VM) children: they share its address space, and
 * each one's smaps_rollup reports that same address space in full. Summing per process would count
 * the guest's RAM once per helper (three times for UML). Processes are therefore grouped by the
 * text of /proc/<pid>/maps, identical exactly when the address space is shared (checked against
 * kcmp(KCMP_VM) on this machine: bench/NOTES.md), and each address space is counted once.
 */
export function groupMemory(root: number): GroupMemory {
  const m: GroupMemory = { procs: 0, addressSpaces: 0, pss: 0, pssAnon: 0, pssFile: 0, pssShmem: 0, rss: 0 };
  const seen = new Set<string>();
  for (const p of guestProcesses(root)) {
    let text: string;
    let maps: string;
    try {
      maps = readFileSync(`/proc/${p}/maps`, "utf8");
      text = readFileSync(`/proc/${p}/smaps_rollup`, "utf8");
    } catch {
      continue;
    }
    m.procs++;
    const space = createHash("sha256").update(maps).digest("hex");
    if (seen.has(space)) continue;
    seen.add(space);
    m.addressSpaces++;
    const kb = (k: string) => Number(new RegExp(`^${k}:\\s+(\\d+) kB`, "m").exec(text)?.[1] ?? 0) * 1024;
    m.pss += kb("Pss");
    m.pssAnon += kb("Pss_Anon");
    m.pssFile += kb("Pss_File");
    m.pssShmem += kb("Pss_Shmem");
    m.rss += kb("Rss");
  }
  return m;
}

/**
 * The benchmark fleet's addressing, shared by every way it is started (Pulumi
 * program, runtime, and bench/bare-fleet.sh, which spells it in bash): guest i
 * is on network i mod n, with address 10.<network>.0.<i div n + 1>/24.
 */
export function fleetNic(i: number, networks: number): { network: number; ipv4: string } {
  const network = i % networks;
  return { network, ipv4: `10.${network}.0.${Math.floor(i / networks) + 1}/24` };
}

/** SIGKILL a process group (ignore errors). */
export function killGroup(pgid: number | undefined): void {
  if (!pgid) return;
  try {
    process.kill(-pgid, "SIGKILL");
  } catch {
    /* gone */
  }
}

/** SIGKILL every process whose command line contains `needle` (the run's folder). Returns how many. */
export function killByCmdline(needle: string): number {
  return killPids(processesMentioning(needle).map((p) => p.pid));
}

export interface LineProc {
  /** Resolves with the first stdout line matching `re` and the ms since spawn, or undefined on exit. */
  line: Promise<{ line: string; ms: number } | undefined>;
  done: Promise<{ code: number | null; stdout: string; stderr: string }>;
}

/** Spawn a command; watch its stdout for a line. */
export function spawnWatch(
  file: string,
  args: string[],
  re: RegExp,
  opts: { env?: NodeJS.ProcessEnv; timeoutMs?: number } = {},
): LineProc {
  const t0 = performance.now();
  const child = spawn(file, args, { stdio: ["ignore", "pipe", "pipe"], env: opts.env ?? process.env });
  let stdout = "";
  let stderr = "";
  let resolveLine: (v: { line: string; ms: number } | undefined) => void = () => {};
  const line = new Promise<{ line: string; ms: number } | undefined>((r) => (resolveLine = r));
  let buf = "";
  child.stdout.setEncoding("utf8").on("data", (d: string) => {
    stdout += d;
    buf += d;
    let i: number;
    while ((i = buf.indexOf("\n")) >= 0) {
      const l = buf.slice(0, i);
      buf = buf.slice(i + 1);
      if (re.test(l)) resolveLine({ line: l, ms: performance.now() - t0 });
    }
  });
  child.stderr.setEncoding("utf8").on("data", (d: string) => (stderr += d));
  const timer = opts.timeoutMs
    ? setTimeout(() => {
        try {
          child.kill("SIGKILL");
        } catch {
          /* gone */
        }
      }, opts.timeoutMs)
    : undefined;
  const done = new Promise<{ code: number | null; stdout: string; stderr: string }>((r) =>
    child.on("close", (code) => {
      if (timer) clearTimeout(timer);
      resolveLine(undefined);
      r({ code, stdout, stderr });
    }),
  );
  return { line, done };
}

export const MiB = 1024 * 1024;
export const fmtS = (ms: number | undefined) => (ms === undefined ? "n/a" : `${(ms / 1000).toFixed(3)} s`);
export const fmtMiB = (b: number | undefined) => (b === undefined ? "n/a" : `${(b / MiB).toFixed(1)} MiB`);
