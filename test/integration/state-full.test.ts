import { execFileSync, spawnSync } from "node:child_process";
import { mkdirSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { isUmlfleetError, LocalRuntime } from "../../src";
import { newTestDir, processesMentioning } from "../helpers/runtime";

const isRoot = process.getuid?.() === 0;

/** Every file under `dir`, relative. */
function filesUnder(dir: string, prefix = ""): string[] {
  return readdirSync(join(dir, prefix), { withFileTypes: true }).flatMap((e) => {
    const rel = join(prefix, e.name);
    return e.isDirectory() ? filesUnder(dir, rel) : [rel];
  });
}

/**
 * The host's state folder full (a small tmpfs mounted as the state folder)
 * and then read-only (its disks and instances folders bound read-only; root
 * ignores a chmod): a create fails with
 * UMLFLEET_STATE_WRITE_FAILED naming the file, leaves no temp file, no half
 * record and no process, and converges once space or write access returns;
 * the running guest keeps its data.
 */
describe.skipIf(!isRoot)("a state folder that is full, then read-only", () => {
  const dir = newTestDir("statefull");
  const stateDir = join(dir, "s");
  const filler = join(stateDir, "filler");
  const rt = () => new LocalRuntime({ stateDir });
  let mounted = false;
  const roFolders = ["disks", "instances"].map((f) => join(stateDir, f));

  const refused = async (p: Promise<unknown>, errno: string) => {
    const e = await p.then(
      () => undefined,
      (x: unknown) => x,
    );
    expect(isUmlfleetError(e, "UMLFLEET_STATE_WRITE_FAILED"), String(e)).toBe(true);
    const err = e as Error & { details: { file: string; errno: string } };
    expect(err.details.errno).toBe(errno);
    expect(err.details.file.startsWith(stateDir)).toBe(true);
    expect(err.message).toContain(err.details.file);
    return err;
  };
  /** No temp file of an interrupted write, and every record parses whole. */
  const expectRecordsWhole = () => {
    const files = filesUnder(stateDir);
    expect(files.filter((f) => f.includes(".tmp-"))).toEqual([]);
    for (const f of files.filter((f) => f.endsWith(".json") && !f.startsWith("locks/")))
      expect((): unknown => JSON.parse(readFileSync(join(stateDir, f), "utf8")), f).not.toThrow();
  };

  beforeAll(async () => {
    mkdirSync(stateDir, { recursive: true });
    execFileSync("mount", ["-t", "tmpfs", "-o", "size=72m,mode=0700", "tmpfs", stateDir]);
    mounted = true;
    const r = rt();
    await r.ensureBase({ name: "bb", source: { kind: "busybox", sizeMiB: 32 } });
    await r.ensureNetwork({ name: "lan" });
    await r.ensureDisk({ name: "a-root", kind: "overlay", base: "bb" });
    await r.ensureDisk({ name: "c-root", kind: "overlay", base: "bb" });
    await r.createInstance({
      name: "a",
      rootDisk: "a-root",
      nics: [{ network: "lan", ipv4: "10.0.0.1/24" }],
    });
    expect((await r.exec("a", "echo kept > /root/data && sync")).exitCode).toBe(0);
  }, 300_000);
  afterAll(async () => {
    rmSync(filler, { force: true });
    for (const p of roFolders) spawnSync("umount", [p], { stdio: "ignore" }); // a failed test's
    await rt().destroyAll({ timeoutMs: 10_000 });
    const left = processesMentioning(stateDir);
    if (mounted) execFileSync("umount", [stateDir]);
    rmSync(dir, { recursive: true, force: true });
    expect(left).toEqual([]);
  }, 120_000);

  it("full: a disk or an instance create fails naming the file, leaves nothing half made, converges after", async () => {
    // Fill what is left (dd stops at ENOSPC).
    spawnSync("dd", ["if=/dev/zero", `of=${filler}`, "bs=1M"], { stdio: "ignore" });
    const r = rt();
    await refused(r.ensureDisk({ name: "b-root", kind: "overlay", base: "bb" }), "ENOSPC");
    expect(r.disks.get("b-root")).toBeUndefined();
    await refused(
      r.createInstance({ name: "c", rootDisk: "c-root", nics: [{ network: "lan", ipv4: "10.0.0.3/24" }] }),
      "ENOSPC",
    );
    expect(r.instances.get("c")).toBeUndefined();
    expect(processesMentioning(`${stateDir}/instances/c/`)).toEqual([]);
    expectRecordsWhole();
    // The guest that ran keeps running; even exec needs a lock file, so it waits for space too.
    expect(r.instanceStatus("a").state).toBe("running");
    await refused(r.exec("a", "true"), "ENOSPC");

    rmSync(filler);
    expect((await r.exec("a", "cat /root/data")).output).toContain("kept");
    await r.ensureDisk({ name: "b-root", kind: "overlay", base: "bb" });
    await r.createInstance({
      name: "c",
      rootDisk: "c-root",
      nics: [{ network: "lan", ipv4: "10.0.0.3/24" }],
    });
    expect((await r.exec("c", "ping -c 1 -W 5 10.0.0.1")).exitCode).toBe(0);
    await r.removeInstance("c");
    expectRecordsWhole();
  }, 300_000);

  it("read-only: a create and a start fail naming the file; after write access returns, the guest starts with its data", async () => {
    const r = rt();
    await r.stopInstance("a");
    // Its disks and instances folders read-only (bind mounts: the running
    // switch's open log keeps the whole file system from a read-only remount).
    for (const p of roFolders) {
      execFileSync("mount", ["--bind", p, p]);
      execFileSync("mount", ["-o", "remount,ro,bind", p]);
    }
    try {
      await refused(r.ensureDisk({ name: "d-root", kind: "overlay", base: "bb" }), "EROFS");
      const e = await r.startInstance("a").then(
        () => undefined,
        (x: unknown) => x,
      );
      expect(isUmlfleetError(e, "UMLFLEET_STATE_WRITE_FAILED"), String(e)).toBe(true);
      expect(processesMentioning(`${stateDir}/instances/a/`)).toEqual([]);
    } finally {
      for (const p of roFolders) spawnSync("umount", [p]);
    }
    expectRecordsWhole();
    await r.startInstance("a");
    expect((await r.exec("a", "cat /root/data")).output).toContain("kept");
  }, 300_000);
});
