import { execFileSync } from "node:child_process";
import { rmSync } from "node:fs";
import { join } from "node:path";
import { killPids, processesMentioning } from "../src/process";
import { hostsTag, sweepHosts } from "./helpers/hosts";
import { holdTestRoot, TEST_ROOT } from "./helpers/paths";

/**
 * One root folder for everything the suite makes. After the suite, no process
 * whose command line names it may be running (no linux.uml, vde_switch or
 * relay of ours outlives the tests), and the folder is removed.
 */
/** Set once setup holds the test root: a suite refused it (another's root) sweeps nothing. */
let held = false;

export function setup(): void {
  holdTestRoot({ wipe: true });
  held = true;
  // Guests boot umlfleet's built kernel unless told otherwise: Debian's 6.1
  // kernel cannot run guest processes on AMX hosts (docs/kernel.md). The
  // workers inherit this environment. A cache hit after scripts/test.sh.
  if (!process.env.UMLFLEET_KERNEL) {
    const out = execFileSync(join(__dirname, "..", "scripts", "build-kernel.sh"), { encoding: "utf8" });
    process.env.UMLFLEET_KERNEL = out.trim().split("\n").pop();
  }
}

export function teardown(): void {
  if (!held) return; // another suite's root (its setup refused us): not ours to sweep
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
