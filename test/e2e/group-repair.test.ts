import { rmSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { isAlive } from "../../src/process";
import { sendOverSerial } from "../helpers/runtime";
import { haveCli, useStack, type Lab } from "./stack-harness";

/**
 * A Fleet member whose overlay file was deleted behind our back, with the real
 * CLI: refresh reports it (memberInfo: damaged, naming the overlay), and the
 * next up remakes that member alone; the others keep running untouched, and
 * the serial link from the member (g-0) to g-1 carries text again.
 */

const lab: Lab = { size: 3, group: true };

interface GroupOutputs {
  memberInfo: Record<string, { state: string; problem?: string; pid?: number }>;
  lastChange?: string;
}

describe.skipIf(!haveCli)("a damaged InstanceGroup heals, driven by the real pulumi CLI", () => {
  const { pulumi, rt, ok, leftOnHost } = useStack("e2gr", lab);

  const groupOutputs = (): GroupOutputs => {
    const d = ok(pulumi("export")).deployment!;
    const g = d.deployment.resources.find((r) => r.type.endsWith("umlfleet:InstanceGroup"));
    return g!.outputs as unknown as GroupOutputs;
  };
  const send = (from: string, to: string, text: string) => sendOverSerial(rt(), from, to, text);
  const uptimeSec = async (m: string) =>
    Number((await rt().exec(m, "cat /proc/uptime")).output.trim().split(/\s+/)[0]);

  it("refresh reports the member whose overlay is gone; up remakes it alone", async () => {
    ok(pulumi("up"));
    for (const m of ["g-0", "g-1", "g-2"]) await rt().exec(m, `echo 'mark of ${m}' > /root/mark && sync`);
    const before = await Promise.all(
      ["g-1", "g-2"].map(async (m) => ({ m, record: rt().instances.get(m)!, uptimeSec: await uptimeSec(m) })),
    );
    const oldGuest = rt().instances.get("g-0")!.process!;
    rmSync(rt().disks.get("g-0-root")!.path);

    expect(ok(pulumi("refresh")).summary).toMatchObject({ update: 1 });
    const info = groupOutputs().memberInfo;
    expect(info["g-0"]).toMatchObject({ state: "damaged", problem: expect.stringContaining("g-0-root") });
    expect(info["g-1"]!.state).toBe("running");
    expect(info["g-2"]!.state).toBe("running");
    expect(ok(pulumi("preview")).summary).toMatchObject({ update: 1 });

    ok(pulumi("up"));
    expect(groupOutputs().lastChange).toBe("g-0 replace");
    expect(groupOutputs().memberInfo["g-0"]!.state).toBe("running");
    expect(isAlive(oldGuest)).toBe(false);
    expect(rt().instanceStatus("g-0")).toMatchObject({ state: "running", bootCount: 1 });
    expect((await rt().exec("g-0", "cat /root/mark")).exitCode).not.toBe(0); // a new overlay
    for (const b of before) {
      const now = rt().instances.get(b.m)!;
      expect(now.process).toEqual(b.record.process);
      expect(now.bootCount).toBe(b.record.bootCount);
      expect(await uptimeSec(b.m)).toBeGreaterThan(b.uptimeSec);
      expect((await rt().exec(b.m, "cat /root/mark")).output).toContain(`mark of ${b.m}`);
    }
    // The link is whole again: nothing for refresh to find, nothing left to do.
    expect(await send("g-0", "g-1", "new-g0-to-g1")).toContain("new-g0-to-g1");
    expect(await send("g-1", "g-0", "g1-to-new-g0")).toContain("g1-to-new-g0");
    expect(Object.keys(ok(pulumi("refresh")).summary!)).toEqual(["same"]);
    expect(Object.keys(ok(pulumi("preview")).summary!)).toEqual(["same"]);
  });

  it("destroy leaves no process, socket or file of the stack on the host", () => {
    ok(pulumi("destroy"));
    expect(leftOnHost()).toEqual({ processes: [], files: [] });
  });
});
