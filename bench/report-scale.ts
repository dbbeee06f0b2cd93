/**
 * The sections of docs/benchmarks.md for issue 15: one guest to ready with
 * where its host time goes (boot traces), and the scale curve (8 to 256
 * guests by shell script, runtime and `pulumi up`). bench/report.ts calls them.
 */
import { fmtMiB, fmtS, MiB, stats } from "./lib";
import type { MemGuest, Results, ScalePoint } from "./results";

const ratio = (a?: number, b?: number) =>
  a === undefined || b === undefined || b === 0 ? "n/a" : `${(a / b).toFixed(2)}x`;
const pf = (ok: boolean | undefined) => (ok === undefined ? "not measured" : ok ? "**pass**" : "**FAIL**");

/** The host-side steps of a runtime boot, in order (src/host/instance/boot-trace.ts). */
export const BOOT_STEPS: [string, string][] = [
  ["validated", "spec validated (createInstance)"],
  ["boot", "lock, references checked, FIFOs made, record written"],
  ["resolved", "disks, NICs and shares resolved again for the boot"],
  ["planned", "vm/ folder, disk links, sandbox and kernel argv planned"],
  ["fifos", "FIFOs checked, console log rotated"],
  ["launched", "bash spawned (it execs bwrap; the console relay starts beside it)"],
  ["recorded", "record with the process written (fsync in the thread pool)"],
  ["sandbox", "bwrap's report of the sandbox's pid 1 read"],
  ["init", "kernel's `Run /umlfleet/init` seen on the console"],
  ["outcome:ready", "`UMLFLEET-READY` seen on the console"],
  ["complete", "boot recorded complete"],
];

const leanTraces = (res: Results) =>
  (res.boot.lean?.runtime ?? []).flatMap((s) => (s.trace && s.ms !== undefined ? [s.trace] : []));

/** How the fleets' guests got their delay-loop value (BENCH_PRESET_LPJ). */
export function lpjWords(res: Results): string {
  return res.knobs.BENCH_PRESET_LPJ && res.lpj
    ? `the runtime's guests with the delay-loop value their state folder kept (\`lpj=${res.lpj}\`, src/host/delay-calibration.ts), the shell's given the same word`
    : "every guest calibrating its delay loop (no `lpj=`)";
}

export function readyTargetRows(res: Results): string[] {
  const s = res.bootStats?.lean;
  const rt = s?.runtime;
  const bare = s?.bare;
  return [
    `| lean kernel, one guest to ready (\`UMLFLEET-READY\`) via \`LocalRuntime.createInstance\` ≤ 0.2 s (median) | ${fmtS(rt?.median)} (p90 ${fmtS(rt?.p90)}, ${rt?.n ?? 0} boots); bare ${fmtS(bare?.median)} | ${pf(rt ? rt.median <= 200 : undefined)} |`,
    `| … ≤ 1.1x the bare shell-started guest with the same init (median) | ${ratio(rt?.median, bare?.median)} | ${pf(rt && bare ? rt.median <= 1.1 * bare.median : undefined)} |`,
  ];
}

/** Median time at which each traced step was reached, and the median gap from the step before. */
export function readySection(res: Results): string[] {
  const traces = leanTraces(res);
  if (!traces.length) return [];
  const s = res.bootStats?.lean;
  const L = [
    "### Where one guest's time to ready goes (lean kernel, runtime)",
    "",
    `Host-side steps of \`createInstance\` (timestamps from \`bootTrace\`, src/host/instance/boot-trace.ts, set only by the benchmark), medians over ${traces.length} boots; "gap" is the median of each boot's time since the step before. ` +
      `In-guest uptime at the marker (kernel start to the end of umlfleet's init, by the guest's clock): runtime ${fmtS(s?.runtimeUptime?.median)}, bare ${fmtS(s?.bareUptime?.median)}; ` +
      `bare guest to ready ${fmtS(s?.bare?.median)} (of which to \`/init\` ${fmtS(s?.bareInit?.median)}).`,
    "",
    "| step | reached at (median) | gap (median) |",
    "|---|---|---|",
  ];
  let prev: string | undefined;
  for (const [step, what] of BOOT_STEPS) {
    const at = stats(traces.flatMap((t) => (t[step] !== undefined ? [t[step]] : [])));
    const gap = stats(
      traces.flatMap((t) =>
        t[step] !== undefined ? [t[step] - (prev !== undefined ? (t[prev] ?? 0) : 0)] : [],
      ),
    );
    if (at) L.push(`| ${what} | ${at.median.toFixed(1)} ms | ${gap ? `${gap.median.toFixed(1)} ms` : ""} |`);
    prev = step;
  }
  L.push("");
  return L;
}

const perGuestMs = (ms: number | undefined, size: number) => (ms === undefined ? undefined : ms / size);
const at = (res: Results, size: number) => res.scale?.find((p) => p.size === size);
const maxPss = (g?: MemGuest[]) => (g?.length ? Math.max(...g.map((x) => x.pss)) : undefined);
const medPss = (g?: MemGuest[]) => (g?.length ? stats(g.map((x) => x.pss))!.median : undefined);
const allReady = (p?: ScalePoint) =>
  p?.pulumi ? p.pulumi.ready === p.size && p.pulumi.upMs !== undefined : undefined;

