/**
 * Section "hosts", part 4 (bench/hosts.ts): 3 hosts x N guests through one
 * real `pulumi up` vs N guests on this machine through one `pulumi up`, and
 * vs the same 3 x N on this machine (the same CPU work: the hosts share its
 * cores), in the same run, on the same kernel file and base recipe. Each stack first
 * gets its hosts, kernels and bases (an `up` outside the rounds), then each
 * round times the `up` that adds the network and the guests
 * (bench/hosts-program.ts) and takes them away again with an `up` of the
 * prep program; at the end `pulumi destroy` of both stacks, after which the
 * hosts and this machine's state folder must hold nothing they did not hold
 * before (files, processes, cable keys).
 */
import { execFileSync } from "node:child_process";
import { lstatSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import type { UpTimings } from "../automation/quick-up";
import { closeRemotes, remoteVersion, sweepStaleKeys } from "../provider/driver-factory";
import { checkHost, verifyKnownHost } from "../provider/host";
import type { HostDriver } from "../src/host/driver";
import { processesMentioning } from "../src/process";
import type { HostLab } from "../test/helpers/hosts";
import { UP_NAMES, type HostsUpCfg, type HostsUpResult, type StepTiming } from "./hosts-program";
import { fleetNic, loadavg, sleep, spawnWatch } from "./lib";

/** One `pulumi up` that adds the network and the guests to a stack holding its hosts, kernels and bases. */
export interface UpSide {
  /** From the call to quickUp's return, in the program's process. */
  ms?: number;
  /** The program's process from spawn to exit (node, selecting the stack, the up). */
  wallMs: number;
  /** Guests running when the up returned (the groups' memberInfo). */
  ready: number;
  timings?: UpTimings;
  /** Each resource step, ms after the call (engine events, time of receipt). */
  steps: StepTiming[];
  /** The `up` of the prep program after it: the guests and the network deleted. */
  downMs?: number;
  error?: string;
}

export interface UpComparison {
  /** Rounds in alternating order: round 0 three hosts first, round 1 one host first, ... */
  rounds: { round: number; threeHosts?: UpSide; oneHost?: UpSide; oneHostAll?: UpSide }[];
  /** Each stack's first up (three Hosts, kernels, bases / a kernel and a base): outside the rounds. */
  prepMs: { threeHosts?: number; oneHost?: number };
  destroyMs: { threeHosts?: number; oneHost?: number };
  /** What the destroys left that was not there before the stacks (files, processes, cable keys): must be empty. */
  left: string[];
  /**
   * Control for `left`: what the same comparison found while round 1's three-host stack was up
   * (guests, switches, cables). 0 would mean the check cannot see what a stack makes.
   */
  seenWhileUp?: number;
  /** After the first three-host up, a guest on host 3 pinged one on host 2 (through two cables). */
  crossHostPing?: boolean;
  /**
   * What every three-host `up` does before its first step, timed alone: the three Hosts' checks
   * (provider/host.ts checkHost) at once, on fresh connections as in a new provider process.
   * `ms`/`perHost`: a new Host's check (connect, version, then the facts and default kernel);
   * `knownMs`/`knownPerHost`: the check of a Host already in the stack (connect and version only).
   */
  hostCheck?: {
    ms: number;
    perHost: { connectMs: number; checkMs: number }[];
    knownMs?: number;
    knownPerHost?: number[];
  };
  loadavg: string[];
}

type Side = "threeHosts" | "oneHost";
/** What a round measures: a stack, with N guests per host; oneHostAll: the one-host stack with all 3 x N. */
type Measured = Side | "oneHostAll";
type Log = (...a: unknown[]) => void;

const PROGRAM = join(__dirname, "hosts-program.js");

/** One operation of bench/hosts-program.ts in its own process (Pulumi serializes closures: compiled dist/ only). */
async function run(cfg: HostsUpCfg): Promise<HostsUpResult & { wallMs: number }> {
  const t0 = performance.now();
  const p = spawnWatch(process.execPath, [PROGRAM, JSON.stringify(cfg)], /^@@RESULT /, {
    timeoutMs: 20 * 60_000,
  });
  const line = await p.line;
  const out = await p.done;
  const wallMs = Math.round(performance.now() - t0);
  if (!line)
    return {
      ms: 0,
      setupMs: 0,
      steps: [],
      wallMs,
      error: `no result (exit ${out.code}): ${out.stderr.slice(-1500)}`,
    };
  return { ...(JSON.parse(line.line.slice("@@RESULT ".length)) as HostsUpResult), wallMs };
}

/** Files and sockets inside a state folder's subfolders (what resources leave: `find -mindepth 2`). */
function stateFiles(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string, depth: number) => {
    let names: string[] = [];
    try {
      names = readdirSync(d);
    } catch {
      return;
    }
    for (const n of names) {
      const p = join(d, n);
      try {
        const st = lstatSync(p);
        if (st.isDirectory()) walk(p, depth + 1);
        else if (depth >= 1 && (st.isFile() || st.isSocket())) out.push(p);
      } catch {
        /* removed meanwhile */
      }
    }
  };
  walk(dir, 0);
  return out;
}

