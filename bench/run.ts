/**
 * umlfleet benchmarks: `npm run bench` (build, then node dist/bench/run.js).
 * Every measurement is paired with a baseline run in the same process, and
 * the report gives ratios. Results: bench/results/latest.json and
 * docs/benchmarks.md (overwritten). Knobs: see KNOBS below (environment).
 *
 * Everything lives in one fresh folder /tmp/ufb-XXXXXX (unix socket paths must
 * stay < 108 bytes); it is torn down at the end whatever happens: destroyAll on
 * both state folders, then SIGKILL to anything whose command line names it.
 */
import { execFileSync } from "node:child_process";
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { cpus, totalmem } from "node:os";
import { join, resolve } from "node:path";
import { DelayCalibration } from "../src/host/delay-calibration";
import { LocalRuntime } from "../src/host/runtime";
import { kernelFiles, type Bind } from "../src/host/sandbox";
import { bootTrace } from "../src/host/instance/boot-trace";
import type { FleetCfg, FleetResult } from "./fleet-program";
import { KNOBS, type BootSample, type FleetRound, type Results, type ScalePoint } from "./results";
import {
  fleetNic,
  groupMemory,
  guestProcesses,
  killByCmdline,
  killGroup,
  loadavg,
  meminfo,
  sleep,
  spawnWatch,
  stats,
} from "./lib";
import { writeReport } from "./report";
import { benchHosts } from "./hosts";

const REPO = join(__dirname, "..", "..");
const BENCH_SRC = join(REPO, "bench");
const DEBIAN_KERNEL = "/usr/bin/linux.uml";

// BENCH_PULUMI_ENV='{"PULUMI_SKIP_CHECKPOINTS":"true"}': extra environment for every Pulumi operation (experiments).
const SKIP = new Set((process.env.BENCH_SKIP ?? "").split(",").filter(Boolean));
// Section "hosts" needs root and makes namespaces and users: only when asked for.
if (KNOBS.BENCH_HOSTS !== 1) SKIP.add("hosts");

let T_START = performance.now();
const elapsedMin = () => (performance.now() - T_START) / 60_000;
const log = (...a: unknown[]) => console.error(`[bench ${elapsedMin().toFixed(1)}m]`, ...a);

let res: Results;
const newResults = (): Results => ({
  startedAt: new Date().toISOString(),
  knobs: KNOBS,
  machine: {},
  loadavg: { start: loadavg() },
  leanKernel: "",
  errors: [],
  boot: {},
  memory: {},
  fleet: { rounds: [], emptyUpMs: [], kernelArgs: [] },
  hang: { rounds: [] },
  sectionsAt: {},
});

// ---- setup ---------------------------------------------------------------------

// The run's folders: made by setup(), so importing this module does nothing.
let ROOT = "";
let S = ""; // state folder for the direct LocalRuntime benchmarks
let F = ""; // state folder of the Pulumi fleet
let P = ""; // Pulumi file backend
let B = ""; // bare baselines
// Guest RAM of bare guests: a tmpfs, as in the runtime's sandbox (its private /tmp), so the baseline is a fair floor.
let SHM: string | undefined;

function setup(): void {
  T_START = performance.now();
  res = newResults();
  // BENCH_TMP: the parent of the run's folder (default /tmp; keep it short: unix socket paths).
  ROOT = mkdtempSync(join(process.env.BENCH_TMP ?? "/tmp", "ufb-"));
  [S, F, P, B] = ["s", "f", "p", "b"].map((d) => join(ROOT, d)) as [string, string, string, string];
  SHM = existsSync("/dev/shm") ? mkdtempSync("/dev/shm/ufb-") : undefined;
}
const bareEnv = (key: "BARE_TMPDIR" | "BARE_TMPDIR_ROOT", sub: string) =>
  SHM ? { env: { ...process.env, [key]: join(SHM, sub) } } : {};
let rt: LocalRuntime;
let baseImg = "";

function sh(cmd: string, args: string[]): string {
  try {
    return execFileSync(cmd, args, {
      encoding: "utf8",
      timeout: 30_000,
      stdio: ["ignore", "pipe", "pipe"],
    }).trim();
  } catch (e) {
    return `(${cmd} failed: ${String(e).slice(0, 200)})`;
  }
}

