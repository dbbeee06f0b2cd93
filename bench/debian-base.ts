/**
 * Debian bases, measured (the slow part that CI does not repeat: CI reuses the
 * tree cached by content hash). `npm run build && node dist/bench/debian-base.js`
 * writes bench/results/debian-base.json:
 *  - a cold mmdebstrap build of a bookworm minbase into an empty cache (time, tarball size);
 *  - the image built from the cached tree (time, blocks used in the guest);
 *  - boots of that root under umlfleet's init (to its ready marker), under
 *    sysvinit (to a login prompt on the console) and under systemd (to
 *    multi-user.target, and whether a login prompt appears), each with a
 *    generous deadline.
 * Everything lives in one fresh folder, removed at the end with its guests.
 */
import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { ensureDebianTree } from "../src/host/distro";
import { LocalRuntime } from "../src/host/runtime";
import type { DebianSource } from "../src/spec";
import { sleep } from "./lib";

const OUT = join(__dirname, "..", "..", "bench", "results", "debian-base.json");
const SYSV_INITTAB =
  "id:2:initdefault:\nsi::sysinit:/etc/init.d/rcS\nl2:2:wait:/etc/init.d/rc 2\n" +
  "co:2345:respawn:/sbin/agetty -L console 115200 vt100\n";

interface OwnInitRun {
  init: string;
  /** From start to the first "login:" on the console, if one came. */
  loginPromptMs?: number;
  /** From start to systemd's "Reached target ... Multi-User System", if seen. */
  multiUserMs?: number;
  waitedMs: number;
  consoleTail: string[];
}

async function main(): Promise<void> {
  // umlfleet's own kernel, as the tests use (Debian's 6.1 cannot run guests on AMX hosts).
  process.env.UMLFLEET_KERNEL ??= execFileSync(join(__dirname, "..", "..", "scripts", "build-kernel.sh"), {
    encoding: "utf8",
  })
    .trim()
    .split("\n")
    .pop();
  const dir = mkdtempSync("/tmp/ufd-");
  const rt = new LocalRuntime({ stateDir: join(dir, "s") });
  const result: Record<string, unknown> = { startedAt: new Date().toISOString() };
  try {
    const minbase: DebianSource = { kind: "debian", suite: "bookworm" };
    // Cold: an empty cache of our own, so nothing is reused.
    const cold = await ensureDebianTree(minbase, {
      env: { ...process.env, UMLFLEET_CACHE: join(dir, "cache") },
    });
    result.coldTree = { buildMs: cold.buildMs, tarBytes: readFileSync(cold.tarPath).length };

    let t = performance.now();
    const base = await rt.ensureBase({ name: "deb", source: minbase });
    result.image = { buildMs: Math.round(performance.now() - t), imageBytes: base.sizeBytes };
    await rt.ensureDisk({ name: "u-root", kind: "overlay", base: "deb" });
    t = performance.now();
    await rt.createInstance({ name: "u", rootDisk: "u-root", memoryMiB: 128 });
    const readyMs = Math.round(performance.now() - t);
    const df = await rt.exec("u", "df -k / | awk 'NR==2 {print $3}'");
    result.umlfleetInit = { readyMs, usedKiB: Number(df.output.trim()) };
    await rt.removeInstance("u");

    const own = async (init: string, source: DebianSource, waitMs: number): Promise<OwnInitRun> => {
      await rt.ensureBase({ name: init, source });
      await rt.ensureDisk({ name: `${init}-root`, kind: "overlay", base: init });
      const started = performance.now();
      await rt.createInstance({
        name: init,
        rootDisk: `${init}-root`,
        memoryMiB: 256,
        readiness: "mconsole",
      });
      const log = rt.state.consoleLog(init);
      const run: OwnInitRun = { init, waitedMs: waitMs, consoleTail: [] };
      while (performance.now() - started < waitMs && run.loginPromptMs === undefined) {
        const text = existsSync(log) ? readFileSync(log, "utf8") : "";
        if (run.multiUserMs === undefined && /Reached target.*Multi-User/.test(text))
          run.multiUserMs = Math.round(performance.now() - started);
        if (/login: *$/m.test(text)) run.loginPromptMs = Math.round(performance.now() - started);
        await sleep(250);
      }
      run.consoleTail = readFileSync(log, "utf8").split("\n").slice(-15);
      await rt.removeInstance(init);
      return run;
    };
    result.sysvinit = await own(
      "sysv",
      { ...minbase, packages: ["sysvinit-core"], files: [{ path: "/etc/inittab", content: SYSV_INITTAB }] },
      90_000,
    );
    result.systemd = await own("sysd", { ...minbase, packages: ["systemd-sysv"] }, 120_000);
  } catch (e) {
    result.error = String(e);
  } finally {
    await rt.destroyAll({ timeoutMs: 10_000 });
    rmSync(dir, { recursive: true, force: true });
  }
  writeFileSync(OUT, `${JSON.stringify(result, null, 2)}\n`);
  console.log(JSON.stringify(result, null, 2));
}

void main();
