import { existsSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BootError } from "../../src";
import { processesMentioning, TestHost } from "../helpers/runtime";

describe("a guest that fails to boot", () => {
  const host = new TestHost("bootfail");
  beforeAll(async () => {
    await host.rt.ensureBase({ name: "bb", source: { kind: "busybox", sizeMiB: 32 } });
    await host.rt.ensureDisk({ name: "root", kind: "overlay", base: "bb" });
    await host.rt.ensureDisk({ name: "garbage", kind: "blank", sizeMiB: 8 });
  });
  afterAll(() => host.destroy());

  const expectNothingLeft = (name: string) => {
    expect(existsSync(`${host.stateDir}/instances/${name}`)).toBe(false);
    expect(processesMentioning(`${host.stateDir}/instances/${name}`)).toEqual([]);
    expect(host.rt.instances.list()).not.toContain(name);
  };

  it("with a bad kernel path: BootError naming /kernel, nothing started or left", async () => {
    const err = await host.rt
      .createInstance({ name: "k", rootDisk: "root", kernel: "/nonexistent/linux" })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BootError);
    expect(err).toMatchObject({ code: "UMLFLEET_BOOT_FAILED", message: expect.stringContaining("/kernel") });
    expectNothingLeft("k");
  });

  it("with a kernel that is not UML: BootError with exit status, nothing left", async () => {
    const err = (await host.rt
      .createInstance({ name: "f", rootDisk: "root", kernel: "/bin/false" })
      .catch((e: unknown) => e)) as BootError;
    expect(err).toBeInstanceOf(BootError);
    expect(err.code).toBe("UMLFLEET_BOOT_FAILED");
    expect(err.facts.exitCode).not.toBe(0);
    expect(err.facts.argv).toContain("/bin/false");
    expectNothingLeft("f");
  });

  it("with an unbootable root disk (kernel panic): BootError carrying the console tail", async () => {
    const err = (await host.rt
      .createInstance({ name: "p", rootDisk: "garbage" })
      .catch((e: unknown) => e)) as BootError;
    expect(err).toBeInstanceOf(BootError);
    expect(err.code).toBe("UMLFLEET_BOOT_FAILED");
    expect(err.facts.consoleTail).toMatch(/Kernel panic|VFS/);
    expect(err.message).toContain("console tail");
    expectNothingLeft("p");
  });

  it("with too little memory: a typed boot error with the console tail, nothing left", async () => {
    const err = (await host.rt
      .createInstance({ name: "m", rootDisk: "root", memoryMiB: 8, bootTimeoutMs: 30_000 })
      .catch((e: unknown) => e)) as BootError;
    expect(err).toBeInstanceOf(BootError);
    expect(["UMLFLEET_BOOT_FAILED", "UMLFLEET_BOOT_TIMEOUT"]).toContain(err.code);
    expect(err.facts.consoleTail.length).toBeGreaterThan(0);
    expectNothingLeft("m");
  });

  it("refuses an overlay whose base changed, before boot, naming the field and both files", async () => {
    await host.rt.ensureBase({ name: "other", source: { kind: "busybox", sizeMiB: 40 } });
    await host.rt.ensureDisk({ name: "o", kind: "overlay", base: "other" });
    // Simulate a base swapped behind our back: the record now names another image.
    const { writeJson } = await import("../../src/host/state");
    const rec = host.rt.disks.get("o")!;
    writeJson(`${host.stateDir}/disks/o.json`, { ...rec, spec: { ...rec.spec, base: "bb" } });
    const err = (await host.rt
      .createInstance({ name: "o", rootDisk: "o" })
      .catch((e: unknown) => e)) as Error;
    expect(err).toMatchObject({
      code: "UMLFLEET_BASE_MISMATCH",
      message: expect.stringContaining("/rootDisk"),
    });
    // Both files: the overlay, and the base image it was checked against.
    expect(err.message).toContain(rec.path);
    expect(err.message).toContain(host.rt.images.get("bb")!.imagePath);
    expectNothingLeft("o");
    host.rt.disks.remove("o", []);
  });
});
