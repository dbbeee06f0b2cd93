import { existsSync, readdirSync, readFileSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { mgmtSocket } from "../../src/host/impairment";
import { seccompFile } from "../../src/host/seccomp";
import { showInfo } from "../../src/host/wirefilter-mgmt";
import type { InstanceSpec } from "../../src/spec";
import { processesMentioning, TestHost } from "../helpers/runtime";

/**
 * Link impairment through real wirefilters between real guests: what a ping
 * measures inside a guest follows the declared values, before and after a
 * live change, and the guest is never rebooted for it. Tolerances are wide:
 * the machine is shared and loaded, so only the declared delay's lower bound
 * is tight (a wirefilter never delivers early).
 */
const uptime = async (host: TestHost, name: string) =>
  Number((await host.sh(name, "cut -d' ' -f1 /proc/uptime")).trim());

/** Round-trip times (ms) and replies of `count` pings from `from` to `to`, `gapS` apart. */
async function ping(host: TestHost, from: string, to: string, count: number, gapS = 0.2) {
  const r = await host.rt.exec(from, `ping -c ${count} -i ${gapS} -W 2 ${to} 2>&1; true`, {
    timeoutMs: 120_000,
  });
  const rtts = [...r.output.matchAll(/time=([\d.]+) ms/g)].map((m) => Number(m[1]));
  const sorted = [...rtts].sort((a, b) => a - b);
  return { rtts, median: sorted[Math.floor(sorted.length / 2)] ?? NaN, received: rtts.length, out: r.output };
}

const wirefilters = (host: TestHost) =>
  processesMentioning(host.stateDir).filter((p) => /^\d+ \S*\/wirefilter /.test(p));

describe("link impairment through wirefilter", () => {
  const host = new TestHost("impair");
  let a: InstanceSpec;
  let b: InstanceSpec;
  type Impairment = NonNullable<InstanceSpec["nics"]>[number]["impairment"];
  const nicOf = (s: InstanceSpec, impairment: Impairment): InstanceSpec => ({
    ...s,
    nics: [{ ...s.nics![0]!, impairment }],
  });

  beforeAll(async () => {
    await host.lab(["a", "b"], {
      extra: (n) =>
        n === "a" ? { nics: [{ network: "lan", ipv4: "10.0.0.1/24", impairment: { delayMs: 200 } }] } : {},
    });
    a = host.rt.instances.get("a")!.spec;
    b = host.rt.instances.get("b")!.spec;
  }, 240_000);
  afterAll(async () => {
    await host.destroy();
  });

  it("an impaired NIC gets a wirefilter, a plain one none; a ping's round trip carries the declared delay", async () => {
    expect(wirefilters(host)).toHaveLength(1);
    // Sandboxed like a switch: pid 1 of its own namespace, under the seccomp filter where the host applies one.
    const wf = host.rt.instances.get("a")!.wirefilters!["0"]!.sandbox.pid;
    const status = readFileSync(`/proc/${wf}/status`, "utf8");
    expect(status).toMatch(/^NSpid:\s+\d+\s+1$/m);
    if (seccompFile(host.stateDir)) expect(status).toMatch(/^Seccomp:\s+2$/m);
    expect(await showInfo(mgmtSocket(host.rt.state.instanceDir("a"), 0))).toMatchObject({
      Delay: expect.stringMatching(/R->L 200\+0U/),
    });
    const p = await ping(host, "a", "10.0.0.2", 10);
    expect(p.received, p.out).toBeGreaterThanOrEqual(8);
    expect(p.median, p.out).toBeGreaterThanOrEqual(195);
    expect(p.median, p.out).toBeLessThan(200 + 400);
  });

  it("changes the delay live (200 -> 20 ms): the plan says live, the guest is not rebooted", async () => {
    const before = await uptime(host, "a");
    const next = nicOf(a, { delayMs: 20 });
    const plan = host.rt.planInstanceUpdate(next);
    expect(plan).toMatchObject({ kind: "live", changes: [{ field: "/nics/0/impairment", kind: "live" }] });
    await host.rt.updateInstance(next);
    a = next;
    const p = await ping(host, "a", "10.0.0.2", 10);
    expect(p.received, p.out).toBeGreaterThanOrEqual(8);
    expect(p.median, p.out).toBeGreaterThanOrEqual(19);
    expect(p.median, p.out).toBeLessThan(150);
    expect(await uptime(host, "a")).toBeGreaterThan(before);
    expect(host.rt.instanceStatus("a").bootCount).toBe(1);
  });

  it("loses about the declared share of frames (50% over 100 pings)", async () => {
    const next = nicOf(a, { lossPercent: 50 });
    await host.rt.updateInstance(next);
    a = next;
    const p = await ping(host, "a", "10.0.0.2", 100, 0.05);
    expect(p.received, p.out).toBeGreaterThanOrEqual(25);
    expect(p.received, p.out).toBeLessThanOrEqual(75);
  });

  it("jitter spreads the delay; a rate limit delays large frames; duplicates show as DUP!", async () => {
    await host.rt.updateInstance(nicOf(a, { delayMs: 100, jitterMs: 50 }));
    const j = await ping(host, "a", "10.0.0.2", 20, 0.3);
    expect(j.received, j.out).toBeGreaterThanOrEqual(16);
    expect(Math.min(...j.rtts), j.out).toBeGreaterThanOrEqual(49);
    expect(Math.max(...j.rtts) - Math.min(...j.rtts), j.out).toBeGreaterThanOrEqual(20);
    // 64 kbit/s is 8000 bytes/s: a 1442-byte frame takes some 180 ms to pass, a 92-byte one 12 ms.
    await host.rt.updateInstance(nicOf(a, { rateKbit: 64 }));
    const big = await host.rt.exec("a", "ping -c 4 -i 1 -W 3 -s 1400 10.0.0.2 2>&1; true", {
      timeoutMs: 60_000,
    });
    const bigRtts = [...big.output.matchAll(/time=([\d.]+) ms/g)].map((m) => Number(m[1]));
    expect(bigRtts.length, big.output).toBeGreaterThanOrEqual(3);
    expect(Math.min(...bigRtts), big.output).toBeGreaterThanOrEqual(170);
    await host.rt.updateInstance(nicOf(a, { duplicatePercent: 50 }));
    const dup = await host.rt.exec("a", "ping -c 10 -i 0.3 -W 2 10.0.0.2 2>&1; true", { timeoutMs: 60_000 });
    expect(dup.output).toMatch(/DUP!/);
    a = nicOf(a, { duplicatePercent: 50 });
  });

  it("down cuts the link without a reboot; down false restores it", async () => {
    const before = await uptime(host, "a");
    const down = nicOf(a, { down: true });
    await host.rt.updateInstance(down);
    expect((await ping(host, "a", "10.0.0.2", 5)).received).toBe(0);
    await host.rt.updateInstance(nicOf(a, { down: false }));
    const p = await ping(host, "a", "10.0.0.2", 5);
    expect(p.received, p.out).toBeGreaterThanOrEqual(4);
    expect(await uptime(host, "a")).toBeGreaterThan(before);
    expect(host.rt.instanceStatus("a").bootCount).toBe(1);
    a = nicOf(a, { down: false });
  });

  it("re-plugs a plain NIC through a new wirefilter live, its address kept", async () => {
    const before = await uptime(host, "b");
    const next = nicOf(b, { delayMs: 100 });
    expect(host.rt.planInstanceUpdate(next).changes[0]!.why).toContain("re-plug");
    await host.rt.updateInstance(next);
    b = next;
    expect(wirefilters(host)).toHaveLength(2);
    expect(await host.sh("b", "ip addr show eth0")).toContain("10.0.0.2/24");
    // a's NIC adds nothing now (down false, no delay); b's adds 100 ms.
    const p = await ping(host, "a", "10.0.0.2", 6);
    expect(p.received, p.out).toBeGreaterThanOrEqual(5);
    expect(p.median, p.out).toBeGreaterThanOrEqual(98);
    expect(await uptime(host, "b")).toBeGreaterThan(before);
    expect(host.rt.instanceStatus("b").bootCount).toBe(1);
  });

  it.runIf(process.getuid?.() === 0)(
    "a guest run as another uid (runAs) gets a wirefilter run as that uid",
    async () => {
      await host.rt.ensureDisk({ name: "c-root", kind: "overlay", base: "bb" });
      await host.rt.createInstance({
        name: "c",
        rootDisk: "c-root",
        runAs: { pool: true },
        nics: [{ network: "lan", ipv4: "10.0.0.3/24", impairment: { delayMs: 50 } }],
      });
      const uid = host.rt.instances.get("c")!.hostIds!.uid;
      const wf = host.rt.instances.get("c")!.wirefilters!["0"]!.sandbox.pid;
      expect(readFileSync(`/proc/${wf}/status`, "utf8")).toMatch(new RegExp(`^Uid:\\s+${uid}\\s`, "m"));
      const p = await ping(host, "c", "10.0.0.1", 4);
      expect(p.received, p.out).toBeGreaterThanOrEqual(3);
      expect(p.median, p.out).toBeGreaterThanOrEqual(49);
      await host.rt.removeInstance("c");
      await host.rt.removeDisk("c-root");
    },
  );

  it("a restart keeps the impairment; removing the instance leaves no wirefilter and no socket", async () => {
    await host.rt.restartInstance("b");
    expect(wirefilters(host)).toHaveLength(2);
    const p = await ping(host, "a", "10.0.0.2", 4);
    expect(p.median, p.out).toBeGreaterThanOrEqual(98);
    const dir = host.rt.state.instanceDir("b");
    await host.rt.removeInstance("b");
    expect(wirefilters(host)).toHaveLength(1);
    expect(existsSync(dir)).toBe(false);
    await host.rt.stopInstance("a");
    expect(wirefilters(host)).toHaveLength(0);
    const aDir = host.rt.state.instanceDir("a");
    expect(readdirSync(aDir)).not.toContain("wf");
    expect(existsSync(`${aDir}/links`)).toBe(false);
  });
});
