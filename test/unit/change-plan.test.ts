import { describe, expect, it } from "vitest";
import { planInstanceChange } from "../../src";
import type { InstanceSpec } from "../../src/spec";

const base: InstanceSpec = {
  name: "a",
  rootDisk: "a-root",
  kernel: "/usr/bin/linux.uml",
  memoryMiB: 64,
  maxMemoryMiB: 128,
  nics: [{ network: "lan" }],
  disks: [{ disk: "d1" }],
};

describe("planInstanceChange", () => {
  it("no change -> none", () =>
    expect(planInstanceChange(base, { ...base })).toEqual({ kind: "none", changes: [] }));
  it("login and runAs -> restart (applied at boot), never live or replace; the plan shows no hash", () => {
    const login = { sshPublicKeys: ["ssh-ed25519 AAAA a@b"], passwordHash: "$6$s$secrethashvalue" };
    const plan = planInstanceChange(base, { ...base, login });
    expect(plan).toEqual({
      kind: "restart",
      changes: [{ field: "/login", kind: "restart", why: "login is applied by umlfleet's init at boot" }],
    });
    expect(JSON.stringify(plan)).not.toContain("secrethashvalue");
    expect(planInstanceChange(base, { ...base, runAs: { pool: true } })).toMatchObject({
      kind: "restart",
      changes: [{ field: "/runAs", kind: "restart" }],
    });
  });
  it("a NIC's mtu -> live through the control channel; without one (readiness mconsole) -> restart", () => {
    const lower = { ...base, nics: [{ network: "lan", mtu: 1458 }] };
    expect(planInstanceChange(base, lower)).toEqual({
      kind: "live",
      changes: [{ field: "/nics/0/mtu", kind: "live", why: "set in the running guest (ip link set mtu)" }],
    });
    expect(planInstanceChange(lower, base).kind).toBe("live");
    expect(planInstanceChange(lower, { ...lower, nics: [{ network: "lan", mtu: 1500 }] }).kind).toBe("live");
    expect(planInstanceChange(base, { ...base, nics: [{ network: "lan", mtu: 1500 }] }).kind).toBe("none");
    const own = { ...base, readiness: "mconsole" as const };
    expect(planInstanceChange(own, { ...own, nics: [{ network: "lan", mtu: 1400 }] }).kind).toBe("restart");
  });
  it("kernel, rootDisk -> replace", () => {
    expect(planInstanceChange(base, { ...base, kernel: "/opt/lean/linux" }).kind).toBe("replace");
    expect(planInstanceChange(base, { ...base, rootDisk: "other" }).kind).toBe("replace");
  });
  it("memory within the boot ceiling -> live, above it -> restart", () => {
    expect(planInstanceChange(base, { ...base, memoryMiB: 128 }).kind).toBe("live");
    expect(planInstanceChange(base, { ...base, memoryMiB: 32 }).kind).toBe("live");
    expect(planInstanceChange(base, { ...base, memoryMiB: 256, maxMemoryMiB: 256 }).kind).toBe("restart");
    expect(
      planInstanceChange(
        { ...base, maxMemoryMiB: undefined },
        { ...base, maxMemoryMiB: undefined, memoryMiB: 96 },
      ).kind,
    ).toBe("restart");
  });
  it("disks appended or removed at the end -> live; reordered -> restart", () => {
    expect(planInstanceChange(base, { ...base, disks: [{ disk: "d1" }, { disk: "d2" }] }).kind).toBe("live");
    expect(planInstanceChange(base, { ...base, disks: [] }).kind).toBe("live");
    expect(
      planInstanceChange(
        { ...base, disks: [{ disk: "d1" }, { disk: "d2" }] },
        { ...base, disks: [{ disk: "d2" }, { disk: "d1" }] },
      ).kind,
    ).toBe("restart");
  });
  it("a NIC on a network the guest booted with -> live; on a new network -> restart", () => {
    expect(planInstanceChange(base, { ...base, nics: [{ network: "lan" }, { network: "lan" }] }).kind).toBe(
      "live",
    );
    const p = planInstanceChange(base, { ...base, nics: [{ network: "lan" }, { network: "dmz" }] });
    expect(p.kind).toBe("restart");
    expect(p.changes[0]!.why).toContain("dmz");
  });
  it("a NIC's impairment -> live, set or re-plugged through a wirefilter; other NIC fields still count", () => {
    const impaired = { ...base, nics: [{ network: "lan", impairment: { delayMs: 200 } }] };
    const added = planInstanceChange(base, impaired);
    expect(added).toEqual({
      kind: "live",
      changes: [
        {
          field: "/nics/0/impairment",
          kind: "live",
          why: "re-plug the NIC through a wirefilter (hot-plug, no reboot)",
        },
      ],
    });
    const changed = planInstanceChange(impaired, {
      ...base,
      nics: [{ network: "lan", impairment: { delayMs: 20, down: true } }],
    });
    expect(changed.kind).toBe("live");
    expect(changed.changes[0]!.why).toContain("management socket");
    expect(planInstanceChange(impaired, base).kind).toBe("live");
    // An impairment with a NIC added behind: both live.
    const both = planInstanceChange(base, { ...impaired, nics: [...impaired.nics, { network: "lan" }] });
    expect(both.kind).toBe("live");
    expect(both.changes.map((c) => c.field)).toEqual(["/nics", "/nics/0/impairment"]);
    // A NIC changed in place besides its impairment is still a restart.
    const moved = planInstanceChange(impaired, {
      ...base,
      nics: [{ network: "lan", ipv4: "10.0.0.9/24", impairment: { delayMs: 5 } }],
    });
    expect(moved.kind).toBe("restart");
  });
  it("boot-time fields -> restart; bookkeeping -> none", () => {
    for (const f of [
      { hostname: "x" },
      { serialLines: 4 },
      { kernelArgs: ["quiet"] },
      { shares: [] },
      { swapDisk: "s" },
    ]) {
      expect(planInstanceChange(base, { ...base, ...f }).kind, JSON.stringify(f)).toBe("restart");
    }
    expect(planInstanceChange(base, { ...base, bootTimeoutMs: 5000 }).kind).toBe("none");
  });
  it("reports the worst kind and every changed field", () => {
    const p = planInstanceChange(base, { ...base, memoryMiB: 100, hostname: "h", kernel: "/k" });
    expect(p.kind).toBe("replace");
    expect(p.changes.map((c) => c.field).sort()).toEqual(["/hostname", "/kernel", "/memoryMiB"]);
  });
});
