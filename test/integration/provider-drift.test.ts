import { rmSync } from "node:fs";
import { afterAll, describe, expect, it } from "vitest";
import * as impl from "../../provider/impl";
import { LocalRuntime } from "../../src";
import { newTestDir } from "../helpers/runtime";

/**
 * The provider's read/diff/update against real switches, files and guests:
 * what refresh reports as drift, and what the next up does about it.
 */
describe("provider drift detection and repair", () => {
  const stateDir = `${newTestDir("drift")}/s`;
  const rt = () => new LocalRuntime({ stateDir });
  afterAll(async () => {
    await rt().destroyAll();
    rmSync(stateDir, { recursive: true, force: true });
  });

  it("a switch that died: read reports running=false, diff plans an update, update restarts it", async () => {
    const inputs = { name: "lan", stateDir };
    const { outs } = await impl.create("network", inputs);
    expect(outs.running).toBe(true);
    process.kill(outs.pid as number, "SIGKILL");
    await new Promise((r) => setTimeout(r, 200));
    const read = await impl.read("network", "lan", outs);
    expect(read.props?.running).toBe(false);
    const d = await impl.diff("network", "lan", read.props!, inputs);
    expect(d).toMatchObject({ changes: true, replaces: [] });
    const updated = await impl.update("network", "lan", read.props!, inputs);
    expect(updated.outs.running).toBe(true);
    expect(updated.outs.pid).not.toBe(outs.pid);
  });

  it("an overlay deleted behind our back: read names it in drift, diff replaces it, create alone refuses", async () => {
    await impl.create("base", { name: "bb", stateDir, source: { kind: "busybox", sizeMiB: 32 } });
    const inputs = { name: "o", stateDir, kind: "overlay", base: "bb" };
    const { outs } = await impl.create("disk", inputs);
    expect(outs.drift).toBe("");
    rmSync(outs.path as string);
    const read = await impl.read("disk", "o", outs);
    expect(read.props?.drift).toContain(`${String(outs.path)} is missing: the data in it is gone`);
    expect(await impl.diff("disk", "o", read.props!, inputs)).toMatchObject({
      changes: true,
      replaces: ["drift"],
    });
    // Never made anew silently, even by a create that finds its record.
    await expect(impl.create("disk", inputs)).rejects.toThrow(/UMLFLEET_DISK_DAMAGED.*is missing/);
    await impl.remove("disk", "o", read.props!);
    const again = await impl.create("disk", inputs);
    expect(again.outs.diskId).not.toBe(outs.diskId);
    expect(again.outs.drift).toBe("");
  });

  it("a guest killed: read reports it stopped, diff plans an update, update boots it again", async () => {
    await impl.create("disk", { name: "r", stateDir, kind: "overlay", base: "bb" });
    const inputs = { name: "g", stateDir, rootDisk: "r", nics: [{ network: "lan" }] };
    const { outs } = await impl.create("instance", inputs);
    expect(outs.state).toBe("running");
    process.kill(-(outs.pid as number), "SIGKILL");
    await new Promise((r) => setTimeout(r, 300));
    const read = await impl.read("instance", "g", outs);
    expect(read.props?.state).toBe("stopped");
    const d = await impl.diff("instance", "g", read.props!, inputs);
    expect(d).toMatchObject({ changes: true, replaces: [] });
    const updated = await impl.update("instance", "g", read.props!, inputs);
    expect(updated.outs.state).toBe("running");
    expect(updated.outs.bootCount).toBe(2);
  });

  it("check names the bad field and value, diff classifies fields, unknowns at preview are tolerated", async () => {
    const bad = await impl.check("instance", {}, { name: "g", rootDisk: "r", memoryMiB: 4 });
    expect(bad.failures).toEqual([
      expect.objectContaining({
        property: "memoryMiB",
        reason: expect.stringContaining("instance/memoryMiB"),
      }),
    ]);
    const unknown = await impl.check("instance", {}, { name: "g", rootDisk: impl.UNKNOWN });
    expect(unknown.failures).toEqual([]);
    const base = { name: "g", stateDir, rootDisk: "r", memoryMiB: 64, maxMemoryMiB: 128 };
    expect(await impl.diff("instance", "g", base, { ...base, memoryMiB: 96 })).toMatchObject({
      changes: true,
      replaces: [],
    });
    expect((await impl.diff("instance", "g", base, { ...base, kernel: "/other" })).replaces).toContain(
      "kernel",
    );
    expect((await impl.diff("instance", "g", base, { ...base })).changes).toBe(false);
  });
});
