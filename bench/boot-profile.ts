/**
 * The profile of a guest's boot after the kernel hands over to umlfleet's
 * init, by the guest kernel's own clock: `umlfleet.profile=1` makes the init
 * print `UMLFLEET-STEP <step> <uptime>` after each step, and `printk.time=1`
 * stamps the kernel's "Run /umlfleet/init" line. Guests boot one at a time
 * (lean kernel, a NIC with an address, two serial lines: what a lab guest
 * has), so the numbers are the init's own cost, not a storm's.
 * `npm run build && node dist/bench/boot-profile.js` writes
 * bench/results/boot-profile.json and prints a table; docs/benchmarks.md
 * keeps it, so each later change to the init is measured against it.
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { loadavg } from "node:os";
import { join } from "node:path";
import { LocalRuntime } from "../src/host/runtime";

const OUT = join(__dirname, "..", "..", "bench", "results", "boot-profile.json");
const ROUNDS = Number(process.env.BENCH_PROFILE_ROUNDS ?? 10);

/** Each step's duration in ms: from the previous step's end (the first: from the kernel's "Run /umlfleet/init"). */
export function parseProfile(
  consoleText: string,
): { kernelToInitMs: number; steps: [string, number][] } | undefined {
  const run = /\[\s*([\d.]+)\] Run \/umlfleet\/init as init process/.exec(consoleText);
  if (!run) return undefined;
  let prev = Number(run[1]);
  const steps: [string, number][] = [];
  for (const m of consoleText.matchAll(/UMLFLEET-(?:STEP (\S+)|READY) ([\d.]+)/g)) {
    const at = Number(m[2]);
    steps.push([m[1] ?? "ready", Math.round((at - prev) * 1000)]);
    prev = at;
  }
  return { kernelToInitMs: Math.round(Number(run[1]) * 1000), steps };
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.floor((s.length - 1) / 2)]! : NaN;
};

async function main(): Promise<void> {
  const kernel = execFileSync(join(__dirname, "..", "..", "scripts", "build-kernel.sh"), { encoding: "utf8" })
    .trim()
    .split("\n")
    .pop()!;
  const dir = mkdtempSync("/tmp/ufp-");
  const rt = new LocalRuntime({ stateDir: join(dir, "s") });
  const runs: NonNullable<ReturnType<typeof parseProfile>>[] = [];
  try {
    await rt.ensureBase({ name: "bb", source: { kind: "busybox", sizeMiB: 32 } });
    await rt.ensureNetwork({ name: "lan" });
    for (let r = 0; r < ROUNDS; r++) {
      const name = `p${r}`;
      await rt.ensureDisk({ name: `${name}-root`, kind: "overlay", base: "bb" });
      await rt.createInstance({
        name,
        rootDisk: `${name}-root`,
        kernel,
        memoryMiB: 64,
        serialLines: 2,
        nics: [{ network: "lan", ipv4: `10.0.0.${r + 1}/24` }],
        kernelArgs: ["umlfleet.profile=1", "printk.time=1"],
      });
      const p = parseProfile(readFileSync(rt.instanceStatus(name).consoleLog, "utf8"));
      if (p) runs.push(p);
      await rt.removeInstance(name, { timeoutMs: 10_000 });
      await rt.removeDisk(`${name}-root`);
    }
  } finally {
    await rt.destroyAll({ timeoutMs: 10_000 });
    rmSync(dir, { recursive: true, force: true });
  }
  const names = runs[0]?.steps.map(([s]) => s) ?? [];
  const table = {
    rounds: runs.length,
    kernelToInitMs: median(runs.map((r) => r.kernelToInitMs)),
    stepsMs: Object.fromEntries(
      names.map((n) => [n, median(runs.map((r) => r.steps.find(([s]) => s === n)?.[1] ?? NaN))]),
    ),
    initTotalMs: median(runs.map((r) => r.steps.reduce((a, [, ms]) => a + ms, 0))),
  };
  const result = { measuredAt: new Date().toISOString(), loadavg1m: loadavg()[0], kernel, ...table, runs };
  writeFileSync(OUT, `${JSON.stringify(result, null, 2)}\n`);
  console.log(`kernel to init: ${table.kernelToInitMs} ms (median of ${table.rounds})`);
  for (const [n, ms] of Object.entries(table.stepsMs)) console.log(`  ${n.padEnd(10)} ${ms} ms`);
  console.log(`init total: ${table.initTotalMs} ms`);
}

if (require.main === module) void main();
