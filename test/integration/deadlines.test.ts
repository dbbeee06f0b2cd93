import { existsSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { isUmlfleetError } from "../../src";
import { processesMentioning, TestHost } from "../helpers/runtime";

/**
 * Pulumi never cancels a dynamic provider, so every operation runs under a
 * deadline that really stops it: a guest whose boot hangs (its init's hook
 * sleeps) is killed and cleaned up when the deadline passes or the caller
 * aborts, instead of running on behind a lost Promise.race.
 */
describe("deadlines that cancel", () => {
  const host = new TestHost("dl");
  const held = (name: string) => ({ name, rootDisk: `${name}-root`, bootTimeoutMs: 120_000 });
  const nothingLeft = (name: string) => {
    expect(processesMentioning(`${host.stateDir}/instances/${name}/`)).toEqual([]);
    expect(existsSync(`${host.stateDir}/instances/${name}`)).toBe(false);
  };

  beforeAll(async () => {
    // umlfleet's init runs /etc/umlfleet/rc before it reports ready: this one never lets it.
    await host.rt.ensureBase({
      name: "slow",
      source: {
        kind: "busybox",
        sizeMiB: 32,
        files: [{ path: "/etc/umlfleet/rc", content: "#!/bin/sh\nsleep 600\n", mode: 0o755 }],
      },
    });
    for (const n of ["t", "c"])
      await host.rt.ensureDisk({ name: `${n}-root`, kind: "overlay", base: "slow" });
  });
  afterAll(() => host.destroy());

  it("a create given 1 s while its boot is held ends with UMLFLEET_OPERATION_TIMEOUT soon after, leaving nothing", async () => {
    const started = performance.now();
    const e = await host.rt.createInstance(held("t"), { timeoutMs: 1_000 }).catch((x: unknown) => x);
    const tookMs = performance.now() - started;
    expect(isUmlfleetError(e, "UMLFLEET_OPERATION_TIMEOUT"), String(e)).toBe(true);
    // A generous bound that proves it stopped (the boot alone would wait 120 s).
    expect(tookMs).toBeLessThan(30_000);
    nothingLeft("t");
  });

  it("a create whose caller aborts ends with UMLFLEET_CANCELLED, leaving nothing", async () => {
    const ctl = new AbortController();
    const p = host.rt.createInstance(held("c"), { signal: ctl.signal });
    setTimeout(() => ctl.abort(), 1_000);
    const e = await p.catch((x: unknown) => x);
    expect(isUmlfleetError(e, "UMLFLEET_CANCELLED"), String(e)).toBe(true);
    nothingLeft("c");
  });

  it("a lock held by another operation is not waited for past the deadline", async () => {
    await host.rt.ensureNetwork({ name: "lan" });
    // Hold the network's lock from a second operation that takes long.
    let release!: () => void;
    const holding = new Promise<void>((r) => (release = r));
    const { withLock } = await import("../../src/host/state");
    const holder = withLock(host.rt.state, "network-lan", () => holding);
    const e = await host.rt.ensureNetwork({ name: "lan" }, { timeoutMs: 500 }).catch((x: unknown) => x);
    expect(isUmlfleetError(e, "UMLFLEET_OPERATION_TIMEOUT"), String(e)).toBe(true);
    release();
    await holder;
    await host.rt.removeNetwork("lan");
  });
});
