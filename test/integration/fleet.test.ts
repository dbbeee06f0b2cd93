import { readFileSync } from "node:fs";
import { createHash } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TestHost } from "../helpers/runtime";

const sha = (file: string) => createHash("sha256").update(readFileSync(file)).digest("hex");

describe("two instances on one shared base", () => {
  const host = new TestHost("fleet");
  let baseImage = "";
  let baseShaBefore = "";

  beforeAll(async () => {
    const base = await host.rt.ensureBase({ name: "bb", source: { kind: "busybox", sizeMiB: 32 } });
    baseImage = base.imagePath;
    baseShaBefore = sha(baseImage);
    expect(baseShaBefore).toBe(base.imageSha);
    await host.lab(["a", "b"]);
  });
  afterAll(() => host.destroy());

  it("boots both guests from their own overlays over one read-only base", () => {
    const a = host.rt.instanceStatus("a");
    const b = host.rt.instanceStatus("b");
    expect(a.state).toBe("running");
    expect(b.state).toBe("running");
    expect(host.rt.disks.get("a-root")!.backingPath).toBe(baseImage);
    expect(host.rt.disks.get("b-root")!.backingPath).toBe(baseImage);
  });

  it("guests on one switch ping each other", async () => {
    expect(await host.sh("a", "ping -c 2 -W 5 10.0.0.2")).toMatch(/2 packets received/);
    expect(await host.sh("b", "ping -c 2 -W 5 10.0.0.1")).toMatch(/2 packets received/);
  });

  it("gives each NIC its deterministic MAC", async () => {
    const mac = host.rt.instanceStatus("a").nics[0]!.mac;
    expect(await host.sh("a", "cat /sys/class/net/eth0/address")).toContain(mac);
  });

  it("keeps a file written in a guest across stop and start, and out of the other guest", async () => {
    await host.sh("a", "echo kept-across-reboot > /root/marker && sync");
    await host.rt.stopInstance("a");
    expect(host.rt.instanceStatus("a").state).toBe("stopped");
    await host.rt.startInstance("a");
    expect(host.rt.instanceStatus("a").bootCount).toBe(2);
    expect(await host.sh("a", "cat /root/marker")).toContain("kept-across-reboot");
    const inB = await host.rt.exec("b", "cat /root/marker");
    expect(inB.exitCode).not.toBe(0);
  });

  it("never writes to the base: byte-for-byte unchanged after guests wrote to their overlays", async () => {
    await host.rt.stopInstance("a");
    await host.rt.stopInstance("b");
    expect(sha(baseImage)).toBe(baseShaBefore);
  });
});