function describeMachine(lean: string) {
  const mem = meminfo();
  res.machine = {
    nproc: Number(sh("nproc", [])),
    cpuModel: cpus()[0]?.model ?? "?",
    memTotalGiB: +(totalmem() / 2 ** 30).toFixed(1),
    memAvailableGiB: +((mem.MemAvailable ?? 0) / 2 ** 30).toFixed(1),
    hostKernel: sh("uname", ["-r"]),
    debianUml: sh(DEBIAN_KERNEL, ["--version"]),
    leanUml: sh(lean, ["--version"]),
    leanKernelPath: lean,
    node: process.version,
    pulumi: sh(join(process.env.HOME ?? "/root", ".cache/umlfleet/pulumi-v3.248.0/bin/pulumi"), ["version"]),
    tmpFs: sh("stat", ["-f", "-c", "%T", "/tmp"]),
    bareGuestRamDir: SHM ? `${SHM} (${sh("stat", ["-f", "-c", "%T", SHM])})` : "TMPDIR under /tmp",
    date: new Date().toISOString(),
  };
}

const consoleText = (name: string, r = rt) => {
  try {
    return readFileSync(r.instanceStatus(name).consoleLog, "utf8");
  } catch {
    return "";
  }
};
const uptimeOf = (text: string) => {
  const m = /UMLFLEET-READY ([\d.]+)/.exec(text);
  return m ? Number(m[1]) : undefined;
};

/** Kill a runtime instance's process group hard, then remove it and its overlay. */
async function dropInstance(r: LocalRuntime, name: string, disk = name) {
  try {
    if (r.instances.get(name)) {
      const pid = r.instanceStatus(name).pid;
      killGroup(pid);
      if (pid) for (let i = 0; i < 100 && guestProcesses(pid).length; i++) await sleep(20);
      await r.removeInstance(name, { timeoutMs: 3_000 });
    }
  } catch (e) {
    res.errors.push(`drop ${name}: ${String(e).slice(0, 300)}`);
  }
  try {
    if (r.disks.get(disk)) await r.removeDisk(disk);
  } catch (e) {
    res.errors.push(`drop disk ${disk}: ${String(e).slice(0, 300)}`);
  }
}

// ---- 5. disk per fresh overlay (and the lpj value) ---------------------------------

async function benchDisk() {
  await rt.ensureDisk({ name: "dsk", kind: "overlay", base: "base" });
  const freshBytes = rt.disks.allocatedBytes("dsk");
  res.disk = { freshBytes, freshSamples: [] };
  await rt.createInstance({ name: "dsk", rootDisk: "dsk", kernel: res.leanKernel, memoryMiB: 64 });
  const text = consoleText("dsk");
  // The first boot in a fresh state folder calibrates; the runtime keeps its value for the later boots.
  res.lpj = rt.instances.calibration.lpjFor(res.leanKernel) ?? DelayCalibration.calibratedIn(text);
  res.disk.afterBootRunningBytes = rt.disks.allocatedBytes("dsk");
  const t0 = performance.now();
  await rt.stopInstance("dsk", { timeoutMs: 30_000 });
  res.disk.stopMs = Math.round(performance.now() - t0);
  res.disk.afterPoweroffBytes = rt.disks.allocatedBytes("dsk");
  await rt.removeInstance("dsk", { timeoutMs: 3_000 });
  await rt.removeDisk("dsk");
  log("disk", res.disk, "lpj", res.lpj);
}

// ---- per-boot host work, timed directly -------------------------------------------------

async function benchMicro() {
  // Instances.boot() calls kernelFiles(kernel, this.kernelFileCache) on every boot (src/host/instance/boot.ts).
  const cache = new Map<string, Bind[]>();
  const times: number[] = [];
  for (let i = 0; i < 5; i++) {
    const t0 = performance.now();
    kernelFiles(res.leanKernel, cache);
    times.push(performance.now() - t0);
  }
  res.micro = { kernelLibrariesMs: times, cacheEntriesAfter: cache.size };
  log("micro", res.micro);
}

// ---- 1. boot latency ---------------------------------------------------------------

async function bareBoot(kernel: string, args: string[]): Promise<BootSample & { round: -1 }> {
  const dir = join(B, "boot");
  mkdirSync(dir, { recursive: true });
  const p = spawnWatch(
    "bash",
    [join(BENCH_SRC, "bare-boot.sh"), kernel, baseImg, dir, ...args],
    /^(READY|EXITED|TIMEOUT)/,
    {
      timeoutMs: 90_000,
      ...bareEnv("BARE_TMPDIR", "boot"),
    },
  );
  const first = await p.line;
  const out = await p.done;
  const pid = Number(/^PID (\d+)/m.exec(out.stdout)?.[1] ?? 0);
  const init = /^INIT (\d+)/m.exec(out.stdout);
  killGroup(pid);
  if (pid) for (let i = 0; i < 100 && guestProcesses(pid).length; i++) await sleep(20);
  const m = first ? /^READY (\d+)/.exec(first.line) : null;
  if (!m) return { round: -1, error: `bare: ${first?.line ?? "no result"} ${out.stderr.slice(-300)}` };
  let text = "";
  try {
    text = readFileSync(join(dir, "console.log"), "utf8");
  } catch {
    /* none */
  }
  return {
    round: -1,
    ms: Number(m[1]) / 1e6,
    guestUptimeS: uptimeOf(text),
    ...(init ? { toInitMs: Number(init[1]) / 1e6 } : {}),
  };
}

