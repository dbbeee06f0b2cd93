import { mkdirSync, writeFileSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TestHost } from "../helpers/runtime";

describe("bases from a directory tree or an image file, swap and blank disks", () => {
  const host = new TestHost("bases");
  const tree = `${host.dir}/tree`;

  beforeAll(async () => {
    // A distribution-like tree with no busybox of its own.
    mkdirSync(`${tree}/etc`, { recursive: true });
    writeFileSync(`${tree}/etc/motd`, "from-a-directory-tree\n");
    await host.rt.ensureBase({ name: "bb", source: { kind: "busybox", sizeMiB: 32 } });
  });
  afterAll(() => host.destroy());

  it("imports an image file content-addressed: the same bytes share one read-only image", async () => {
    const bb = host.rt.images.get("bb")!;
    const copy = await host.rt.ensureBase({ name: "copy", source: { kind: "image", path: bb.imagePath } });
    expect(copy.imageSha).toBe(bb.imageSha);
    expect(copy.imagePath).toBe(bb.imagePath);
    // Removing one base keeps the image the other still names.
    await host.rt.removeBase("copy");
    expect(host.rt.images.get("bb")).toBeDefined();
    const { existsSync, statSync } = await import("node:fs");
    expect(existsSync(bb.imagePath)).toBe(true);
    expect(statSync(bb.imagePath).mode & 0o222).toBe(0); // read-only
  });

  it("a base another umlfleet built from the same spec (another init) is kept as it is; another spec is a conflict", async () => {
    const bb = host.rt.images.get("bb")!;
    const record = host.rt.state.baseRecord("bb");
    // What an upgrade looks like to the record: the recipe included another init.
    writeFileSync(record, JSON.stringify({ ...bb, recipeHash: "0".repeat(64) }));
    const again = await host.rt.ensureBase({ name: "bb", source: { kind: "busybox", sizeMiB: 32 } });
    expect(again.imageSha).toBe(bb.imageSha);
    await expect(
      host.rt.ensureBase({ name: "bb", source: { kind: "busybox", sizeMiB: 48 } }),
    ).rejects.toMatchObject({ code: "UMLFLEET_CONFLICT" });
    writeFileSync(record, JSON.stringify(bb));
  });

  it("a fresh overlay is sparse: under 64 KiB on disk", async () => {
    await host.rt.ensureDisk({ name: "fresh", kind: "overlay", base: "bb" });
    expect(host.rt.disks.allocatedBytes("fresh")).toBeLessThan(64 * 1024);
  });

  it("builds a base from a directory tree and boots it with umlfleet's init", async () => {
    await host.rt.ensureBase({ name: "tree", source: { kind: "directory", path: tree, sizeMiB: 32 } });
    await host.rt.ensureDisk({ name: "t-root", kind: "overlay", base: "tree" });
    await host.rt.createInstance({ name: "t", rootDisk: "t-root" });
    expect(await host.sh("t", "cat /etc/motd")).toContain("from-a-directory-tree");
  });

  it("enables a swap disk, and a hot-plugged data disk does not collide with it", async () => {
    await host.rt.ensureDisk({ name: "swap", kind: "swap", sizeMiB: 16 });
    await host.rt.ensureDisk({ name: "data", kind: "blank", sizeMiB: 8, format: "ext4" });
    await host.rt.ensureDisk({ name: "s-root", kind: "overlay", base: "bb" });
    await host.rt.createInstance({ name: "s", rootDisk: "s-root", swapDisk: "swap" });
    expect(await host.sh("s", "cat /proc/swaps")).toContain("/dev/ubdp");
    const spec = host.rt.instances.get("s")!.spec;
    await host.rt.updateInstance({ ...spec, disks: [{ disk: "data" }] });
    expect(await host.sh("s", "mount /dev/ubdb /mnt && ls /mnt && umount /mnt")).toContain("lost+found");
    expect(await host.sh("s", "cat /proc/swaps")).toContain("/dev/ubdp");
  });

  it("inspects a running guest through mconsole: devices, kernel version, uptime", async () => {
    const info = await host.rt.inspectInstance("s");
    expect(info.devices.ubd0).toContain("s-root");
    expect(info.devices.ubd15).toContain("swap");
    expect(info.kernelVersion).toMatch(/6\.1/);
    expect(info.uptimeSec).toBeGreaterThanOrEqual(0);
  });

  it("refuses a swap disk that is not a swap disk, naming the field", async () => {
    await expect(
      host.rt.createInstance({ name: "w", rootDisk: "fresh", swapDisk: "data" }),
    ).rejects.toMatchObject({
      message: expect.stringContaining("/swapDisk"),
    });
  });
});