export function scaleTargetRows(res: Results): string[] {
  if (!res.scale?.length) return [];
  const p32 = at(res, 32);
  const top = [...res.scale].sort((a, b) => b.size - a.size)[0]!;
  const growth = (p?: ScalePoint) =>
    p && p32 && p.pulumi?.upMs !== undefined && p32.pulumi?.upMs !== undefined
      ? perGuestMs(p.pulumi.upMs, p.size)! / perGuestMs(p32.pulumi.upMs, 32)!
      : undefined;
  const g = growth(top);
  const mem = maxPss(top.pulumi?.memory);
  return [
    `| 32-guest fleet ready via \`pulumi up\` ≤ 7 s (scale curve) | ${fmtS(p32?.pulumi?.upMs)} | ${pf(p32?.pulumi?.upMs !== undefined ? p32.pulumi.upMs <= 7_000 && allReady(p32) : undefined)} |`,
    `| 32 guests through the runtime (no Pulumi) within 1.1x of the shell script (scale curve) | ${ratio(p32?.runtime?.ms, p32?.bare?.ms)} | ${pf(p32?.runtime?.ms !== undefined && p32.bare?.ms !== undefined ? p32.runtime.ms <= 1.1 * p32.bare.ms : undefined)} |`,
    `| no-op \`pulumi up\` of the 32-guest stack ≤ 3 s (scale curve), \`stack.up()\` | ${fmtS(p32?.pulumi?.noopUpMs)} | ${pf(p32?.pulumi?.noopUpMs !== undefined ? p32.pulumi.noopUpMs <= 3_000 : undefined)} |`,
    `| … the same no-op up through \`quickUp\` (automation/quick-up.ts: no read-back commands) | ${fmtS(p32?.pulumi?.noopQuick?.ms)} | ${pf(p32?.pulumi?.noopQuick ? p32.pulumi.noopQuick.ms <= 3_000 : undefined)} |`,
    `| ${top.size} guests via \`pulumi up\`: every one ready | ${top.pulumi?.ready ?? 0}/${top.size}${top.pulumi?.error ? ` (${top.pulumi.error.slice(0, 120)})` : ""} | ${pf(allReady(top))} |`,
    `| … per-guest time at ${top.size} ≤ 1.3x the per-guest time at 32 (\`pulumi up\`) | ${g !== undefined ? `${g.toFixed(2)}x` : "n/a"} | ${pf(g !== undefined ? g <= 1.3 : undefined)} |`,
    `| … host memory per idle guest at ${top.size} ≤ guest memory + 8 MiB (72 MiB, every guest) | max ${fmtMiB(mem)}, median ${fmtMiB(medPss(top.pulumi?.memory))} | ${pf(mem !== undefined ? mem <= 72 * MiB : undefined)} |`,
  ];
}