async function runtimeBoot(
  name: string,
  kernel: string,
  args: string[],
  calibrate = false,
): Promise<BootSample & { round: -1 }> {
  // Read at each boot (src/host/delay-calibration.ts): off for this one boot, then as it was.
  const presetWas = process.env.UMLFLEET_PRESET_LPJ;
  if (calibrate) process.env.UMLFLEET_PRESET_LPJ = "off";
  await rt.ensureDisk({ name, kind: "overlay", base: "base" });
  const freshOverlayBytes = rt.disks.allocatedBytes(name);
  const consoleLog = rt.state.consoleLog(name);
  let toInitMs: number | undefined;
  let watching = true;
  const trace: Record<string, number> = {};
  const t0 = performance.now();
  bootTrace.mark = (instance, step) => {
    if (instance === name && !(step in trace)) trace[step] = Math.round((performance.now() - t0) * 10) / 10;
  };
  const watcher = (async () => {
    while (watching && toInitMs === undefined) {
      try {
        if (readFileSync(consoleLog, "utf8").includes("as init process")) toInitMs = performance.now() - t0;
      } catch {
        /* not there yet */
      }
      await sleep(10);
    }
  })();
  try {
    await rt.createInstance({
      name,
      rootDisk: name,
      kernel,
      memoryMiB: 64,
      ...(args.length ? { kernelArgs: args } : {}),
    });
    const ms = performance.now() - t0;
    watching = false;
    await watcher;
    return {
      round: -1,
      ms,
      guestUptimeS: uptimeOf(consoleText(name)),
      freshOverlayBytes,
      trace,
      ...(toInitMs !== undefined ? { toInitMs } : {}),
    };
  } catch (e) {
    return { round: -1, error: `runtime: ${String(e).slice(0, 400)}`, freshOverlayBytes };
  } finally {
    watching = false;
    bootTrace.mark = undefined;
    if (presetWas === undefined) delete process.env.UMLFLEET_PRESET_LPJ;
    else process.env.UMLFLEET_PRESET_LPJ = presetWas;
    await dropInstance(rt, name);
  }
}

async function benchBoot() {
  // args: kernelArgs both sides are given; bareArgs: what the bare guest gets for what the runtime
  // adds itself (the kept delay-loop value); calibrate: the runtime's kept value is not used.
  const variants = [
    { id: "debian", kernel: DEBIAN_KERNEL, args: [] as string[], bareArgs: [] as string[], calibrate: true },
    { id: "lean", kernel: res.leanKernel, args: [], bareArgs: presetArgs(), calibrate: false },
    { id: "lean-calibrating", kernel: res.leanKernel, args: [], bareArgs: [], calibrate: true },
  ].filter((v) => KNOBS.BENCH_BOOT_VARIANTS.includes(v.id));
  for (const v of variants)
    res.boot[v.id] = { bare: [], runtime: [], args: v.args, bareArgs: v.bareArgs, kernel: v.kernel };
  for (let r = 0; r < KNOBS.BENCH_BOOT_ROUNDS; r++) {
    for (const v of variants) {
      const slot = res.boot[v.id]!;
      // Alternate which side goes first, so drift in background load hits both alike.
      const order = r % 2 ? (["runtime", "bare"] as const) : (["bare", "runtime"] as const);
      for (const side of order) {
        const s =
          side === "bare"
            ? await bareBoot(v.kernel, [...v.bareArgs, ...v.args])
            : await runtimeBoot(`bt-${v.id}-${r}`, v.kernel, v.args, v.calibrate);
        slot[side].push({ ...s, round: r });
        if (s.freshOverlayBytes !== undefined) res.disk?.freshSamples.push(s.freshOverlayBytes);
      }
    }
    log(`boot round ${r + 1}/${KNOBS.BENCH_BOOT_ROUNDS}`, loadavg());
  }
  res.bootStats = {};
  for (const [id, b] of Object.entries(res.boot)) {
    const ok = (xs: BootSample[]) => xs.filter((x) => x.ms !== undefined).map((x) => x.ms!);
    const up = (xs: BootSample[]) =>
      xs.filter((x) => x.guestUptimeS !== undefined).map((x) => x.guestUptimeS! * 1000);
    res.bootStats[id] = {
      bare: stats(ok(b.bare)),
      runtime: stats(ok(b.runtime)),
      bareUptime: stats(up(b.bare)),
      runtimeUptime: stats(up(b.runtime)),
      bareInit: stats(b.bare.flatMap((x) => (x.toInitMs !== undefined ? [x.toInitMs] : []))),
      runtimeInit: stats(b.runtime.flatMap((x) => (x.toInitMs !== undefined ? [x.toInitMs] : []))),
    };
  }
  log("boot stats", JSON.stringify(res.bootStats));
}

