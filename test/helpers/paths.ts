import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { identify, isAlive, type ProcessIdentity } from "../../src/process";

/** Short on purpose: UML's and VDE's unix socket paths must fit in 108 bytes. */
export const TEST_ROOT = process.env.UMLFLEET_TEST_ROOT ?? "/tmp/uft";
export const newTestDir = (label: string) =>
  join(TEST_ROOT, `${label}-${process.pid}-${Math.random().toString(36).slice(2, 7)}`);

/** Which process holds the test root: a test suite (global setup) or a benchmark making host labs in it. */
const OWNER_FILE = join(TEST_ROOT, ".owner.json");

export function testRootOwner(): ProcessIdentity | undefined {
  try {
    return JSON.parse(readFileSync(OWNER_FILE, "utf8")) as ProcessIdentity;
  } catch {
    return undefined;
  }
}

/**
 * Hold the test root for this process: refused while another live process
 * (a suite, or a benchmark making host labs) holds it. With `wipe`, the root
 * is emptied first (a suite starts from nothing). Returns the release.
 */
export function holdTestRoot(opts: { wipe?: boolean } = {}): () => void {
  const me = identify(process.pid)!;
  const other = testRootOwner();
  if (other && isAlive(other) && other.pid !== me.pid)
    throw new Error(
      `the test root ${TEST_ROOT} belongs to a suite or benchmark that is still running (pid ${other.pid}): ` +
        "set UMLFLEET_TEST_ROOT to a folder of your own",
    );
  if (opts.wipe) rmSync(TEST_ROOT, { recursive: true, force: true });
  mkdirSync(TEST_ROOT, { recursive: true });
  writeFileSync(OWNER_FILE, JSON.stringify(me));
  return () => {
    const o = testRootOwner();
    if (o?.pid === me.pid && o.startTicks === me.startTicks) rmSync(OWNER_FILE, { force: true });
  };
}
