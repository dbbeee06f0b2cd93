import { execFileSync } from "node:child_process";
import { processesMentioning as mentioning } from "../../src/process";
import { existsSync, mkdirSync, readdirSync, readlinkSync, rmSync } from "node:fs";
import { LocalRuntime } from "../../src";
import type { InstanceSpec, NetworkSpec } from "../../src/spec";
import { newTestDir } from "./paths";

export { newTestDir };

/**
 * Processes whose command line names `needle` (our guests, switches and relays
 * carry their state folder), as "pid args" lines; the test runner's own node
 * processes, whose arguments may quote a folder, are not counted.
 */
export function processesMentioning(needle: string): string[] {
  return mentioning(needle)
    .filter((p) => !/^\S*node\b|vitest/.test(p.args))
    .map((p) => `${p.pid} ${p.args}`);
}

/** The kernel tests boot (global setup sets $UMLFLEET_KERNEL to umlfleet's built kernel). */
export const testKernel = () => process.env.UMLFLEET_KERNEL ?? "/usr/bin/linux.uml";

/** Pid of an instance's main kernel process (the oldest one naming its folder), not its sandbox. */
export function guestKernelPid(stateDir: string, name: string): number {
  const kernel = testKernel().replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
  const pattern = `^${kernel} .*uml_dir=${stateDir}/instances/${name}/`;
  return Number(execFileSync("pgrep", ["-o", "-f", pattern], { encoding: "utf8" }).trim());
}

/**
 * A runtime over a fresh state folder, plus a teardown that removes everything
 * it made and fails if any process or file of it is left.
 */
export class TestHost {
  readonly dir: string;
  readonly stateDir: string;
  readonly rt: LocalRuntime;

  constructor(label: string) {
    this.dir = newTestDir(label);
    this.stateDir = `${this.dir}/s`;
    mkdirSync(this.dir, { recursive: true });
    this.rt = new LocalRuntime({ stateDir: this.stateDir });
  }

  /** A busybox base, one overlay per name, and a network; boots the instances. */
  async lab(
    names: string[],
    opts: {
      network?: string;
      /** The network's spec beyond its name (a host link, a capture). */
      networkSpec?: Omit<NetworkSpec, "name">;
      extra?: (name: string, i: number) => Partial<InstanceSpec>;
    } = {},
  ) {
    await this.rt.ensureBase({ name: "bb", source: { kind: "busybox", sizeMiB: 32 } });
    const network = opts.network ?? "lan";
    await this.rt.ensureNetwork({ name: network, ...opts.networkSpec });
    for (const n of names) await this.rt.ensureDisk({ name: `${n}-root`, kind: "overlay", base: "bb" });
    return Promise.all(
      names.map((n, i) =>
        this.rt.createInstance({
          name: n,
          rootDisk: `${n}-root`,
          nics: [{ network, ipv4: `10.0.0.${i + 1}/24` }],
          ...(opts.extra?.(n, i) ?? {}),
        }),
      ),
    );
  }

  async sh(name: string, script: string, timeoutMs?: number): Promise<string> {
    const r = await this.rt.exec(name, script, timeoutMs ? { timeoutMs } : {});
    if (r.exitCode !== 0) throw new Error(`script in ${name} exited ${r.exitCode}: ${script}\n${r.output}`);
    return r.output;
  }

  /** Destroy everything, then check that nothing of this host is left. */
  async destroy(): Promise<void> {
    await this.rt.destroyAll({ timeoutMs: 10_000 });
    const left = processesMentioning(this.stateDir);
    const leftFiles = existsSync(this.stateDir)
      ? ["images", "bases", "disks", "networks", "switches", "instances", "links"].flatMap((d) =>
          existsSync(`${this.stateDir}/${d}`)
            ? readdirSync(`${this.stateDir}/${d}`).map((f) => `${d}/${f}`)
            : [],
        )
      : [];
    rmSync(this.dir, { recursive: true, force: true });
    if (left.length > 0) throw new Error(`processes outlived the test:\n${left.join("\n")}`);
    if (leftFiles.length > 0) throw new Error(`files outlived destroyAll: ${leftFiles.join(", ")}`);
  }
}

/**
 * Sends `text` from guest `from`'s ttyS1 and returns what guest `to` read on its
 * ttyS1 within about 20 s (generous: CI machines are loaded): whether a serial link carries bytes.
 */
export async function sendOverSerial(
  driver: { exec(name: string, script: string): Promise<{ output: string }> },
  from: string,
  to: string,
  text: string,
): Promise<string> {
  // The reader must hold the line open before the text is sent (a loaded CI run sent first once,
  // and the text was lost): wait until its fds show ttyS1.
  await driver.exec(
    to,
    "cat /dev/ttyS1 > /tmp/got 2>&1 & p=$!; i=0; until ls -l /proc/$p/fd 2>/dev/null | grep -q ttyS1; do [ $i -lt 200 ] || break; sleep 0.05; i=$((i + 1)); done",
  );
  await driver.exec(from, `echo ${text} > /dev/ttyS1`);
  const read = `i=0; while [ $i -lt 40 ] && ! grep -q ${text} /tmp/got; do sleep 0.5; i=$((i + 1)); done; cat /tmp/got`;
  return (await driver.exec(to, read)).output;
}

/** Every process in `pid`'s pid namespace, as host pids (a sandbox's: UML's helpers and the guest's own processes). */
export function inPidNamespaceOf(pid: number): number[] {
  const ns = readlinkSync(`/proc/${pid}/ns/pid`);
  return readdirSync("/proc")
    .filter((d) => /^\d+$/.test(d))
    .map(Number)
    .filter((p) => {
      try {
        return readlinkSync(`/proc/${p}/ns/pid`) === ns;
      } catch {
        return false; // gone meanwhile
      }
    });
}