// ---- 4b. memory per idle guest, both kernels, a few guests via LocalRuntime ----------

async function benchMemory() {
  for (const [id, kernel] of [
    ["lean", res.leanKernel],
    ["debian", DEBIAN_KERNEL],
  ] as const) {
    const names = Array.from({ length: KNOBS.BENCH_MEM_GUESTS }, (_, i) => `mem-${id}-${i}`);
    try {
      for (const n of names) await rt.ensureDisk({ name: n, kind: "overlay", base: "base" });
      await Promise.all(names.map((n) => rt.createInstance({ name: n, rootDisk: n, kernel, memoryMiB: 64 })));
      await sleep(KNOBS.BENCH_IDLE_S * 1000);
      res.memory[`runtime-${id}`] = names.map((n) => ({
        name: n,
        ...groupMemory(rt.instanceStatus(n).pid!),
      }));
    } catch (e) {
      res.errors.push(`memory ${id}: ${String(e).slice(0, 400)}`);
    } finally {
      for (const n of names) await dropInstance(rt, n);
    }
  }
  log(
    "memory",
    Object.fromEntries(Object.entries(res.memory).map(([k, v]) => [k, stats(v.map((g) => g.pss / 2 ** 20))])),
  );
}

// ---- 2-4. the Pulumi fleet vs a shell script ------------------------------------------

async function pulumiOp(
  cfg: Partial<FleetCfg> & Pick<FleetCfg, "action">,
): Promise<FleetResult & { wallMs: number }> {
  const full: FleetCfg = {
    stackName: "fleet",
    stateDir: F,
    backendDir: P,
    kernelPath: res.leanKernel,
    size: KNOBS.BENCH_FLEET_SIZE,
    networks: KNOBS.BENCH_FLEET_NETWORKS,
    memoryMiB: 64,
    kernelArgs: res.fleet.kernelArgs,
    ...(process.env.BENCH_PULUMI_ENV
      ? { extraEnv: JSON.parse(process.env.BENCH_PULUMI_ENV) as Record<string, string> }
      : {}),
    ...cfg,
  };
  const t0 = performance.now();
  const p = spawnWatch(
    process.execPath,
    [join(__dirname, "fleet-program.js"), JSON.stringify(full)],
    /^@@RESULT /,
    {
      timeoutMs: 15 * 60_000,
    },
  );
  const line = await p.line;
  const out = await p.done;
  const wallMs = Math.round(performance.now() - t0);
  if (!line)
    return { ms: 0, setupMs: 0, wallMs, error: `no result (exit ${out.code}): ${out.stderr.slice(-1500)}` };
  const r = JSON.parse(line.line.slice("@@RESULT ".length)) as FleetResult;
  if (r.error) res.errors.push(`pulumi ${full.action} ${full.stackName}: ${r.error.slice(-1500)}`);
  return { ...r, wallMs };
}

const prepCfg = { action: "up" as const, size: 0, networks: 0 };

/** What the runtime's guests get from a kept calibration (BENCH_PRESET_LPJ=1): the shell baselines' share of it. */
const presetArgs = (): string[] => (KNOBS.BENCH_PRESET_LPJ && res.lpj ? [`lpj=${res.lpj}`] : []);

/** A state folder in a host's steady state: it holds the lean kernel's delay-loop value, as after its first boot. */
function seedCalibration(stateDir: string): void {
  if (KNOBS.BENCH_PRESET_LPJ && res.lpj) new DelayCalibration(stateDir).learn(res.leanKernel, res.lpj);
}

