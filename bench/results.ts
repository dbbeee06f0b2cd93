/**
 * What `npm run bench` measures (bench/run.ts) and reports (bench/report.ts):
 * the knobs it reads from the environment and the shape of its results
 * (bench/results/latest.json).
 */
import type { FleetResult } from "./fleet-program";
import type { HostsResult } from "./hosts";
import type { UpTimings } from "../automation/quick-up";
import { envInt, envList, type GroupMemory, type Stats } from "./lib";

export const KNOBS = {
  BENCH_BOOT_ROUNDS: envInt("BENCH_BOOT_ROUNDS", 10),
  /**
   * Boot variants: lean (the runtime as it boots by default: the delay-loop value kept from an earlier
   * boot; the bare guest gets the same lpj=), lean-calibrating (every boot calibrates, both sides), debian
   * (Debian's 6.1 kernel panics on hosts with AMX: off by default).
   */
  BENCH_BOOT_VARIANTS: envList("BENCH_BOOT_VARIANTS", "lean,lean-calibrating"),
  /** Fleet sizes of the scale curve (section "scale"): shell script, runtime and `pulumi up` at each. */
  BENCH_SIZES: envList("BENCH_SIZES", "8,32,128,256").map((x) => {
    const n = Number(x);
    if (!Number.isInteger(n) || n < 1)
      throw new Error(`BENCH_SIZES: ${x} is not a fleet size (a whole number >= 1)`);
    return n;
  }),
  /** Networks of the scale curve's fleets (guest i on network i mod n). */
  BENCH_SCALE_NETWORKS: envInt("BENCH_SCALE_NETWORKS", 4),
  /** 1: the scale curve's `up` runs through quickUp (automation/quick-up.ts); 0: plain `stack.up()`. */
  BENCH_SCALE_QUICK: envInt("BENCH_SCALE_QUICK", 1),
  BENCH_FLEET_ROUNDS: envInt("BENCH_FLEET_ROUNDS", 2),
  BENCH_FLEET_SIZE: envInt("BENCH_FLEET_SIZE", 32),
  BENCH_FLEET_NETWORKS: envInt("BENCH_FLEET_NETWORKS", 4),
  /** UpOptions.parallel for the headline fleet rounds; 0 = the CLI default (4 x CPUs). */
  BENCH_FLEET_PARALLEL: envInt("BENCH_FLEET_PARALLEL", 64),
  /** Extra fleet rounds with the CLI's default parallelism. */
  BENCH_FLEET_DEFAULT_PARALLEL_ROUNDS: envInt("BENCH_FLEET_DEFAULT_PARALLEL_ROUNDS", 1),
  /** Rounds with a Disk and an Instance resource per guest instead of one InstanceGroup (for comparison). */
  BENCH_FLEET_RESOURCE_ROUNDS: envInt("BENCH_FLEET_RESOURCE_ROUNDS", 1),
  /** 1: the fleet (both sides) boots with lpj=<measured> in its kernelArgs. */
  BENCH_FLEET_LPJ: envInt("BENCH_FLEET_LPJ", 0),
  /**
   * 1: a host's steady state: every state folder the runtime sections use holds the kernel's
   * delay-loop value (src/host/delay-calibration.ts, as after its first boot) and the shell
   * baselines get the same lpj=. 0: UMLFLEET_PRESET_LPJ=off, every guest on both sides calibrates.
   */
  BENCH_PRESET_LPJ: envInt("BENCH_PRESET_LPJ", 1),
  BENCH_EMPTY_ROUNDS: envInt("BENCH_EMPTY_ROUNDS", 3),
  BENCH_IDLE_S: envInt("BENCH_IDLE_S", 10),
  BENCH_MEM_GUESTS: envInt("BENCH_MEM_GUESTS", 4),
  BENCH_HANG_ROUNDS: envInt("BENCH_HANG_ROUNDS", 3),
  BENCH_HANG_SIZE: envInt("BENCH_HANG_SIZE", 32),
  BENCH_HANG_TIMEOUT_MS: envInt("BENCH_HANG_TIMEOUT_MS", 60_000),
  /**
   * 1: run section "hosts" (three network-namespace hosts with sshd, over SSH: needs root, makes
   * users and namespaces, all removed at the end). Off by default; a run without it keeps the
   * previous results of the section only with BENCH_MERGE=1.
   */
  BENCH_HOSTS: envInt("BENCH_HOSTS", 0),
  /** Guests per host in section "hosts" (the figure is 32). */
  BENCH_HOSTS_PER_HOST: envInt("BENCH_HOSTS_PER_HOST", 32),
  BENCH_HOSTS_CALLS: envInt("BENCH_HOSTS_CALLS", 50),
  BENCH_HOSTS_PINGS: envInt("BENCH_HOSTS_PINGS", 50),
  BENCH_HOSTS_TCP_MIB: envInt("BENCH_HOSTS_TCP_MIB", 64),
  /**
   * Rounds of the hosts section's `pulumi up` comparison (3 hosts x BENCH_HOSTS_PER_HOST guests
   * through one `up` vs BENCH_HOSTS_PER_HOST on this machine; order alternating); 0 skips it.
   */
  BENCH_HOSTS_UP_ROUNDS: envInt("BENCH_HOSTS_UP_ROUNDS", 2),
  /** Hang rounds stop early once the whole run has taken this long. */
  BENCH_BUDGET_MIN: envInt("BENCH_BUDGET_MIN", 25),
};

