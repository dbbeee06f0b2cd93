import { expect, it } from "vitest";
import * as impl from "../../provider/impl";

/**
 * What the provider promises whatever the driver under it: check names bad
 * fields before any step, a live change previews and applies as an update,
 * a new kernel replaces, outputs come from the host, delete leaves nothing
 * that read can find. Run against the fake driver (test/unit/provider.test.ts)
 * and against LocalRuntime with real guests (test/integration/provider-contract.test.ts).
 */
export function providerContract(env: { stateDir: () => string; kernel: () => string }): void {
  const h = () => ({ stateDir: env.stateDir() });
  const instance = (extra: Record<string, unknown> = {}) => ({
    ...h(),
    name: "pc",
    kernel: env.kernel(),
    kernelSha256: "k1",
    rootDisk: "pc-root",
    rootDiskId: "d1",
    memoryMiB: 64,
    maxMemoryMiB: 128,
    nics: [{ network: "pcnet", ipv4: "10.9.0.1/24" }],
    ...extra,
  });

  it("check names a bad field and its value, and adds nothing else", async () => {
    const { failures } = await impl.check(
      "instance",
      {},
      instance({ nics: [{ network: "pcnet", mac: "zz" }] }),
    );
    expect(failures).toEqual([
      { property: "nics", reason: expect.stringMatching(/^instance\/nics\/0\/mac: .*\(got "zz"\)$/) },
    ]);
    const bad = await impl.check("network", {}, { name: "n", stateDir: "/tmp/a b" });
    expect(bad.failures).toEqual([
      { property: "stateDir", reason: expect.stringContaining("network/stateDir") },
    ]);
  });

  it("create makes what the specs say; the outputs come from the host", async () => {
    const net = await impl.create("network", { ...h(), name: "pcnet" });
    expect(net).toMatchObject({
      id: "pcnet",
      outs: { running: true, switchDir: expect.stringContaining("pcnet") },
    });
    const base = await impl.create("base", {
      ...h(),
      name: "pcbase",
      source: { kind: "busybox", sizeMiB: 32 },
    });
    expect(base.outs).toMatchObject({ imageSha: expect.stringMatching(/^[0-9a-f]{64}$/), drift: "" });
    const disk = await impl.create("disk", { ...h(), name: "pc-root", kind: "overlay", base: "pcbase" });
    expect(disk.outs).toMatchObject({ diskId: expect.any(String), path: expect.stringContaining("pc-root") });
    const inst = await impl.create("instance", instance());
    expect(inst.outs).toMatchObject({ state: "running", bootCount: 1, instanceId: expect.any(String) });
    expect(inst.outs.nicInfo).toEqual([expect.objectContaining({ network: "pcnet", ipv4: "10.9.0.1/24" })]);
  });

  it("a memory change within the boot memory previews as live and applies without a reboot", async () => {
    const olds = (await impl.read("instance", "pc", instance())).props!;
    const { inputs } = await impl.check("instance", olds, instance({ memoryMiB: 96 }));
    expect(inputs.change).toBe("live: memoryMiB live");
    const d = await impl.diff("instance", "pc", olds, inputs);
    expect(d).toMatchObject({ changes: true, replaces: [] });
    const { outs } = await impl.update("instance", "pc", olds, inputs);
    expect(outs).toMatchObject({ state: "running", bootCount: 1, lastChange: { kind: "live" } });
    // The same inputs again: nothing to do.
    expect((await impl.diff("instance", "pc", outs, instance({ memoryMiB: 96 }))).changes).toBe(false);
  });

  it("a new kernel (a changed identity) replaces", async () => {
    const olds = (await impl.read("instance", "pc", instance({ memoryMiB: 96 }))).props!;
    const d = await impl.diff("instance", "pc", olds, instance({ memoryMiB: 96, kernelSha256: "k2" }));
    expect(d.replaces).toContain("kernelSha256");
  });

  it("delete leaves nothing that read can find", async () => {
    await impl.remove("instance", "pc", instance());
    await impl.remove("disk", "pc-root", { ...h(), name: "pc-root", kind: "overlay", base: "pcbase" });
    await impl.remove("base", "pcbase", { ...h(), name: "pcbase" });
    await impl.remove("network", "pcnet", { ...h(), name: "pcnet" });
    expect((await impl.read("instance", "pc", instance())).id).toBeUndefined();
    expect((await impl.read("disk", "pc-root", h())).id).toBeUndefined();
    expect((await impl.read("network", "pcnet", h())).id).toBeUndefined();
  });
}