async function bareFleet(
  round: number | string,
  measureMemory: boolean,
  size = KNOBS.BENCH_FLEET_SIZE,
  networks = KNOBS.BENCH_FLEET_NETWORKS,
): Promise<NonNullable<FleetRound["bare"]>> {
  const dir = join(B, `fleet${round}`);
  rmSync(dir, { recursive: true, force: true });
  const p = spawnWatch(
    "bash",
    [
      join(BENCH_SRC, "bare-fleet.sh"),
      res.leanKernel,
      baseImg,
      dir,
      String(size),
      String(networks),
      ...presetArgs(),
      ...res.fleet.kernelArgs,
    ],
    /^(READY|TIMEOUT)/,
    {
      timeoutMs: 10 * 60_000,
      ...(SHM
        ? { env: { ...process.env, BARE_TMPDIR_ROOT: join(SHM, `fleet${round}`), BARE_TIMEOUT_S: "400" } }
        : {}),
    },
  );
  const line = await p.line;
  await p.done;
  const m = line ? /^(READY|TIMEOUT) (\d+) (\d+)/.exec(line.line) : null;
  const out: NonNullable<FleetRound["bare"]> = {
    ready: m ? Number(m[3]) : 0,
    ...(m && m[1] === "READY" ? { ms: Number(m[2]) / 1e6 } : { error: line?.line ?? "no result" }),
  };
  const pids = existsSync(join(dir, "pids"))
    ? readFileSync(join(dir, "pids"), "utf8").split("\n").filter(Boolean).map(Number)
    : [];
  if (measureMemory && out.ms !== undefined) {
    await sleep(KNOBS.BENCH_IDLE_S * 1000);
    out.memory = pids.map((pid, i) => ({ name: `bare-g${i}`, ...groupMemory(pid) }));
  }
  for (const pid of pids) killGroup(pid);
  for (const f of readdirSync(dir).filter((f) => /^sw\d+\.pid$/.test(f))) {
    killGroup(Number(readFileSync(join(dir, f), "utf8").trim())); // vde_switch -d is a session leader
  }
  killByCmdline(dir);
  await sleep(300);
  rmSync(dir, { recursive: true, force: true });
  return out;
}

/** The fleet as one InstanceGroup applied by the runtime directly (no Pulumi): from the call to its return. */
async function runtimeFleet(
  size = KNOBS.BENCH_FLEET_SIZE,
  networks = KNOBS.BENCH_FLEET_NETWORKS,
): Promise<NonNullable<FleetRound["runtime"]>> {
  const nets = Array.from({ length: networks }, (_, n) => `rnet${n}`);
  for (const n of nets) await rt.ensureNetwork({ name: n });
  const members = Object.fromEntries(
    Array.from({ length: size }, (_, i) => {
      const { network, ipv4 } = fleetNic(i, nets.length);
      return [
        `r${i}`,
        {
          memoryMiB: 64,
          bootTimeoutMs: BOOT_TIMEOUT_MS,
          nics: [{ network: nets[network]!, ipv4 }],
          ...(res.fleet.kernelArgs.length ? { kernelArgs: res.fleet.kernelArgs } : {}),
        },
      ];
    }),
  );
  const spec = { name: "rfleet", base: "base", kernel: res.leanKernel, members };
  const out: NonNullable<FleetRound["runtime"]> = { ready: 0 };
  const t0 = performance.now();
  try {
    await rt.groups.apply(spec);
    out.ms = performance.now() - t0;
  } catch (e) {
    out.error = String(e).slice(0, 600);
    res.errors.push(`runtime fleet: ${out.error}`);
  }
  out.ready = Object.keys(members).filter(
    (m) => rt.instances.get(m) && rt.instanceStatus(m).state === "running",
  ).length;
  for (const m of Object.keys(members)) await dropInstance(rt, m, `${m}-root`);
  for (const n of nets) await rt.removeNetwork(n).catch((e) => res.errors.push(`drop ${n}: ${String(e)}`));
  return out;
}

async function pulumiFleet(
  parallel: number | undefined,
  measureMemory: boolean,
  noop: boolean,
  shape: "group" | "resources" = "group",
  sized: Partial<FleetCfg> = {},
) {
  const fr = new LocalRuntime({ stateDir: F });
  const shmemBefore = meminfo().Shmem ?? 0;
  const up = await pulumiOp({ action: "up", shape, ...(parallel ? { parallel } : {}), ...sized });
  const names = fr.instances.list();
  const ready = names.filter((n) => fr.instanceStatus(n).state === "running").length;
  const out: NonNullable<FleetRound["pulumi"]> = {
    ready,
    upWallMs: up.wallMs,
    upSetupMs: up.setupMs,
    upPhases: up.phases,
    ...(up.timings ? { upTimings: up.timings } : {}),
    ...(up.error ? { error: up.error.slice(-600) } : { upMs: up.ms }),
  };
  if (measureMemory && !up.error) {
    await sleep(KNOBS.BENCH_IDLE_S * 1000);
    out.memory = names.map((n) => ({ name: n, ...groupMemory(fr.instanceStatus(n).pid!) }));
    out.shmemDeltaBytes = (meminfo().Shmem ?? 0) - shmemBefore;
  }
  if (noop && !up.error) {
    const n = await pulumiOp({ action: "up", shape, ...(parallel ? { parallel } : {}), ...sized });
    if (!n.error) out.noopUpMs = n.ms;
    out.noopSummary = n.summary;
    // The same no-op up without the Automation API's read-back commands (automation/quick-up.ts).
    const q = await pulumiOp({
      action: "up",
      quick: true,
      shape,
      ...(parallel ? { parallel } : {}),
      ...sized,
    });
    if (!q.error) out.noopQuick = { ms: q.ms, ...(q.timings ?? {}) };
    const pv = await pulumiOp({ action: "preview", shape, ...(parallel ? { parallel } : {}), ...sized });
    if (!pv.error) out.previewMs = pv.ms;
  }
  const down = await pulumiOp({ ...prepCfg, ...(parallel ? { parallel } : {}) });
  if (!down.error) out.teardownMs = down.ms;
  // Whatever Pulumi left running (a failed round): kill it, so the next round starts clean.
  for (const n of fr.instances.list()) await dropInstance(fr, n, `${n}-root`);
  return out;
}

