/**
 * What the seccomp filter (src/host/seccomp.ts) costs a boot: one guest at a
 * time (lean kernel, a NIC, two serial lines), created until ready, then
 * destroyed; rounds alternate with and without the filter (UMLFLEET_SECCOMP=off)
 * in one process, the order flipping each round, so load drifts hit both alike.
 * `npm run build && node dist/bench/seccomp-boot.js` writes
 * bench/results/seccomp-boot.json and prints medians and their ratio.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { loadavg } from "node:os";
import { join } from "node:path";
import { LocalRuntime } from "../src/host/runtime";

const OUT = join(__dirname, "..", "..", "bench", "results", "seccomp-boot.json");
const ROUNDS = Number(process.env.BENCH_SECCOMP_ROUNDS ?? 15);

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.floor((s.length - 1) / 2)]! : NaN;
};

async function main(): Promise<void> {
  const dir = mkdtempSync("/tmp/umlfleet-bench-seccomp-");
  const rt = new LocalRuntime({ stateDir: join(dir, "s") });
  const times: Record<"filter" | "none", number[]> = { filter: [], none: [] };
  try {
    await rt.ensureBase({ name: "bb", source: { kind: "busybox", sizeMiB: 32 } });
    await rt.ensureNetwork({ name: "lan" });
    let n = 0;
    for (let round = 0; round < ROUNDS; round++) {
      const order: ("filter" | "none")[] = round % 2 ? ["none", "filter"] : ["filter", "none"];
      for (const mode of order) {
        if (mode === "none") process.env.UMLFLEET_SECCOMP = "off";
        else delete process.env.UMLFLEET_SECCOMP;
        const name = `g${n++}`;
        await rt.ensureDisk({ name: `${name}-root`, kind: "overlay", base: "bb" });
        const t0 = performance.now();
        await rt.createInstance({
          name,
          rootDisk: `${name}-root`,
          serialLines: 2,
          nics: [{ network: "lan", ipv4: "10.0.0.1/24" }],
        });
        times[mode].push(Math.round(performance.now() - t0));
        await rt.removeInstance(name);
        await rt.removeDisk(`${name}-root`);
      }
    }
  } finally {
    delete process.env.UMLFLEET_SECCOMP;
    await rt.destroyAll({ timeoutMs: 10_000 });
    rmSync(dir, { recursive: true, force: true });
  }
  const result = {
    at: new Date().toISOString(),
    rounds: ROUNDS,
    loadavg1: loadavg()[0],
    readyMs: times,
    medianMs: { filter: median(times.filter), none: median(times.none) },
    ratio: Number((median(times.filter) / median(times.none)).toFixed(3)),
  };
  writeFileSync(OUT, `${JSON.stringify(result, null, 2)}\n`);
  console.log(JSON.stringify(result));
}

void main();
