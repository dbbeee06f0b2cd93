import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildKernel } from "../../src";
import { TestHost } from "../helpers/runtime";

/**
 * The lean kernel built from Debian's linux-source-6.1 (scripts/build-kernel.sh,
 * cached by content hash; test.sh builds it before the suite, so here it is a
 * cache hit) runs everything umlfleet drives.
 */
describe("the lean kernel", () => {
  const host = new TestHost("lean");
  let kernel = "";
  beforeAll(async () => {
    kernel = await buildKernel();
    await host.lab(["a", "b"], { extra: () => ({ kernel }) });
  }, 50 * 60_000);
  afterAll(() => host.destroy());

  it("boots guests that ping each other over the switch", async () => {
    expect(host.rt.instanceStatus("a").state).toBe("running");
    expect(await host.sh("a", "ping -c 2 -W 5 10.0.0.2")).toMatch(/2 packets received/);
  });

  it("is the lean profile, with the parallel-boot hang configured away (VMAP_STACK off)", async () => {
    const config = await host.sh(
      "a",
      "zcat /proc/config.gz | grep -E 'VMAP_STACK|CONFIG_HOSTFS|CONFIG_BRIDGE=|CONFIG_UML_NET_VDE'",
    );
    expect(config).toContain("# CONFIG_VMAP_STACK is not set");
    expect(config).toContain("CONFIG_HOSTFS=y");
    expect(config).toContain("CONFIG_BRIDGE=y");
    expect(config).toContain("CONFIG_UML_NET_VDE=y");
  });

  it("supports hot-plug and the memory balloon like Debian's kernel", async () => {
    await host.rt.ensureDisk({ name: "data", kind: "blank", sizeMiB: 8 });
    const spec = host.rt.instances.get("b")!.spec;
    await host.rt.updateInstance({ ...spec, disks: [{ disk: "data" }] });
    expect(await host.sh("b", "ls /sys/block")).toContain("ubdb");
    expect(host.rt.instanceStatus("b").bootCount).toBe(1);
  });
});
