import { spawnSync } from "node:child_process";
import { linkSync, readFileSync, rmSync, statSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { uidPool } from "../../src/feature-checks";
import { TestHost } from "../helpers/runtime";

const uidOf = (pid: number) => Number(/^Uid:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"))![1]);

/** `argv` run on the host as `uid` (setpriv, no groups): exit status and stderr. */
const asUid = (uid: number, argv: string[]) => {
  const r = spawnSync("setpriv", [`--reuid=${uid}`, `--regid=${uid}`, "--clear-groups", "--", ...argv], {
    encoding: "utf8",
  });
  return { status: r.status, stderr: r.stderr };
};

/**
 * runAs: each guest's kernel runs as a host uid of its own, so one guest's
 * processes cannot signal or read another's. Switching uid needs root.
 */
describe.runIf(process.getuid?.() === 0)("runAs: a host uid per guest", () => {
  const host = new TestHost("runas");
  const pool = uidPool();
  const fixed = pool.from + 77;

  beforeAll(async () => {
    await host.lab(["a", "b", "c"], {
      extra: (n) => ({ runAs: n === "a" ? { pool: true } : n === "b" ? { uid: fixed } : { user: "nobody" } }),
    });
  });
  afterAll(() => host.destroy());

  const kernelPid = (n: string) => host.rt.instances.get(n)!.sandbox!.pid;
  const ids = (n: string) => host.rt.instances.get(n)!.hostIds!;

  it("runs each guest's kernel as its own uid: from the pool, a fixed one, a host account", () => {
    expect(ids("a").uid).toBeGreaterThanOrEqual(pool.from);
    expect(ids("a").uid).toBeLessThanOrEqual(pool.to);
    expect(ids("b")).toEqual({ uid: fixed, gid: fixed });
    expect(ids("c").uid).toBe(65534);
    for (const n of ["a", "b", "c"]) expect(uidOf(kernelPid(n))).toBe(ids(n).uid);
    expect(new Set(["a", "b", "c"].map((n) => ids(n).uid)).size).toBe(3);
    // setpriv's switch left the kernel no capability, and it can gain none (no-new-privs).
    const status = readFileSync(`/proc/${kernelPid("a")}/status`, "utf8");
    expect(status).toMatch(/^CapEff:\s+0+$/m);
    expect(status).toMatch(/^CapPrm:\s+0+$/m);
    expect(status).toMatch(/^NoNewPrivs:\s+1$/m);
  });

  it("guests still reach each other through their switch, and exec still works", async () => {
    await host.sh("a", "ping -c 1 -W 5 10.0.0.2 && ping -c 1 -W 5 10.0.0.3");
  });

  it("one guest's uid can signal and read its own kernel and disk, but not another's", () => {
    const a = ids("a").uid;
    // The disks as hard links (same inodes) where any uid can reach them: the
    // state folder itself is closed to every uid but its owner's.
    const link = (n: string) => {
      const p = join(host.dir, `${n}-disk`);
      linkSync(host.rt.disks.get(`${n}-root`)!.path, p);
      return p;
    };
    const [aDisk, bDisk] = [link("a"), link("b")];
    try {
      // Its own: allowed (so the refusals below are about ownership, not the tools).
      const own = [
        asUid(a, ["kill", "-0", String(kernelPid("a"))]),
        asUid(a, ["head", "-c", "1", "--", aDisk]),
      ];
      expect(
        own.map((r) => r.status),
        own.map((r) => r.stderr).join(""),
      ).toEqual([0, 0]);
      const signal = asUid(a, ["kill", "-0", String(kernelPid("b"))]);
      expect(signal.status).not.toBe(0);
      expect(signal.stderr).toMatch(/not permitted/i);
      const read = asUid(a, ["head", "-c", "1", "--", bDisk]);
      expect(read.status).not.toBe(0);
      expect(read.stderr).toMatch(/Permission denied/);
      expect(statSync(bDisk).uid).toBe(fixed);
      expect(statSync(bDisk).mode & 0o077).toBe(0);
    } finally {
      rmSync(aDisk);
      rmSync(bDisk);
    }
  });

  it("a restart keeps a pool guest's uid", async () => {
    const before = ids("a").uid;
    const spec = host.rt.instances.get("a")!.spec;
    await host.rt.updateInstance({
      ...spec,
      memoryMiB: spec.memoryMiB + 8,
      maxMemoryMiB: spec.memoryMiB + 8,
    });
    expect(ids("a").uid).toBe(before);
    expect(uidOf(kernelPid("a"))).toBe(before);
  });

  it("an account the host does not have is refused naming the field, and nothing is made", async () => {
    await expect(
      host.rt.createInstance({ name: "d", rootDisk: "a-root", runAs: { user: "no-such-user-here" } }),
    ).rejects.toThrow(/runAs\/user/);
    expect(host.rt.instances.get("d")).toBeUndefined();
  });
});
