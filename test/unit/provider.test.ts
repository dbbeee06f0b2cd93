import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { UmlfleetError } from "../../src/errors";
import { useDriverFactory } from "../../provider/driver-factory";
import * as impl from "../../provider/impl";
import { FakeDriver } from "../helpers/fake-driver";
import { providerContract } from "../helpers/provider-contract";

/** The provider's logic against an in-memory HostDriver: no UML, no files. */
describe("the provider over a fake host driver", () => {
  const fakes = new Map<string, FakeDriver>();
  const fake = (dir: string) => fakes.get(dir)!;
  /** Per driver call: its method and the owner its options named. */
  const owners: [string, unknown][] = [];
  beforeAll(() =>
    useDriverFactory((dir) => {
      const d = new FakeDriver(dir);
      fakes.set(dir, d);
      // Every call's options (its last argument) are recorded; "x/intruder" is another stack.
      return new Proxy(d, {
        get(target, key, receiver) {
          const v = Reflect.get(target, key, receiver) as unknown;
          if (typeof v !== "function") return v;
          // On "/fake/taken", network "taken", instance "gm" and its overlay are stack "x/owner"'s.
          if (key === "inventory" && target.stateDir === "/fake/taken")
            return async () => ({
              ...(await target.inventory()),
              owners: {
                networks: { taken: ["x/owner"] },
                instances: { gm: ["x/owner"] },
                disks: { "gm-root": ["x/owner"] },
              },
            });
          return (...args: unknown[]) => {
            const opts = args.at(-1) as { owner?: string } | undefined;
            if (opts && typeof opts === "object" && "signal" in opts) owners.push([String(key), opts.owner]);
            if (opts?.owner === "x/intruder")
              throw new UmlfleetError("UMLFLEET_CONFLICT", "belongs to stack x/owner", {
                owners: ["x/owner"],
                owner: opts.owner,
              });
            return (v as (...a: unknown[]) => unknown).apply(target, args);
          };
        },
      });
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

  it("a network's cable kind is checked before any step, and changes in place", async () => {
    const hosts = ["a", "b"].map((n) => ({
      hostId: `ssh://u@${n}:22`,
      ssh: { host: n, user: "u", hostKey: "ssh-ed25519 AAAA" },
      stateDir: "/s",
    }));
    const bad = await impl.check("network", {}, { name: "n", hosts, cable: "tcp" });
    expect(bad.failures).toEqual([
      { property: "cable", reason: 'network/cable: "ssh" or "udp" (got "tcp")' },
    ]);
    const alone = await impl.check("network", {}, { name: "n", cable: "udp" });
    expect(alone.failures.map((f) => f.reason)).toEqual([
      'network/cable: joins a network\'s switches on several hosts; give `hosts` too (got cable "udp" without hosts)',
    ]);
    const ok = await impl.check("network", {}, { name: "n", hosts, cable: "udp" });
    expect(ok.failures).toEqual([]);
    const d = await impl.diff("network", "n", { name: "n", hosts, running: true }, ok.inputs);
    expect(d.detailedDiff).toEqual({ cable: { kind: "update", inputDiff: true } });
    expect(d.replaces).toEqual([]);
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

  it("the stack's owner reaches the host in CallOptions on create, update and delete", async () => {
    const h = { stateDir: "/fake/o", owner: "proj/alice" };
    owners.length = 0;
    const base = await impl.create("base", { ...h, name: "ob", source: { kind: "busybox" } });
    const net = await impl.create("network", { ...h, name: "on" });
    await impl.update("network", "on", { ...net.outs, running: false }, { ...h, name: "on" });
    await impl.remove("network", "on", net.outs);
    await impl.remove("base", "ob", base.outs);
    expect(owners).toEqual([
      ["ensureBase", "proj/alice"],
      ["ensureNetwork", "proj/alice"],
      ["ensureNetwork", "proj/alice"],
      ["removeNetwork", "proj/alice"],
      ["removeBase", "proj/alice"],
    ]);
  });

  it("diff ignores the owner: a resource recorded before owners were passed previews no change", async () => {
    const h = { stateDir: "/fake/u" };
    const cases: [impl.Kind, Record<string, unknown>][] = [
      ["base", { name: "ub", source: { kind: "busybox" } }],
      ["disk", { name: "u-root", kind: "overlay", base: "ub" }],
      ["network", { name: "un" }],
      ["instance", { name: "u", rootDisk: "u-root" }],
      ["instance-group", { name: "ug", base: "ub", members: { "ug-0": {} } }],
    ];
    for (const [kind, spec] of cases) {
      const made = await impl.create(kind, { ...h, ...spec });
      const { inputs } = await impl.check(kind, made.outs, { ...h, ...spec, owner: "proj/alice" });
      const diff = await impl.diff(kind, String(spec.name), made.outs, inputs);
      expect(diff, kind).toMatchObject({ changes: false, replaces: [] });
      // And another stack's name for it would change nothing either: the host decides.
      const moved = await impl.diff(kind, String(spec.name), { ...made.outs, owner: "proj/bob" }, inputs);
      expect(moved.changes, kind).toBe(false);
    }
  });

  it("another stack's resource of that name is no partial failure: nothing of it enters this stack", async () => {
    const h = { stateDir: "/fake/c" };
    await impl.create("base", { ...h, name: "cb", source: { kind: "busybox" } });
    await impl.create("disk", { ...h, name: "c-root", kind: "overlay", base: "cb" });
    await impl.create("instance", { ...h, name: "c", rootDisk: "c-root", owner: "x/owner" });
    const e = (await impl
      .create("instance", { ...h, name: "c", rootDisk: "c-root", owner: "x/intruder" })
      .catch((x: unknown) => x)) as Error & { id?: string };
    expect(e.message).toContain("UMLFLEET_CONFLICT");
    expect(e.id).toBeUndefined();
  });

  it("check says at preview that a name is another stack's on its host; its own names and bases pass", async () => {
    const h = { stateDir: "/fake/taken" };
    const net = await impl.check("network", {}, { ...h, name: "taken", owner: "x/intruder" });
    expect(net.failures).toEqual([
      {
        property: "name",
        reason: expect.stringMatching(
          /^\[UMLFLEET_CONFLICT\] network\/name: "taken" belongs to stack "x\/owner" on this host \(state folder \/fake\/taken\), not to "x\/intruder"; .*another name, or another stateDir$/,
        ),
      },
    ]);
    const group = await impl.check(
      "instance-group",
      {},
      { ...h, name: "g", base: "b", members: { gm: {} }, owner: "x/intruder" },
    );
    expect(group.failures.map((f) => f.reason)).toEqual([
      expect.stringContaining('instance-group/members/gm: "gm" belongs to stack "x/owner"'),
      expect.stringContaining('instance-group/members/gm: its overlay "gm-root" belongs to stack "x/owner"'),
    ]);
    expect((await impl.check("network", {}, { ...h, name: "taken", owner: "x/owner" })).failures).toEqual([]);
    expect((await impl.check("network", {}, { ...h, name: "free", owner: "x/intruder" })).failures).toEqual(
      [],
    );
    expect((await impl.check("network", {}, { ...h, name: "taken" })).failures).toEqual([]);
  });
});

describe("the serialized provider objects", () => {
  it("are one object per resource kind (Pulumi caches a serialization by identity), carrying only the kind", async () => {
    const { makeProvider } = await import("../../provider/shim");
    expect(makeProvider("instance")).toBe(makeProvider("instance"));
    expect(makeProvider("instance")).not.toBe(makeProvider("disk"));
    const { serializeFunction } = await import("@pulumi/pulumi/runtime");
    const p = makeProvider("network");
    const { text } = await serializeFunction(() => p, { allowSecrets: true });
    expect(text).toContain('kind: "network"');
    expect(text).not.toMatch(/providers|Map/);
  });
});
