import { existsSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { run } from "../../process";
import type { Spec } from "./types";

/** The control line's and each serial line's FIFO pair in `dir`, made where missing. */
export async function makeFifos(dir: string, s: Spec): Promise<void> {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const names = ["control", ...Array.from({ length: s.serialLines }, (_, i) => `ttyS${i}`)];
  // The console has only an input here: its output is the console log.
  const missing = [...names.flatMap((n) => [`${n}.in`, `${n}.out`]), "console.in"]
    .map((f) => join(dir, f))
    .filter((f) => !existsSync(f));
  if (missing.length > 0) await mkfifos(missing);
}

/**
 * Node has no mkfifo(3), so the coreutils tool makes FIFOs. Requests made in
 * the same turn of the event loop share one process: a group booting 32 guests
 * at once spawns one mkfifo, not 32 (each spawn costs tens of ms of blocked
 * event loop while guests compete for the CPU). If the shared run fails, each
 * request is retried alone so the error belongs to the instance that caused it.
 */
let fifoBatch: { paths: string[]; done: Promise<void> } | undefined;
function mkfifos(paths: string[]): Promise<void> {
  if (!fifoBatch) {
    const batch = { paths: [] as string[], done: Promise.resolve() };
    batch.done = new Promise<void>((resolve) => setImmediate(resolve)).then(async () => {
      fifoBatch = undefined;
      // Generous deadline: under load the tool starves.
      await run("mkfifo", ["-m", "600", ...batch.paths], { timeoutMs: 60_000 });
    });
    fifoBatch = batch;
  }
  const batch = fifoBatch;
  batch.paths.push(...paths);
  return batch.done.catch(async () => {
    const left = paths.filter((f) => !existsSync(f));
    if (left.length > 0) await run("mkfifo", ["-m", "600", ...left], { timeoutMs: 60_000 });
  });
}