async function benchFleet() {
  res.fleet.kernelArgs = KNOBS.BENCH_FLEET_LPJ && res.lpj ? [`lpj=${res.lpj}`] : [];
  const prep = await pulumiOp(prepCfg);
  if (prep.error) throw new Error(`fleet prep failed: ${prep.error}`);
  seedCalibration(F);
  res.fleet.prepMs = prep.ms;
  log("fleet prep (kernel + base)", prep.ms, "ms");
  const par = KNOBS.BENCH_FLEET_PARALLEL || undefined;
  for (let r = 0; r < KNOBS.BENCH_FLEET_ROUNDS; r++) {
    const round: FleetRound = { round: r, parallel: par ?? "default", shape: "group" };
    res.fleet.rounds.push(round);
    const mem = r === 0;
    if (r % 2 === 0) {
      round.bare = await bareFleet(r, mem);
      round.runtime = await runtimeFleet();
      round.pulumi = await pulumiFleet(par, mem, true);
    } else {
      round.pulumi = await pulumiFleet(par, mem, true);
      round.runtime = await runtimeFleet();
      round.bare = await bareFleet(r, mem);
    }
    log(
      `fleet round ${r + 1}`,
      JSON.stringify({
        ...round,
        bare: { ...round.bare, memory: undefined },
        pulumi: { ...round.pulumi, memory: undefined },
      }),
      loadavg(),
    );
  }
  for (let r = 0; r < KNOBS.BENCH_FLEET_DEFAULT_PARALLEL_ROUNDS; r++) {
    const round: FleetRound = { round: KNOBS.BENCH_FLEET_ROUNDS + r, parallel: "default", shape: "group" };
    res.fleet.rounds.push(round);
    round.bare = await bareFleet(round.round, false);
    round.pulumi = await pulumiFleet(undefined, false, false);
    log(`fleet default-parallel round ${r + 1}`, JSON.stringify(round), loadavg());
  }
  for (let r = 0; r < KNOBS.BENCH_FLEET_RESOURCE_ROUNDS; r++) {
    const round: FleetRound = {
      round: res.fleet.rounds.length,
      parallel: par ?? "default",
      shape: "resources",
    };
    res.fleet.rounds.push(round);
    round.bare = await bareFleet(round.round, false);
    round.pulumi = await pulumiFleet(par, false, true, "resources");
    log(`fleet per-resource round ${r + 1}`, JSON.stringify(round), loadavg());
  }
  for (let r = 0; r < KNOBS.BENCH_EMPTY_ROUNDS; r++) {
    const e = await pulumiOp({ action: "up", stackName: "empty", empty: true });
    if (!e.error) res.fleet.emptyUpMs.push(e.ms);
    const q = await pulumiOp({ action: "up", stackName: "empty", empty: true, quick: true });
    if (!q.error) (res.fleet.emptyQuickUp ??= []).push({ ms: q.ms, ...(q.timings ?? {}) });
  }
  log("empty-stack up ms", res.fleet.emptyUpMs);
  await pulumiOp({ action: "destroy" });
}

// ---- scale curve: 8, 32, 128, 256 guests ------------------------------------------------

/** Generous: at 256 guests on 2 shared cores the last guest of a wave may wait minutes for CPU. */
const BOOT_TIMEOUT_MS = 300_000;