const ppidOf = (pid: number): number | undefined => {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, "utf8");
    return Number(s.slice(s.lastIndexOf(")") + 2).split(" ")[1]);
  } catch {
    return undefined;
  }
};

/** "pid args" of every process of `uid` (pgrep exits 1 when there is none). */
function processesOf(uid: number): string[] {
  try {
    return execFileSync("pgrep", ["-a", "-U", String(uid)], { encoding: "utf8" })
      .trim()
      .split("\n");
  } catch {
    return [];
  }
}

/**
 * What is on the hosts and in the local state folder that a stack could leave: files and sockets
 * in the state folders, processes (but the sessions serving this benchmark's own drivers, and
 * zombies), cable keys, and ssh clients of this machine to a host that this process did not start.
 */
function snapshot(lab: HostLab, localStateDir: string): string[] {
  const out: string[] = [];
  for (const h of lab.hosts) {
    const at = `host ${h.index}`;
    out.push(...stateFiles(h.stateDir).map((f) => `${at}: file ${f}`));
    out.push(
      ...processesOf(h.uid)
        // sshd's sessions and the agents serving them (this process's clients: their ssh ends
        // are checked below, on this machine; sshd runs the command through `sh -c`), and zombies.
        .filter((p) => p && !/^\d+ (sshd: |.*umlfleet-agent dial-stdio)/.test(p) && !p.endsWith("<defunct>"))
        .map((p) => `${at}: process ${p}`),
    );
    let keys = 0;
    try {
      keys = readFileSync(join(h.home, ".ssh", "authorized_keys"), "utf8")
        .split("\n")
        .filter((l) => l.includes("umlfleet-cable")).length;
    } catch {
      /* no file: no key */
    }
    out.push(`${at}: ${keys} cable keys`);
    out.push(
      ...processesMentioning(`@${h.address}`)
        .filter((p) => /^\S*ssh /.test(p.args) && ppidOf(p.pid) !== process.pid)
        .map((p) => `${at}: ssh client ${p.pid} ${p.args}`),
    );
  }
  out.push(...stateFiles(localStateDir).map((f) => `local: file ${f}`));
  out.push(
    ...processesMentioning(localStateDir)
      .filter((p) => !/^\S*node\b/.test(p.args))
      .map((p) => `local: process ${p.pid} ${p.args}`),
  );
  return out;
}

/**
 * The three Hosts' checks at once, as a new provider process makes them at each `up`: per host the
 * first connection (the agent's version and state folder), then the whole check from the start.
 * This process's clients are closed before and after (its drivers connect again at their next call).
 */
async function timeHostChecks(lab: HostLab): Promise<NonNullable<UpComparison["hostCheck"]>> {
  const inputs = lab.hosts.map((h) => ({
    ssh: { host: h.address, user: h.user, hostKey: h.hostKey, privateKey: lab.privateKey },
  }));
  const must = (r: Awaited<ReturnType<typeof checkHost>>) => {
    if (r.failures.length > 0) throw new Error(r.failures.map((f) => f.reason).join("; "));
  };
  await closeRemotes();
  const t0 = performance.now();
  const perHost = await Promise.all(
    inputs.map(async (inp) => {
      const t = performance.now();
      await remoteVersion(inp.ssh);
      const connectMs = Math.round(performance.now() - t);
      must(await checkHost(inp, {}));
      return { connectMs, checkMs: Math.round(performance.now() - t) };
    }),
  );
  const ms = Math.round(performance.now() - t0);
  await closeRemotes();
  const t1 = performance.now();
  const knownPerHost = await Promise.all(
    inputs.map(async (inp) => {
      const t = performance.now();
      // As the engine does: the check (it begins the connection), then the diff (it waits for it).
      must(await checkHost(inp, inp));
      await verifyKnownHost(inp);
      return Math.round(performance.now() - t);
    }),
  );
  const knownMs = Math.round(performance.now() - t1);
  await closeRemotes();
  return { ms, perHost, knownMs, knownPerHost };
}

