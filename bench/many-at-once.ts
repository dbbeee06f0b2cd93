/**
 * N instances created at once through the runtime (Promise.all over
 * ensureDisk + createInstance, 64 MiB each, one base), then checked: every
 * one ready, no two on one overlay, every record whole and naming its own
 * overlay. test/integration/many-at-once.test.ts runs it (64 guests);
 * `node dist/bench/many-at-once.js [N]` (default 64) times it.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { LocalRuntime } from "../src/host/runtime";
import { processesMentioning } from "../src/process";

export interface ManyResult {
  /** Wall-clock time from the first create to the last one ready. */
  createMs: number;
  /** Problems found (an empty list when all is well). */
  problems: string[];
}

export async function createManyAtOnce(rt: LocalRuntime, n: number, owner?: string): Promise<ManyResult> {
  const o = owner ? { owner } : {};
  await rt.ensureBase({ name: "many", source: { kind: "busybox", sizeMiB: 32 } }, o);
  const names = Array.from({ length: n }, (_, i) => `g${i}`);
  const t0 = performance.now();
  const settled = await Promise.allSettled(
    names.map(async (name) => {
      await rt.ensureDisk({ name: `${name}-root`, kind: "overlay", base: "many" }, o);
      return rt.createInstance({ name, rootDisk: `${name}-root`, memoryMiB: 64, bootTimeoutMs: 240_000 }, o);
    }),
  );
  const createMs = performance.now() - t0;
  const problems: string[] = [];
  settled.forEach((r, i) => {
    if (r.status === "rejected") problems.push(`${names[i]}: ${String(r.reason)}`);
    else if (r.value.state !== "running") problems.push(`${names[i]}: ${r.value.state}`);
  });
  // Each record parses (readFileSync + JSON.parse: no partial write) and names its own overlay.
  const overlays = new Map<string, string>();
  for (const name of names) {
    let record: { spec?: { name?: string; rootDisk?: string } };
    try {
      record = JSON.parse(readFileSync(rt.state.instanceRecord(name), "utf8")) as typeof record;
    } catch (e) {
      problems.push(`${name}: instance.json: ${String(e)}`);
      continue;
    }
    if (record.spec?.name !== name || record.spec.rootDisk !== `${name}-root`)
      problems.push(`${name}: its record names ${record.spec?.name} on ${record.spec?.rootDisk}`);
    const disk = rt.disks.get(`${name}-root`);
    if (disk?.spec.base !== "many") problems.push(`${name}-root: not an overlay over "many"`);
    const other = disk && overlays.get(disk.path);
    if (other) problems.push(`${name} and ${other} share the overlay ${disk.path}`);
    if (disk) overlays.set(disk.path, name);
  }
  // The running kernels: each guest's root is its own overlay (the ubd0 its command line names).
  const roots = new Map<string, string>();
  for (const p of processesMentioning(join(rt.stateDir, "instances"))) {
    const m = /uml_dir=\S*\/instances\/([^/\s]+)\/vm ubd0=(\S+?),/.exec(p.args);
    if (!m || p.args.includes("bwrap")) continue;
    const [, inst, ubd0] = m;
    if (!ubd0!.endsWith(`/instances/${inst}/vm/disk-${inst}-root`))
      problems.push(`${inst} boots ${ubd0}, not its own overlay`);
    roots.set(inst!, ubd0!);
  }
  for (const name of names) if (!roots.has(name)) problems.push(`${name}: no running kernel found`);
  return { createMs, problems };
}

async function main(): Promise<void> {
  const n = Number(process.argv[2] ?? 64);
  const stateDir = process.env.UMLFLEET_STATE_DIR ?? `/tmp/uf-many-${process.pid}`;
  const rt = new LocalRuntime({ stateDir });
  try {
    const r = await createManyAtOnce(rt, n);
    console.log(JSON.stringify({ instances: n, createMs: Math.round(r.createMs), problems: r.problems }));
  } finally {
    const t0 = performance.now();
    await rt.destroyAll({ timeoutMs: 10_000 });
    console.log(JSON.stringify({ destroyAllMs: Math.round(performance.now() - t0) }));
  }
}

if (require.main === module) void main();