export function scaleSection(res: Results): string[] {
  if (!res.scale?.length) return [];
  const nproc = Number(res.machine.nproc) || 1;
  const gcs = (ms: number | undefined, size: number) =>
    ms ? (size / (ms / 1000) / nproc).toFixed(2) : "n/a";
  const base = at(res, 32) ?? res.scale[0]!;
  const readyMs = (p: ScalePoint) => {
    const ph = Object.values(p.pulumi?.upPhases ?? {});
    return ph.length ? Math.max(...ph.map((x) => x.lastDoneMs)) : undefined;
  };
  const L = [
    "## Scale curve: fleet size on one host",
    "",
    `One fleet per size (guest i on network i mod ${base.networks}, 64 MiB, one NIC with an IPv4, lean kernel; ${lpjWords(res)}), each size by the three ways in turn (order alternating by size): ` +
      '"shell" (`bench/bare-fleet.sh`, every guest started at once), "runtime" (`LocalRuntime.groups.apply` of one `InstanceGroup` in the benchmark process), ' +
      '"pulumi up" (the same group, from the call to its return: through `quickUp` (automation/quick-up.ts) when `BENCH_SCALE_QUICK=1`, else `stack.up()`; "all ready" is the end of the group\'s create step). ' +
      `Per-guest time is time to all ready divided by the size; growth is relative to the same column at ${base.size}. ` +
      "Memory: Pss per guest (every address space of the guest's processes once, `/proc/<pid>/smaps_rollup`) after the fleet was idle " +
      `${res.knobs.BENCH_IDLE_S} s. Sizes run: \`BENCH_SIZES=${res.knobs.BENCH_SIZES.join(",")}\`.`,
    "",
    "| guests | shell: all ready | runtime (ratio to shell) | pulumi up: returned (ratio) | pulumi: all ready | ready (pulumi / runtime / shell) | guests/core/s shell / runtime / pulumi | per-guest ms shell / runtime / pulumi (growth) | Pss per idle guest, pulumi: median (max) | shell: median (max) | no-op up: `stack.up()` / `quickUp` | preview |",
    "|---|---|---|---|---|---|---|---|---|---|---|---|",
  ];
  for (const p of res.scale) {
    const pg = (ms: number | undefined, b: number | undefined) => {
      const x = perGuestMs(ms, p.size);
      const y = perGuestMs(b, base.size);
      return x === undefined ? "n/a" : `${x.toFixed(0)}${y ? ` (${(x / y).toFixed(2)}x)` : ""}`;
    };
    const up = p.pulumi?.upMs;
    L.push(
      `| ${p.size} | ${p.bare?.ms !== undefined ? fmtS(p.bare.ms) : `failed: ${p.bare?.error ?? "?"}`} | ${p.runtime?.ms !== undefined ? `${fmtS(p.runtime.ms)} (${ratio(p.runtime.ms, p.bare?.ms)})` : `failed: ${(p.runtime?.error ?? "?").slice(0, 160)}`} | ${up !== undefined ? `${fmtS(up)} (${ratio(up, p.bare?.ms)})` : `failed: ${(p.pulumi?.error ?? "?").slice(0, 160)}`} | ${fmtS(readyMs(p))} | ${p.pulumi?.ready ?? 0} / ${p.runtime?.ready ?? 0} / ${p.bare?.ready ?? 0} of ${p.size} | ${gcs(p.bare?.ms, p.size)} / ${gcs(p.runtime?.ms, p.size)} / ${gcs(up, p.size)} | ${pg(p.bare?.ms, base.bare?.ms)} / ${pg(p.runtime?.ms, base.runtime?.ms)} / ${pg(up, base.pulumi?.upMs)} | ${fmtMiB(medPss(p.pulumi?.memory))} (${fmtMiB(maxPss(p.pulumi?.memory))}) | ${fmtMiB(medPss(p.bare?.memory))} (${fmtMiB(maxPss(p.bare?.memory))}) | ${fmtS(p.pulumi?.noopUpMs)} / ${fmtS(p.pulumi?.noopQuick?.ms)} | ${fmtS(p.pulumi?.previewMs)} |`,
    );
  }
  L.push("");
  L.push(...upTimeSection(res));
  return L;
}

/** Where each size's first `up` spent its time: before the first step, the steps, after the last. */
function upTimeSection(res: Results): string[] {
  const rows = (res.scale ?? []).filter((p) => p.pulumi?.upMs !== undefined && p.pulumi.upPhases);
  if (!rows.length) return [];
  const L = [
    "### Where `pulumi up`'s time goes",
    "",
    "Engine events by time of receipt in the program's process, from the call. Before the first step: the CLI starts, loads the stack, " +
      "starts the language host that runs the program and registers its resources, and starts the dynamic-provider plugin " +
      "(node loading `@pulumi/pulumi`, which is most of it, then umlfleet's provider). After the last step: the engine's summary, " +
      "the checkpoint, plugin shutdown and the CLI's exit; then `stack.up()` runs `stack output` and `stack history` " +
      "(three more CLI runs), which `quickUp` does not. No-op: the second up, with nothing to change.",
    "",
    "| guests | up via | first step started | last step done (all ready) | engine summary | CLI exited | returned | after the last step | no-op up: `stack.up()` / `quickUp` (its prelude, summary, CLI exit) |",
    "|---|---|---|---|---|---|---|---|---|",
  ];
  for (const p of rows) {
    const ph = Object.values(p.pulumi!.upPhases!);
    const first = Math.min(...ph.map((x) => x.firstStartMs));
    const last = Math.max(...ph.map((x) => x.lastDoneMs));
    const t = p.pulumi!.upTimings;
    const q = p.pulumi!.noopQuick;
    L.push(
      `| ${p.size} | ${t ? "`quickUp`" : "`stack.up()`"} | ${fmtS(first)} | ${fmtS(last)} | ${fmtS(t?.summaryMs)} | ${fmtS(t?.cliExitMs)} | ${fmtS(p.pulumi!.upMs)} | ${fmtS(p.pulumi!.upMs! - last)} | ${fmtS(p.pulumi!.noopUpMs)} / ${fmtS(q?.ms)}${q ? ` (${fmtS(q.preludeMs)}, ${fmtS(q.summaryMs)}, ${fmtS(q.cliExitMs)})` : ""} |`,
    );
  }
  const e = res.fleet.emptyQuickUp;
  if (e?.length) {
    const med = (xs: (number | undefined)[]) =>
      stats(xs.flatMap((x) => (x === undefined ? [] : [x])))?.median;
    L.push("");
    L.push(
      `Empty stack (no resources), median of ${e.length}: \`stack.up()\` ${fmtS(stats(res.fleet.emptyUpMs)?.median)}, \`quickUp\` ${fmtS(med(e.map((x) => x.ms)))} ` +
        `(engine prelude ${fmtS(med(e.map((x) => x.preludeMs)))}, summary ${fmtS(med(e.map((x) => x.summaryMs)))}, CLI exit ${fmtS(med(e.map((x) => x.cliExitMs)))}).`,
    );
  }
  L.push("");
  return L;
}
