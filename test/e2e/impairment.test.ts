import { describe, expect, it } from "vitest";
import { haveCli, useStack, type Lab } from "./stack-harness";

/**
 * A NIC's impairment through the real pulumi CLI: `up` puts it in place, a
 * changed delay previews as an in-place update that says live, and `up`
 * applies it without a reboot (the guest's boot id stays).
 */
describe.skipIf(!haveCli)("link impairment through the pulumi CLI", () => {
  const slow: Lab = { size: 2, impairment: { delayMs: 200 } };
  const { pulumi, rt, ok, leftOnHost } = useStack("e2e-impair", slow);
  const medianRtt = async () => {
    const out = (await rt().exec("m0", "ping -c 6 -i 0.2 -W 2 10.0.0.2 2>&1; true")).output;
    const t = [...out.matchAll(/time=([\d.]+) ms/g)].map((m) => Number(m[1])).sort((a, b) => a - b);
    expect(t.length, out).toBeGreaterThanOrEqual(5);
    return t[Math.floor(t.length / 2)]!;
  };
  const bootId = async () => (await rt().exec("m0", "cat /proc/sys/kernel/random/boot_id")).output.trim();

  it("up puts the delay on m0's NIC", async () => {
    ok(pulumi("up"));
    expect(await medianRtt()).toBeGreaterThanOrEqual(195);
  });

  it("a new delay previews as a live in-place update and applies without a reboot", async () => {
    const fast: Lab = { ...slow, impairment: { delayMs: 20 } };
    const id = await bootId();
    const p = ok(pulumi("preview", fast));
    expect(p.summary).toMatchObject({ update: 1 });
    expect(p.summary!.replace ?? 0).toBe(0);
    expect(p.stdout).toMatch(/change\s+: "live: nics\/0\/impairment live"/);
    ok(pulumi("up", fast));
    expect(await bootId()).toBe(id);
    const rtt = await medianRtt();
    expect(rtt).toBeGreaterThanOrEqual(19);
    expect(rtt).toBeLessThan(150);
    expect(Object.keys(ok(pulumi("preview", fast)).summary!)).toEqual(["same"]);
  });

  it("destroy leaves no wirefilter, process or file of the stack", () => {
    ok(pulumi("destroy"));
    expect(leftOnHost()).toEqual({ processes: [], files: [] });
  });
});