async function benchScale() {
  res.fleet.kernelArgs = KNOBS.BENCH_FLEET_LPJ && res.lpj ? [`lpj=${res.lpj}`] : [];
  const prep = await pulumiOp(prepCfg);
  if (prep.error) throw new Error(`scale prep failed: ${prep.error}`);
  seedCalibration(F);
  res.scale = [];
  const networks = KNOBS.BENCH_SCALE_NETWORKS;
  for (const [i, size] of KNOBS.BENCH_SIZES.entries()) {
    const point: ScalePoint = { size, networks, loadavg: loadavg() };
    res.scale.push(point);
    // quick: the up without the Automation API's read-back commands (automation/quick-up.ts); the no-op up is timed both ways.
    const sized = { size, networks, bootTimeoutMs: BOOT_TIMEOUT_MS, quick: KNOBS.BENCH_SCALE_QUICK === 1 };
    // Alternate the order, so drift in the machine's other load hits all three alike.
    const sides = [
      async () => (point.bare = await bareFleet(`s${size}`, true, size, networks)),
      async () => (point.runtime = await runtimeFleet(size, networks)),
      async () =>
        (point.pulumi = await pulumiFleet(
          KNOBS.BENCH_FLEET_PARALLEL || undefined,
          true,
          true,
          "group",
          sized,
        )),
    ];
    for (const side of i % 2 ? sides.reverse() : sides) await side();
    log(
      `scale ${size}`,
      JSON.stringify({
        bare: { ...point.bare, memory: undefined },
        runtime: point.runtime,
        pulumi: { ...point.pulumi, memory: undefined },
      }),
      loadavg(),
    );
  }
  await pulumiOp({ action: "destroy" });
}

// ---- hang check ----------------------------------------------------------------------

async function benchHang() {
  const size = KNOBS.BENCH_HANG_SIZE;
  for (let r = 0; r < KNOBS.BENCH_HANG_ROUNDS; r++) {
    if (r > 0 && elapsedMin() > KNOBS.BENCH_BUDGET_MIN) {
      res.hang.stoppedEarly = true;
      log("hang check: time budget reached, stopping after", r, "rounds");
      break;
    }
    const names = Array.from({ length: size }, (_, i) => `h${i}`);
    for (const n of names) await rt.ensureDisk({ name: n, kind: "overlay", base: "base" });
    const t0 = performance.now();
    const settled = await Promise.allSettled(
      names.map((n) =>
        rt.createInstance(
          { name: n, rootDisk: n, kernel: res.leanKernel, memoryMiB: 64 },
          { timeoutMs: KNOBS.BENCH_HANG_TIMEOUT_MS },
        ),
      ),
    );
    const ms = Math.round(performance.now() - t0);
    const failures = settled.flatMap((s, i) =>
      s.status === "rejected" ? [`${names[i]}: ${shorten(String(s.reason))}`] : [],
    );
    res.hang.rounds.push({ round: r, ready: size - failures.length, size, ms, failures });
    log(`hang round ${r + 1}: ${size - failures.length}/${size} ready in ${ms} ms`, loadavg());
    for (const n of names) await dropInstance(rt, n);
  }
}

// ---- main ----------------------------------------------------------------------------

async function section(name: string, fn: () => Promise<void>) {
  if (SKIP.has(name)) {
    log(`skip ${name}`);
    return;
  }
  res.loadavg[name] = loadavg();
  log(`== ${name} (load ${res.loadavg[name]})`);
  res.sectionsAt[name] = new Date().toISOString();
  try {
    await fn();
  } catch (e) {
    res.errors.push(`${name}: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`.slice(0, 2000));
    log(`${name} failed:`, e);
  }
}

/** Which Results fields each section owns (for BENCH_MERGE=1). */
const OWNED: Record<string, (keyof Results)[]> = {
  disk: ["disk", "lpj"],
  boot: ["boot", "bootStats"],
  fleet: ["fleet"],
  memory: ["memory"],
  hang: ["hang"],
  micro: ["micro"],
  scale: ["scale"],
  hosts: ["hosts"],
};

