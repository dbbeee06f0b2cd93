import { execFileSync } from "node:child_process";
import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { identify, isAlive, killPids, processesMentioning, type ProcessIdentity } from "../src/process";
import { hostsTag, sweepHosts } from "./helpers/hosts";
import { TEST_ROOT } from "./helpers/paths";

/**
 * One root folder for everything the suite makes. After the suite, no process
 * whose command line names it may be running (no linux.uml, vde_switch or
 * relay of ours outlives the tests), and the folder is removed.
 */
/** The suite that owns the test root: a second suite on the same root would wipe the first's guests. */
const OWNER_FILE = join(TEST_ROOT, ".owner.json");
const me = identify(process.pid)!;
function owner(): ProcessIdentity | undefined {
  try {
    return JSON.parse(readFileSync(OWNER_FILE, "utf8")) as ProcessIdentity;
  } catch {
    return undefined;
  }
}
const ours = () => {
  const o = owner();
  return o?.pid === me.pid && o.startTicks === me.startTicks;
};

export function setup(): void {
  const other = owner();
  if (other && isAlive(other) && other.pid !== me.pid)
    throw new Error(
      `the test root ${TEST_ROOT} belongs to a suite that is still running (pid ${other.pid}); ` +
        "set UMLFLEET_TEST_ROOT to a folder of your own",
    );
  rmSync(TEST_ROOT, { recursive: true, force: true });
  mkdirSync(TEST_ROOT, { recursive: true });
  writeFileSync(OWNER_FILE, JSON.stringify(me));
  // Guests boot umlfleet's built kernel unless told otherwise: Debian's 6.1
  // kernel cannot run guest processes on AMX hosts (docs/kernel.md). The
  // workers inherit this environment. A cache hit after scripts/test.sh.
  if (!process.env.UMLFLEET_KERNEL) {
    const out = execFileSync(join(__dirname, "..", "scripts", "build-kernel.sh"), { encoding: "utf8" });
    process.env.UMLFLEET_KERNEL = out.trim().split("\n").pop();
  }
}

export function teardown(): void {
  if (!ours()) return; // another suite's root (its setup refused us): not ours to sweep
  const leaked = processesMentioning(TEST_ROOT).filter((p) => !p.args.includes("vitest"));
  killPids(leaked.map((p) => p.pid));
  // Target hosts (network namespaces, users, sshd) a host test left.
  const hostsLeft = process.getuid?.() === 0 ? sweepHosts(hostsTag(TEST_ROOT)) : [];
  rmSync(TEST_ROOT, { recursive: true, force: true });
  if (hostsLeft.length > 0) throw new Error(`target hosts outlived the test suite:\n${hostsLeft.join("\n")}`);
  if (leaked.length > 0) {
    throw new Error(
      `processes outlived the test suite:\n${leaked.map((p) => `${p.pid} ${p.args}`).join("\n")}`,
    );
  }
}
