import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { InstanceSpec } from "../../src/spec";
import { TestHost } from "../helpers/runtime";

/** A NIC's `mtu`: at boot (umlfleet.mtu= on the kernel command line), at hot-plug, and changed live. */
describe("NIC MTU", () => {
  const host = new TestHost("mtu");
  const mtu = async (name: string, dev: string) =>
    Number((await host.sh(name, `cat /sys/class/net/${dev}/mtu`)).trim());

  beforeAll(async () => {
    // a with its MTU lowered, b without one; both on one switch.
    await host.lab(["a", "b"], {
      extra: (n) => (n === "a" ? { nics: [{ network: "lan", ipv4: "10.0.0.1/24", mtu: 1458 }] } : {}),
    });
  });
  afterAll(() => host.destroy());

  it("sets it at boot, with the address; a NIC without one keeps 1500", async () => {
    expect(await mtu("a", "eth0")).toBe(1458);
    expect(await mtu("b", "eth0")).toBe(1500);
    expect(await host.sh("a", "ip addr show eth0")).toContain("10.0.0.1/24");
    // Frames up to the MTU pass: 1430 bytes of ICMP payload + 28 of headers = 1458.
    expect(await host.sh("a", "ping -c 1 -W 5 -s 1430 10.0.0.2")).toContain("1 packets received");
  });

  it("changes it in the running guest, without a reboot, and back to the default when removed", async () => {
    const spec = host.rt.instances.get("a")!.spec;
    const lower: InstanceSpec = { ...spec, nics: [{ ...spec.nics![0]!, mtu: 1400 }] };
    const plan = host.rt.planInstanceUpdate(lower);
    expect(plan.kind).toBe("live");
    await host.rt.updateInstance(lower);
    expect(await mtu("a", "eth0")).toBe(1400);
    const plain = { ...lower.nics![0]! };
    delete plain.mtu;
    await host.rt.updateInstance({ ...lower, nics: [plain] });
    expect(await mtu("a", "eth0")).toBe(1500);
    expect(host.rt.instances.get("a")!.spec.nics![0]!.mtu).toBeUndefined();
    expect(host.rt.instanceStatus("a").bootCount).toBe(1);
  });

  it("sets it on a hot-plugged NIC", async () => {
    const spec = host.rt.instances.get("a")!.spec;
    const next: InstanceSpec = {
      ...spec,
      nics: [...spec.nics!, { network: "lan", ipv4: "10.0.1.1/24", mtu: 1280 }],
    };
    await host.rt.updateInstance(next);
    expect(await mtu("a", "eth1")).toBe(1280);
    expect(host.rt.instanceStatus("a").bootCount).toBe(1);
  });
});