function save() {
  mkdirSync(join(BENCH_SRC, "results"), { recursive: true });
  const latest = process.env.BENCH_JSON
    ? resolve(process.env.BENCH_JSON)
    : join(BENCH_SRC, "results", "latest.json");
  // BENCH_MERGE=1: keep the sections this run skipped from the previous latest.json.
  if (process.env.BENCH_MERGE === "1" && existsSync(latest)) {
    const prev = JSON.parse(readFileSync(latest, "utf8")) as Results;
    const r = res as unknown as Record<string, unknown>;
    const p = prev as unknown as Record<string, unknown>;
    for (const [sec, keys] of Object.entries(OWNED)) {
      if (!SKIP.has(sec)) continue;
      for (const key of keys) if (p[key] !== undefined) r[key] = p[key];
      if (prev.sectionsAt?.[sec]) res.sectionsAt[sec] = prev.sectionsAt[sec];
      else res.sectionsAt[sec] = prev.startedAt;
      if (prev.loadavg?.[sec]) res.loadavg[sec] = prev.loadavg[sec];
    }
    if (!SKIP.has("hang") && prev.hang?.rounds?.length) {
      res.hangEarlier = [
        ...(prev.hangEarlier ?? []),
        { startedAt: prev.sectionsAt?.hang ?? prev.startedAt, rounds: prev.hang.rounds },
      ];
    } else if (prev.hangEarlier) res.hangEarlier = prev.hangEarlier;
    res.errors.push(...(prev.errors ?? []).filter((e) => [...SKIP].some((s) => e.startsWith(s))));
    // The kept sections were measured with the earlier run's knobs: keep those, but for the ones set now.
    if (prev.knobs) {
      const set = Object.fromEntries(
        Object.entries(KNOBS).filter(([key]) => process.env[key] !== undefined || !(key in prev.knobs)),
      );
      res.knobs = { ...prev.knobs, ...set };
    }
    res.mergedFrom = prev.startedAt;
  }
  writeFileSync(latest, JSON.stringify(res, null, 2) + "\n");
  writeReport(res, resolve(REPO, process.env.BENCH_DOC ?? "docs/benchmarks.md"), join(BENCH_SRC, "NOTES.md"));
}

async function main() {
  log(`root ${ROOT}`);
  const lean = execFileSync("bash", [join(REPO, "scripts", "build-kernel.sh")], {
    encoding: "utf8",
    stdio: ["ignore", "pipe", "inherit"],
  })
    .trim()
    .split("\n")
    .pop()!;
  res.leanKernel = lean;
  // Every guest calibrates its delay loop, in every process this run starts (the Pulumi programs' providers too).
  if (!KNOBS.BENCH_PRESET_LPJ) process.env.UMLFLEET_PRESET_LPJ = "off";
  describeMachine(lean);
  rt = new LocalRuntime({ stateDir: S });
  baseImg = (await rt.ensureBase({ name: "base", source: { kind: "busybox", sizeMiB: 32 } })).imagePath;
  await section("disk", benchDisk);
  await section("micro", benchMicro);
  await section("boot", benchBoot);
  await section("fleet", benchFleet);
  await section("scale", benchScale);
  await section("memory", benchMemory);
  await section("hang", benchHang);
  await section("hosts", async () => {
    res.hosts = await benchHosts({
      stateDir: join(ROOT, "h"),
      backendDir: join(ROOT, "hp"),
      perHost: KNOBS.BENCH_HOSTS_PER_HOST,
      calls: KNOBS.BENCH_HOSTS_CALLS,
      pings: KNOBS.BENCH_HOSTS_PINGS,
      tcpMiB: KNOBS.BENCH_HOSTS_TCP_MIB,
      upRounds: KNOBS.BENCH_HOSTS_UP_ROUNDS,
      log,
    });
    res.errors.push(...res.hosts.errors);
  });
}

async function cleanup() {
  for (const dir of [S, F, join(ROOT, "h")]) {
    try {
      if (existsSync(dir)) await new LocalRuntime({ stateDir: dir }).destroyAll({ timeoutMs: 3_000 });
    } catch (e) {
      res.errors.push(`destroyAll ${dir}: ${String(e).slice(0, 300)}`);
    }
  }
  const killed = killByCmdline(ROOT);
  if (killed) log(`killed ${killed} leftover processes naming ${ROOT}`);
  await sleep(300);
  killByCmdline(ROOT);
  rmSync(ROOT, { recursive: true, force: true });
  if (SHM) rmSync(SHM, { recursive: true, force: true });
}

/** The whole run: set-up, every section, then clean-up and the report, whatever happens. */
export async function runBenchmarks(): Promise<void> {
  setup();
  let interrupted = false;
  for (const sig of ["SIGINT", "SIGTERM"] as const) {
    process.on(sig, () => {
      if (interrupted) return;
      interrupted = true;
      log(`${sig}: cleaning up`);
      void cleanup().finally(() => process.exit(130));
    });
  }
  try {
    await main();
  } catch (e) {
    res.errors.push(`main: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
    log("failed:", e);
  } finally {
    await cleanup();
    res.finishedAt = new Date().toISOString();
    res.durationMin = +elapsedMin().toFixed(1);
    res.loadavg.end = loadavg();
    save();
    log(`done in ${res.durationMin} min; errors: ${res.errors.length}`);
    process.exitCode = res.errors.length ? 1 : 0;
  }
}

if (require.main === module) void runBenchmarks();

/** Head and tail of a long error message (mkfifo errors list six paths before the reason). */
function shorten(s: string): string {
  return s.length <= 600 ? s : `${s.slice(0, 150)} … ${s.slice(-450)}`;
}
