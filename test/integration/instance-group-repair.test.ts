import { rmSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { isAlive, type ProcessIdentity } from "../../src/process";
import type { InstanceGroupSpec } from "../../src/spec";
import { TestHost, processesMentioning, sendOverSerial } from "../helpers/runtime";

/**
 * A group damaged behind our back (a member's overlay file, its overlay record,
 * or its instance folder deleted) is reported, and the next apply remakes that
 * member alone; the others keep running untouched (same process, same boot,
 * their uptime still growing).
 */

const v1: InstanceGroupSpec = {
  name: "lab",
  base: "bb",
  members: Object.fromEntries(
    ["a", "b", "c"].map((m, i) => [
      m,
      { memoryMiB: 64, nics: [{ network: "lan", ipv4: `10.0.0.${i + 1}/24` }] },
    ]),
  ),
};

describe("an instance group heals a damaged member", () => {
  const host = new TestHost("grepair");
  const rt = host.rt;

  beforeAll(async () => {
    await rt.ensureBase({ name: "bb", source: { kind: "busybox", sizeMiB: 32 } });
    await rt.ensureNetwork({ name: "lan" });
    await rt.groups.apply(v1);
    await rt.ensureSerialLink({ name: "ab", a: { instance: "a", line: 1 }, b: { instance: "b", line: 1 } });
  });
  afterAll(() => host.destroy());

  const uptimeSec = async (m: string) =>
    Number((await host.sh(m, "cat /proc/uptime")).trim().split(/\s+/)[0]);
  /** What must not change for a member left alone: its process and boot count; and its uptime, which grows. */
  const snapshot = async (m: string) => {
    const r = rt.instances.get(m)!;
    return { process: r.process!, bootCount: r.bootCount, uptimeSec: await uptimeSec(m) };
  };
  const expectUntouched = async (m: string, before: Awaited<ReturnType<typeof snapshot>>) => {
    const r = rt.instances.get(m)!;
    expect(r.process).toEqual(before.process);
    expect(isAlive(r.process)).toBe(true);
    expect(r.bootCount).toBe(before.bootCount);
    expect(await uptimeSec(m)).toBeGreaterThan(before.uptimeSec);
    expect(await host.sh(m, "cat /root/mark")).toContain(`mark of ${m}`);
  };
  /** The serial link a-b carries text from `from` to `to`. */
  const linked = async (from: string, to: string, text: string) =>
    (await sendOverSerial(rt, from, to, text)).includes(text);
  const mark = async (m: string) => host.sh(m, `echo 'mark of ${m}' > /root/mark && sync`);

  for (const lost of ["its overlay file", "its overlay record and file"]) {
    it(`a member that lost ${lost} is reported, and remade alone on a new overlay (its data gone)`, async () => {
      for (const m of ["a", "b", "c"]) await mark(m);
      const before = { b: await snapshot("b"), c: await snapshot("c") };
      const old: ProcessIdentity = rt.instances.get("a")!.process!;
      const overlay = rt.disks.get("a-root")!;
      rmSync(overlay.path);
      if (lost.includes("record")) rmSync(rt.state.diskRecord("a-root"));

      expect(rt.groups.overlayProblem("bb", "a")).toMatch(/a-root/);
      expect(rt.groups.overlayProblem("bb", "b")).toBeUndefined();
      expect(rt.groups.plan(v1, v1).actions).toEqual({ a: "replace", b: "none", c: "none" });

      const r = await rt.groups.apply(v1, v1);
      expect(r.actions).toEqual({ a: "replace", b: "none", c: "none" });
      expect(rt.groups.overlayProblem("bb", "a")).toBeUndefined();
      expect(rt.instanceStatus("a")).toMatchObject({ state: "running", bootCount: 1 });
      expect(isAlive(old)).toBe(false);
      expect((await rt.exec("a", "cat /root/mark")).exitCode).not.toBe(0); // a new overlay: the data is gone
      await expectUntouched("b", before.b);
      await expectUntouched("c", before.c);
      // Its serial link is made again, to its new FIFOs.
      expect(rt.links.isUp(rt.links.get("ab")!)).toBe(true);
      expect(await linked("a", "b", `a-to-b-${lost.length}`)).toBe(true);
      expect(await linked("b", "a", `b-to-a-${lost.length}`)).toBe(true);
      // One guest per member: the old one of `a` is gone, not running beside the new one.
      expect(
        processesMentioning(`${rt.state.root}/instances/a/vm`).filter((l) => /bwrap/.test(l)),
      ).toHaveLength(1); // one sandbox (UML is its pid 1)
    });
  }

  it("a member whose instance folder was deleted (overlay kept) is booted again on its overlay, data kept", async () => {
    for (const m of ["a", "b", "c"]) await mark(m);
    const before = { a: await snapshot("a"), c: await snapshot("c") };
    const old = rt.instances.get("b")!.process!;
    rmSync(rt.state.instanceDir("b"), { recursive: true, force: true });
    expect(isAlive(old)).toBe(true); // its guest still runs, holding the overlay

    expect(rt.groups.plan(v1, v1).actions).toEqual({ a: "none", b: "create", c: "none" });
    const r = await rt.groups.apply(v1, v1);
    expect(r.actions).toEqual({ a: "none", b: "create", c: "none" });
    expect(isAlive(old)).toBe(false);
    expect(rt.instanceStatus("b")).toMatchObject({ state: "running", bootCount: 1 });
    expect(await host.sh("b", "cat /root/mark")).toContain("mark of b");
    await expectUntouched("a", before.a);
    await expectUntouched("c", before.c);
    expect(await linked("a", "b", "a-to-new-b")).toBe(true);
    expect(await linked("b", "a", "new-b-to-a")).toBe(true);
    expect(
      processesMentioning(`${rt.state.root}/instances/b/vm`).filter((l) => /bwrap/.test(l)),
    ).toHaveLength(1); // one sandbox (UML is its pid 1)
  });
});
