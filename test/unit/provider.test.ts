import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { useDriverFactory } from "../../provider/driver-factory";
import * as impl from "../../provider/impl";
import { FakeDriver } from "../helpers/fake-driver";
import { providerContract } from "../helpers/provider-contract";

/** The provider's logic against an in-memory HostDriver: no UML, no files. */
describe("the provider over a fake host driver", () => {
  const fakes = new Map<string, FakeDriver>();
  const fake = (dir: string) => fakes.get(dir)!;
  beforeAll(() =>
    useDriverFactory((dir) => {
      const d = new FakeDriver(dir);
      fakes.set(dir, d);
      return d;
    }),
  );
  afterAll(() => useDriverFactory(undefined));

  describe("the contract", () => {
    providerContract({ stateDir: () => "/fake/state", kernel: () => "/fake/linux" });
  });

  it("check fills the driver's default state folder into inputs that name none", async () => {
    const { inputs } = await impl.check("network", {}, { name: "n" });
    expect(typeof inputs.stateDir).toBe("string");
    expect(inputs.stateDir).not.toBe("");
  });

  it("a group change previews per member and applies as one update", async () => {
    const h = { stateDir: "/fake/g" };
    await impl.create("base", { ...h, name: "gb", source: { kind: "busybox" } });
    const v1 = {
      ...h,
      name: "g",
      base: "gb",
      members: { "g-0": { memoryMiB: 64, maxMemoryMiB: 128 }, "g-1": {} },
    };
    const made = await impl.create("instance-group", v1);
    expect(Object.keys(made.outs.memberInfo as object)).toEqual(["g-0", "g-1"]);
    const v2 = { ...v1, members: { "g-0": { memoryMiB: 96, maxMemoryMiB: 128 } } };
    const { inputs } = await impl.check("instance-group", made.outs, v2);
    expect(inputs.change).toBe("g-1 remove, g-0 live (memoryMiB)");
    expect(await impl.diff("instance-group", "g", made.outs, inputs)).toMatchObject({
      changes: true,
      replaces: [],
    });
    const { outs } = await impl.update("instance-group", "g", made.outs, inputs);
    expect(outs.lastChange).toBe("g-1 remove, g-0 live (memoryMiB)");
    expect(fake("/fake/g").instances.has("g-1")).toBe(false);
  });

  it("a create that fails after the resource came to exist is a partial failure: its id and outputs kept", async () => {
    const h = { stateDir: "/fake/p" };
    await impl.create("base", { ...h, name: "pb", source: { kind: "busybox" } });
    await impl.create("disk", { ...h, name: "p-root", kind: "overlay", base: "pb" });
    fake("/fake/p").failNext("createInstance");
    const e = (await impl
      .create("instance", { ...h, name: "p", rootDisk: "p-root", __provider: "serialized" })
      .catch((x: unknown) => x)) as Error & { id?: string; properties?: Record<string, unknown> };
    expect(e.message).toContain("UMLFLEET_BOOT_FAILED");
    expect(e.id).toBe("p");
    expect(e.properties).toMatchObject({ state: "running", instanceId: "iid-p", __provider: "serialized" });
  });

  it("a create that left nothing behind fails plainly", async () => {
    const e = (await impl
      .create("instance", { stateDir: "/fake/q", name: "q", rootDisk: "nope" })
      .catch((x: unknown) => x)) as Error & { id?: string };
    expect(e.message).toContain("UMLFLEET_NOT_FOUND");
    expect(e.id).toBeUndefined();
  });
});
