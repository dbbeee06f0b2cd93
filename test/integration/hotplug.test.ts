import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { InstanceSpec } from "../../src/spec";
import { TestHost } from "../helpers/runtime";

const uptime = async (host: TestHost, name: string) =>
  Number((await host.sh(name, "cut -d' ' -f1 /proc/uptime")).trim());

describe("hot-plug into a running guest", () => {
  const host = new TestHost("hotplug");
  let spec: InstanceSpec;

  beforeAll(async () => {
    await host.lab(["a"], { extra: () => ({ memoryMiB: 64, maxMemoryMiB: 128 }) });
    await host.rt.ensureDisk({ name: "data", kind: "blank", sizeMiB: 16, format: "ext4" });
    spec = host.rt.instances.get("a")!.spec;
  });
  afterAll(() => host.destroy());

  it("classifies an added disk and NIC as live, and applies them without a reboot", async () => {
    const before = await uptime(host, "a");
    const next: InstanceSpec = {
      ...spec,
      disks: [{ disk: "data" }],
      nics: [...(spec.nics ?? []), { network: "lan", ipv4: "10.0.1.1/24" }],
    };
    const plan = host.rt.planInstanceUpdate(next);
    expect(plan.kind).toBe("live");
    await host.rt.updateInstance(next);
    const blocks = await host.sh("a", "ls /sys/block");
    expect(blocks).toContain("ubdb");
    expect(
      await host.sh(
        "a",
        "mkdir -p /mnt/d && mount /dev/ubdb /mnt/d && echo ok > /mnt/d/f && cat /mnt/d/f && umount /mnt/d",
      ),
    ).toContain("ok");
    const links = await host.sh("a", "ip addr show eth1");
    expect(links).toContain("10.0.1.1/24");
    expect(await uptime(host, "a")).toBeGreaterThan(before);
    expect(host.rt.instanceStatus("a").bootCount).toBe(1);
    spec = next;
  });

  it("hot-unplugs the disk and the NIC again", async () => {
    const next: InstanceSpec = { ...spec, disks: [], nics: spec.nics!.slice(0, 1) };
    await host.rt.updateInstance(next);
    expect(await host.sh("a", "ls /sys/block")).not.toContain("ubdb");
    expect((await host.rt.exec("a", "ip link show eth1")).exitCode).not.toBe(0);
    expect(host.rt.instanceStatus("a").bootCount).toBe(1);
    spec = next;
  });

  it("adds memory through the mconsole balloon without a reboot", async () => {
    const memFreeKiB = async () =>
      Number(/MemFree:\s+(\d+)/.exec(await host.sh("a", "cat /proc/meminfo"))![1]);
    const before = await memFreeKiB();
    const next: InstanceSpec = { ...spec, memoryMiB: 96 };
    expect(host.rt.planInstanceUpdate(next).kind).toBe("live");
    await host.rt.updateInstance(next);
    expect(host.rt.instanceStatus("a").bootCount).toBe(1);
    expect(host.rt.instanceStatus("a").memoryMiB).toBe(96);
    // 32 MiB handed back by the balloon (allow for the guest's own use meanwhile).
    expect(await memFreeKiB()).toBeGreaterThan(before + 24 * 1024);
    // Beyond what it booted with, memory needs a restart: preview says so.
    expect(host.rt.planInstanceUpdate({ ...next, memoryMiB: 256, maxMemoryMiB: 256 }).kind).toBe("restart");
    spec = next;
  });

  it("restarts for a change that cannot be applied live, keeping the data", async () => {
    await host.sh("a", "echo survives > /root/f && sync");
    const next: InstanceSpec = { ...spec, hostname: "renamed" };
    const plan = host.rt.planInstanceUpdate(next);
    expect(plan.kind).toBe("restart");
    expect(plan.changes).toEqual([expect.objectContaining({ field: "/hostname", kind: "restart" })]);
    await host.rt.updateInstance(next);
    expect(host.rt.instanceStatus("a").bootCount).toBe(2);
    expect(await host.sh("a", "hostname; cat /root/f")).toMatch(/renamed[\s\S]*survives/);
  });
});
