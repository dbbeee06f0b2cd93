import { statSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { cowLayout, readCowHeader } from "../../src/uml/cow";
import { TestHost } from "../helpers/runtime";

/**
 * A guest that fills its root disk (dd until ENOSPC, as root in the guest):
 * the overlay on the host never grows past the size its COW layout declares
 * (header, bitmap, the base's size), the guest stays controllable, and stop,
 * start and destroy work, with what it wrote kept.
 */
describe("a guest that fills its root disk", () => {
  const host = new TestHost("diskfull");
  let overlay = "";
  let bound = 0n;

  beforeAll(async () => {
    await host.lab(["a"]);
    overlay = host.rt.disks.get("a-root")!.path;
    bound = cowLayout(readCowHeader(overlay)).fileSizeBytes;
  });
  afterAll(() => host.destroy());

  it("dd until ENOSPC: the guest answers, the overlay stays within its declared size", async () => {
    await host.sh("a", "echo before > /root/before && sync");
    const dd = await host.rt.exec("a", "dd if=/dev/zero of=/root/fill bs=1M 2>&1; sync; df -k /", {
      timeoutMs: 120_000,
    });
    expect(dd.exitCode).toBe(0);
    expect(dd.output).toMatch(/No space left on device/);
    // Still under control: a command runs, a large write fails cleanly.
    expect(await host.sh("a", "echo alive")).toContain("alive");
    expect((await host.rt.exec("a", "dd if=/dev/zero of=/root/more bs=1M count=4")).exitCode).not.toBe(0);
    const st = statSync(overlay);
    expect(BigInt(st.size)).toBe(bound);
    expect(BigInt(st.blocks * 512)).toBeLessThanOrEqual(bound);
  });

  it("stop and start work on the full disk, with what was written kept; space freed is usable again", async () => {
    await host.rt.stopInstance("a");
    expect(host.rt.instanceStatus("a").state).toBe("stopped");
    await host.rt.startInstance("a");
    expect(await host.sh("a", "cat /root/before")).toContain("before");
    expect(Number((await host.sh("a", "stat -c %s /root/fill")).trim())).toBeGreaterThan(1 << 20);
    await host.sh("a", "rm -f /root/fill /root/more && echo more > /root/more && sync");
    expect(await host.sh("a", "cat /root/more")).toContain("more");
    expect(BigInt(statSync(overlay).size)).toBe(bound);
  });
});