export interface BootSample {
  round: number;
  ms?: number;
  /** Host time until the kernel's "Run <init> as init process" line was on the console (polled every 10 ms). */
  toInitMs?: number;
  guestUptimeS?: number;
  error?: string;
  freshOverlayBytes?: number;
  /** Runtime boots: ms after the call at which each host-side step was reached (src/host/instance/boot-trace.ts). */
  trace?: Record<string, number>;
}

/** One fleet size of the scale curve: the same guests by shell script, by the runtime and by `pulumi up`. */
export interface ScalePoint {
  size: number;
  networks: number;
  bare?: { ms?: number; ready: number; error?: string; memory?: MemGuest[] };
  runtime?: { ms?: number; ready: number; error?: string };
  pulumi?: NonNullable<FleetRound["pulumi"]>;
  /** Host limits seen at this size (open fds of the provider, processes). */
  loadavg?: string;
}
export interface HangRound {
  round: number;
  ready: number;
  size: number;
  ms: number;
  failures: string[];
}
export interface MemGuest extends GroupMemory {
  name: string;
}
export interface FleetRound {
  round: number;
  parallel: number | "default";
  /** How the Pulumi program declares the fleet (results before 2026-11-27 16:30 UTC: "resources"). */
  shape?: "group" | "resources";
  bare?: { ms?: number; ready: number; error?: string; memory?: MemGuest[] };
  /** The same fleet through LocalRuntime.groups.apply in this process: umlfleet without Pulumi. */
  runtime?: { ms?: number; ready: number; error?: string };
  pulumi?: {
    upMs?: number;
    upWallMs?: number;
    upSetupMs?: number;
    upPhases?: FleetResult["phases"];
    ready: number;
    error?: string;
    memory?: MemGuest[];
    shmemDeltaBytes?: number;
    noopUpMs?: number;
    /** The no-op up through quickUp, with its timings. */
    noopQuick?: { ms: number } & UpTimings;
    /** quickUp's timings of the first up (when it ran through quickUp). */
    upTimings?: UpTimings;
    noopSummary?: unknown;
    previewMs?: number;
    teardownMs?: number;
  };
}
export interface Results {
  startedAt: string;
  finishedAt?: string;
  durationMin?: number;
  knobs: typeof KNOBS;
  machine: Record<string, unknown>;
  loadavg: Record<string, string>;
  leanKernel: string;
  lpj?: number;
  errors: string[];
  disk?: {
    freshBytes: number;
    afterBootRunningBytes?: number;
    afterPoweroffBytes?: number;
    stopMs?: number;
    freshSamples: number[];
  };
  boot: Record<
    string,
    {
      bare: BootSample[];
      runtime: BootSample[];
      /** kernelArgs of both sides. */
      args: string[];
      /** What the bare guest got for what the runtime adds itself (its kept lpj=); absent in older runs. */
      bareArgs?: string[];
      kernel: string;
    }
  >;
  bootStats?: Record<
    string,
    {
      bare?: Stats;
      runtime?: Stats;
      bareUptime?: Stats;
      runtimeUptime?: Stats;
      bareInit?: Stats;
      runtimeInit?: Stats;
    }
  >;
  /** When each section's data was measured (BENCH_MERGE keeps older sections). */
  sectionsAt: Record<string, string>;
  mergedFrom?: string;
  memory: Record<string, MemGuest[]>;
  fleet: {
    prepMs?: number;
    rounds: FleetRound[];
    emptyUpMs: number[];
    /** Empty-stack ups through quickUp. */
    emptyQuickUp?: ({ ms: number } & UpTimings)[];
    kernelArgs: string[];
  };
  /** Per-boot host-side costs inside createInstance, timed directly. */
  micro?: { kernelLibrariesMs: number[]; cacheEntriesAfter: number };
  hang: { rounds: HangRound[]; stoppedEarly?: boolean };
  scale?: ScalePoint[];
  /** Section "hosts" (BENCH_HOSTS=1): three namespace hosts over SSH (bench/hosts.ts). */
  hosts?: HostsResult;
  /** Hang rounds of earlier runs merged in (BENCH_MERGE=1 keeps them: the issue wants many rounds). */
  hangEarlier?: { startedAt: string; rounds: HangRound[] }[];
}
