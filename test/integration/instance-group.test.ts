import { existsSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { InstanceGroupSpec } from "../../src/spec";
import { bootTrace } from "../../src/host/instance/boot-trace";
import { TestHost, processesMentioning } from "../helpers/runtime";

const group = (members: InstanceGroupSpec["members"]): InstanceGroupSpec => ({
  name: "lab",
  base: "bb",
  members,
});
const member = (i: number, extra: object = {}) => ({
  memoryMiB: 64,
  maxMemoryMiB: 96,
  nics: [{ network: "lan", ipv4: `10.0.0.${i}/24` }],
  ...extra,
});

describe("an instance group: many instances applied as one", () => {
  const host = new TestHost("group");
  const gs = () => host.rt.groups;
  let v1: InstanceGroupSpec;

  beforeAll(async () => {
    await host.rt.ensureBase({ name: "bb", source: { kind: "busybox", sizeMiB: 32 } });
    await host.rt.ensureNetwork({ name: "lan" });
  });
  afterAll(() => host.destroy());

  it("refuses a member naming a missing network before making anything", async () => {
    const before = await host.rt.inventory();
    const bad = group({ a: member(1), b: { nics: [{ network: "nope" }] } });
    await expect(gs().apply(bad)).rejects.toMatchObject({
      code: "UMLFLEET_NOT_FOUND",
      details: { field: "/members/b/nics/0/network", value: "nope" },
    });
    expect(await host.rt.inventory()).toEqual(before);
  });

  it("refuses an invalid member spec, naming the member's field and value", async () => {
    const bad = group({ a: member(1, { memoryMiB: 4 }) });
    await expect(gs().apply(bad)).rejects.toThrow(/\/members\/a\/memoryMiB.*4/);
    expect(host.rt.instances.list()).toEqual([]);
  });

  it("refuses a member whose name another instance holds, before making anything", async () => {
    await host.rt.ensureDisk({ name: "solo-root", kind: "overlay", base: "bb" });
    await host.rt.createInstance({ name: "solo", rootDisk: "solo-root", memoryMiB: 64 });
    await expect(gs().apply(group({ a: member(1), solo: member(9) }))).rejects.toMatchObject({
      code: "UMLFLEET_CONFLICT",
      details: { field: "/members/solo" },
    });
    expect(host.rt.instances.list()).toEqual(["solo"]);
    expect(host.rt.instanceStatus("solo").bootCount).toBe(1);
    await host.rt.removeInstance("solo");
    await host.rt.removeDisk("solo-root");
  });

  it("creates every member on its own overlay in one apply; members ping each other", async () => {
    v1 = group({ a: member(1), b: member(2), c: member(3) });
    const r = await gs().apply(v1);
    expect(r.actions).toEqual({ a: "create", b: "create", c: "create" });
    for (const m of ["a", "b", "c"]) {
      expect(host.rt.instanceStatus(m).state).toBe("running");
      expect(host.rt.disks.get(`${m}-root`)!.spec).toMatchObject({ kind: "overlay", base: "bb" });
    }
    expect(await host.sh("a", "ping -c 1 -W 5 10.0.0.3")).toMatch(/1 packets received/);
    // Applying the same spec again changes nothing.
    expect((await gs().apply(v1, v1)).actions).toEqual({ a: "none", b: "none", c: "none" });
    expect(host.rt.instanceStatus("a").bootCount).toBe(1);
  });

  it("updates, adds and removes members in one apply: live changes keep the guest up", async () => {
    await host.sh("b", "echo kept > /root/mark && sync");
    const v2 = group({ a: member(1), b: member(2, { memoryMiB: 80 }), d: member(4) });
    expect(gs().plan(v2, v1).actions).toEqual({ c: "remove", a: "none", b: "update", d: "create" });
    const r = await gs().apply(v2, v1);
    expect(r.actions).toEqual({ c: "remove", a: "none", b: "update", d: "create" });
    expect(r.plans.b?.kind).toBe("live");
    expect(host.rt.instanceStatus("b").bootCount).toBe(1);
    expect(await host.sh("b", "cat /root/mark")).toContain("kept");
    expect(host.rt.instances.get("c")).toBeUndefined();
    expect(host.rt.disks.get("c-root")).toBeUndefined();
    expect(processesMentioning(`${host.stateDir}/instances/c/`)).toEqual([]);
    expect(await host.sh("d", "ping -c 1 -W 5 10.0.0.2")).toMatch(/1 packets received/);
    v1 = v2;
  });

  it("restarts a member found stopped (drift) when applied again", async () => {
    await host.rt.stopInstance("a");
    const r = await gs().apply(v1, v1);
    expect(r.actions.a).toBe("none");
    expect(host.rt.instanceStatus("a")).toMatchObject({ state: "running", bootCount: 2 });
  });

  it("remove takes every member and its overlay, and nothing else", async () => {
    await gs().remove(v1);
    expect(host.rt.instances.list()).toEqual([]);
    expect(host.rt.state.list("disks")).toEqual([]);
    expect(host.rt.networkStatus("lan")?.running).toBe(true);
    expect(existsSync(`${host.stateDir}/instances`) ? host.rt.instances.list() : []).toEqual([]);
  });

  it("a first apply with a failing member removes the members it made", async () => {
    // 8 MiB is valid but too little for the kernel to boot (see boot-failure.test.ts).
    const bad = group({
      x: member(5),
      y: member(6, { memoryMiB: 8, maxMemoryMiB: 8, bootTimeoutMs: 30_000 }),
    });
    await expect(gs().apply(bad)).rejects.toThrow(
      /member y: .*1 of 2 members failed: y; the members this apply made were removed/s,
    );
    expect(host.rt.instances.list()).toEqual([]);
    expect(host.rt.state.list("disks")).toEqual([]);
    expect(processesMentioning(`${host.stateDir}/instances/`)).toEqual([]);
  });

  it("a group larger than one wave boots every member; the next wave starts before the first is ready", async () => {
    // 40 members: a wave of 32 (groups.ts parallelism() on this 2-core host), then 8.
    const names = Array.from({ length: 40 }, (_, i) => `w${i}`);
    const big: InstanceGroupSpec = {
      name: "big",
      base: "bb",
      members: Object.fromEntries(names.map((n) => [n, { memoryMiB: 64, bootTimeoutMs: 300_000 }])),
    };
    const order: string[] = [];
    bootTrace.mark = (instance, step) => {
      if (["boot", "launched", "outcome:ready"].includes(step)) order.push(`${step} ${instance}`);
    };
    try {
      await gs().apply(big);
    } finally {
      bootTrace.mark = undefined;
    }
    for (const n of names) expect(host.rt.instanceStatus(n).state, n).toBe("running");
    // The second wave began its boots (bootGuest) while some guest of the first wave was still booting
    // (its launch needs every one of its members prepared, which takes as long as the machine is busy).
    const launches = order.filter((e) => e.startsWith("launched")).map((e) => e.split(" ")[1]!);
    expect(launches).toHaveLength(40);
    const firstWave = new Set(launches.slice(0, 32));
    const secondWaveStart = order.findIndex((e) => e.startsWith("boot") && !firstWave.has(e.split(" ")[1]!));
    const lastFirstWaveReady = Math.max(
      ...order.flatMap((e, i) =>
        e.startsWith("outcome:ready") && firstWave.has(e.split(" ")[1]!) ? [i] : [],
      ),
    );
    expect(secondWaveStart).toBeGreaterThan(-1);
    expect(secondWaveStart).toBeLessThan(lastFirstWaveReady);
    await gs().remove(big);
    expect(host.rt.instances.list()).toEqual([]);
  }, 600_000);
});