export async function upComparison(o: {
  lab: HostLab;
  /** Drivers of the lab's hosts, in order (for the cross-host ping). */
  drivers: HostDriver[];
  /** This machine's state folder for the one-host stack (holding the kernel's delay-loop value, as the hosts' do). */
  localStateDir: string;
  /** The Pulumi file backend of both stacks. */
  backendDir: string;
  perHost: number;
  rounds: number;
  log: Log;
  errors: string[];
}): Promise<UpComparison> {
  const { lab, perHost } = o;
  const res: UpComparison = { rounds: [], prepMs: {}, destroyMs: {}, left: [], loadavg: [loadavg()] };
  const cfg = (side: Side, n: number, action: HostsUpCfg["action"] = "up"): HostsUpCfg => ({
    action,
    stackName: side,
    backendDir: o.backendDir,
    hosts:
      side === "threeHosts"
        ? lab.hosts.map((h) => ({ host: h.address, user: h.user, hostKey: h.hostKey }))
        : [],
    ...(side === "threeHosts" ? { privateKeyPath: lab.privateKeyPath } : { stateDir: o.localStateDir }),
    // The lab's copy of the kernel, readable by the hosts' users: the same file for both stacks.
    kernelPath: join(lab.dir, "linux"),
    perHost: n,
    // Generous: on 2 shared cores the last guest of 3 x 32 may wait long for CPU.
    bootTimeoutMs: 300_000,
  });
  const failed = (what: string, r: { error?: string }) => {
    if (r.error) o.errors.push(`hosts up: ${what}: ${r.error.replace(/\s+/g, " ").slice(-600)}`);
    return r.error !== undefined;
  };
  const before = new Set(snapshot(lab, o.localStateDir));
  const ready: Partial<Record<Side, boolean>> = {};
  try {
    for (const side of ["threeHosts", "oneHost"] as const) {
      const r = await run(cfg(side, 0));
      if (!failed(`prep ${side}`, r)) [res.prepMs[side], ready[side]] = [r.ms, true];
    }
    o.log("hosts up: prep", JSON.stringify(res.prepMs), loadavg());
    for (let round = 0; round < o.rounds; round++) {
      const entry: UpComparison["rounds"][number] = { round };
      res.rounds.push(entry);
      const order: Measured[] =
        round % 2 ? ["oneHost", "oneHostAll", "threeHosts"] : ["threeHosts", "oneHostAll", "oneHost"];
      for (const measured of order) {
        const side: Side = measured === "oneHostAll" ? "oneHost" : measured;
        if (!ready[side]) continue;
        const r = await run(cfg(side, measured === "oneHostAll" ? 3 * perHost : perHost));
        const up: UpSide = {
          wallMs: r.wallMs,
          ready: r.ready ?? 0,
          steps: r.steps,
          ...(r.timings ? { timings: r.timings } : {}),
          ...(r.error ? { error: r.error.slice(-600) } : { ms: r.ms }),
        };
        failed(`round ${round + 1} ${measured}`, r);
        if (measured === "threeHosts" && round === 0 && !r.error) {
          res.seenWhileUp = snapshot(lab, o.localStateDir).filter((x) => !before.has(x)).length;
          if (res.seenWhileUp === 0)
            o.errors.push("hosts up: the leftover check saw nothing of a running stack: it cannot tell");
          // One segment across the cables: host 3's first guest reaches host 2's.
          const ip = fleetNic(perHost, 1).ipv4.split("/")[0]!;
          const p = await o.drivers[2]!.exec(UP_NAMES.member(2, 0), `ping -c 1 -W 5 ${ip}`, {
            timeoutMs: 30_000,
          }).catch((e: unknown) => ({ exitCode: -1, output: String(e) }));
          res.crossHostPing = p.exitCode === 0;
          if (!res.crossHostPing)
            o.errors.push(`hosts up: ${UP_NAMES.member(2, 0)} cannot reach ${ip}: ${p.output.slice(-200)}`);
        }
        const down = await run(cfg(side, 0));
        if (!failed(`round ${round + 1} ${measured} down`, down)) up.downMs = down.ms;
        // Once, with no guest running (as at the start of an up).
        if (measured === "threeHosts" && round === 0)
          res.hostCheck = await timeHostChecks(lab).catch((e: unknown) => {
            o.errors.push(`hosts up: timing the Host checks: ${String(e).slice(0, 300)}`);
            return undefined;
          });
        entry[measured] = up;
        o.log(
          `hosts up: round ${round + 1} ${measured}`,
          JSON.stringify({ ...up, steps: undefined }),
          loadavg(),
        );
      }
    }
  } finally {
    res.loadavg.push(loadavg());
    for (const side of ["threeHosts", "oneHost"] as const) {
      const r = await run(cfg(side, 0, "destroy"));
      if (!failed(`destroy ${side}`, r)) res.destroyMs[side] = r.ms;
    }
    // Killed providers leave their key folders for the next one to sweep (provider/driver-factory.ts).
    sweepStaleKeys();
    // A guest's processes may take a moment to be reaped after its delete returned.
    for (let i = 0; i < 20; i++) {
      res.left = snapshot(lab, o.localStateDir).filter((x) => !before.has(x));
      if (res.left.length === 0) break;
      await sleep(500);
    }
    if (res.left.length)
      o.errors.push(`hosts up: pulumi destroy left ${res.left.length}: ${res.left.slice(0, 5).join("; ")}`);
    o.log("hosts up: destroy", JSON.stringify(res.destroyMs), `left ${res.left.length}`, loadavg());
  }
  return res;
}
