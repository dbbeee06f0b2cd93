import { describe, expect, it } from "vitest";
import { guestKernelPid, processesMentioning, sendOverSerial } from "../helpers/runtime";
import { haveCli, useStack, type Lab } from "./stack-harness";

describe.skipIf(!haveCli)("a Fleet as one InstanceGroup resource, driven by the real pulumi CLI", () => {
  const { stateDir, pulumi, rt, ok, leftOnHost } = useStack("e2g", { size: 3, group: true });

  const send = (from: string, to: string, text: string) => sendOverSerial(rt(), from, to, text);

  it("up from nothing: one resource boots every member; members ping, the serial link carries text", async () => {
    const r = ok(pulumi("up"));
    // stack, kernel, base, network, the Fleet component, its group, the link.
    expect(r.summary).toEqual({ create: 7 });
    expect(r.outputs?.names).toEqual(["g-0", "g-1", "g-2"]);
    expect(r.outputs?.states).toEqual(["running", "running", "running"]);
    expect((await rt().exec("g-0", "ping -c 2 -W 5 10.0.0.3")).output).toContain("2 packets received");
    expect(await send("g-0", "g-1", "over-the-cable")).toContain("over-the-cable");
    expect(Object.keys(ok(pulumi("preview")).summary!)).toEqual(["same"]);
  });

  it("a change to every member previews as one update, says live per member, and applies without reboot", async () => {
    const lab: Lab = { size: 3, group: true, memoryMiB: 96 };
    const p = ok(pulumi("preview", lab));
    expect(p.summary).toMatchObject({ update: 1 });
    expect(p.summary!.replace ?? 0).toBe(0);
    expect(p.stdout).toMatch(
      /change\s+: "g-0 live \(memoryMiB\), g-1 live \(memoryMiB\), g-2 live \(memoryMiB\)"/,
    );
    ok(pulumi("up", lab));
    for (const m of ["g-0", "g-1", "g-2"]) {
      expect(rt().instanceStatus(m)).toMatchObject({ state: "running", bootCount: 1, memoryMiB: 96 });
    }
  });

  it("a smaller fleet removes the last member and its overlay; the link between the others stays", async () => {
    const lab: Lab = { size: 2, group: true, memoryMiB: 96 };
    const p = ok(pulumi("preview", lab));
    expect(p.summary).toMatchObject({ update: 1 });
    expect(p.summary!.replace ?? 0).toBe(0);
    // The last update's summary is still in state: the preview shows old => new.
    expect(p.stdout).toMatch(/change\s+: (".*" => )?"g-2 remove"/);
    ok(pulumi("up", lab));
    expect(rt().instances.get("g-2")).toBeUndefined();
    expect(rt().disks.get("g-2-root")).toBeUndefined();
    expect(processesMentioning(`${stateDir}/instances/g-2/`)).toEqual([]);
    expect(await send("g-1", "g-0", "still-linked")).toContain("still-linked");
  });

  it("kill -9 of a member: refresh shows the drift, up restarts it on its overlay", async () => {
    const lab: Lab = { size: 2, group: true, memoryMiB: 96 };
    await rt().exec("g-1", "echo written-before-kill > /root/proof && sync");
    const umlPid = guestKernelPid(stateDir, "g-1");
    process.kill(umlPid, "SIGKILL");
    const refreshed = ok(pulumi("refresh", lab));
    expect(refreshed.summary).toMatchObject({ update: 1 });
    ok(pulumi("up", lab));
    expect(rt().instanceStatus("g-1")).toMatchObject({ state: "running", bootCount: 2 });
    expect((await rt().exec("g-1", "cat /root/proof")).output).toContain("written-before-kill");
  });

  it("destroy leaves no process, socket or file of the stack on the host", () => {
    ok(pulumi("destroy", { size: 2, group: true, memoryMiB: 96 }));
    expect(leftOnHost()).toEqual({ processes: [], files: [] });
  });
});
