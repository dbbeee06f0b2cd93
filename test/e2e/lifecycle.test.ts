import { execFileSync } from "node:child_process";
import { copyFileSync, existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { guestKernelPid, processesMentioning, testKernel } from "../helpers/runtime";
import { haveCli, useStack, type Lab } from "./stack-harness";

describe.skipIf(!haveCli)("the Pulumi resources, driven by the real pulumi CLI", () => {
  const { dir, stateDir, pulumi, rt, ok, leftOnHost } = useStack("e2e", { size: 2 });
  const uptime = async (name: string) =>
    Number((await rt().exec(name, "cut -d' ' -f1 /proc/uptime")).output.trim());

  it("an invalid Args value fails preview with a message naming the field, and nothing is created", () => {
    const r = pulumi("preview", { size: 1, invalidMac: "01:00:5e:00:00:01" });
    expect(r.error).toBeDefined();
    expect(r.stdout + r.error).toMatch(/instance\/nics\/0\/mac/);
    expect(r.stdout + r.error).toContain("01:00:5e:00:00:01");
    expect(existsSync(join(stateDir, "instances"))).toBe(false);
    expect(processesMentioning(stateDir)).toEqual([]);
  });

  it("up from nothing: every instance reaches the other; a second preview has no changes", async () => {
    const r = ok(pulumi("up"));
    expect(r.summary).toMatchObject({ create: expect.any(Number) });
    expect(r.outputs?.names).toEqual(["m0", "m1"]);
    expect((await rt().exec("m0", "ping -c 2 -W 5 10.0.0.2")).output).toContain("2 packets received");
    expect((await rt().exec("m1", "ping -c 2 -W 5 10.0.0.1")).output).toContain("2 packets received");
    const p = ok(pulumi("preview"));
    expect(Object.keys(p.summary!)).toEqual(["same"]);
  });

  it("memory, a NIC and a disk on a running instance preview as in-place updates and apply without reboot", async () => {
    const before = await uptime("m0");
    const bootCount = rt().instanceStatus("m0").bootCount;
    const next: Lab = { size: 2, memoryMiB: 96, extraNic: true, extraDisk: true };
    const p = ok(pulumi("preview", next));
    expect(p.summary).toMatchObject({ update: 1 });
    expect(p.summary!.replace ?? 0).toBe(0);
    // The preview says how: live, field by field.
    expect(p.stdout).toMatch(/change\s+: "live: memoryMiB live, nics live, disks live"/);
    ok(pulumi("up", next));
    expect(rt().instanceStatus("m0").bootCount).toBe(bootCount);
    expect(await uptime("m0")).toBeGreaterThan(before);
    expect((await rt().exec("m0", "ip addr show eth1; ls /sys/block")).output).toMatch(
      /10\.0\.9\.1\/24[\s\S]*ubdb/,
    );
    expect(rt().instanceStatus("m0").memoryMiB).toBe(96);
  });

  it("kill -9 of a guest: refresh shows the drift, up brings it back with its data", async () => {
    const lab: Lab = { size: 2, memoryMiB: 96, extraNic: true, extraDisk: true };
    await rt().exec("m1", "echo written-before-kill > /root/proof && sync");
    // The guest's own linux.uml process (the oldest one naming its folder), not our sandbox.
    const umlPid = guestKernelPid(stateDir, "m1");
    expect(umlPid).toBeGreaterThan(0);
    process.kill(umlPid, "SIGKILL");
    const refreshed = ok(pulumi("refresh", lab));
    expect(refreshed.summary).toMatchObject({ update: 1 });
    const dep = ok(pulumi("export", lab)).deployment!;
    const m1 = dep.deployment.resources.find((r) => r.urn.endsWith("::m1"))!;
    expect(m1.outputs?.state).toBe("stopped");
    ok(pulumi("up", lab));
    expect(rt().instanceStatus("m1").state).toBe("running");
    expect((await rt().exec("m1", "cat /root/proof")).output).toContain("written-before-kill");
  });

  it("the serialized provider in state is small, loads umlfleet by name, and an upgrade of it forces no diff", () => {
    const lab: Lab = { size: 2, memoryMiB: 96, extraNic: true, extraDisk: true };
    const dep = ok(pulumi("export", lab)).deployment!;
    const dynamic = dep.deployment.resources.filter((r) => r.type.startsWith("pulumi-nodejs:dynamic"));
    expect(dynamic.length).toBeGreaterThan(5);
    for (const r of dynamic) {
      const provider = String(r.outputs?.__provider);
      expect(provider.length, r.urn).toBeLessThan(4096);
      expect(provider).toContain("umlfleet/dist/provider/impl");
      for (const leaked of ["LocalRuntime", "SpecValidator", "withLock", "planInstanceChange", "/work/"]) {
        expect(provider, `${r.urn} captures ${leaked}`).not.toContain(leaked);
      }
    }
    // Each resource records the umlfleet that made it.
    const { version } = JSON.parse(readFileSync(join(__dirname, "../../package.json"), "utf8")) as {
      version: string;
    };
    for (const r of dynamic) expect(r.outputs?.providerVersion, r.urn).toBe(version);
    // A new umlfleet release changes the provider text and the recorded
    // version; neither may change any resource.
    for (const r of dynamic) {
      r.outputs!.__provider = `${String(r.outputs!.__provider)}\n// umlfleet vNext\n`;
      r.outputs!.providerVersion = "0.0.1-older";
    }
    ok(pulumi("import", lab, { deployment: dep }));
    const p = ok(pulumi("preview", lab));
    expect(Object.keys(p.summary!)).toEqual(["same"]);
  });

  it("changing the kernel previews as replace and replaces the instances", async () => {
    const kernelCopy = join(dir, "linux-copy");
    copyFileSync(testKernel(), kernelCopy);
    execFileSync("chmod", ["+x", kernelCopy]);
    const oldPid = rt().instanceStatus("m0").pid;
    const lab: Lab = { size: 2, kernelPath: kernelCopy };
    const p = ok(pulumi("preview", lab));
    expect(p.summary!.replace).toBeGreaterThanOrEqual(2);
    ok(pulumi("up", lab));
    const st = rt().instanceStatus("m0");
    expect(st.state).toBe("running");
    expect(st.pid).not.toBe(oldPid);
    expect(st.bootCount).toBe(1);
    expect(rt().instances.get("m0")!.spec.kernel).toBe(kernelCopy);
  });

  it("changing the base previews its overlays and instances as replaced, and replaces them", async () => {
    const lab: Lab = { size: 2, kernelPath: join(dir, "linux-copy"), baseSizeMiB: 40 };
    const p = ok(pulumi("preview", lab));
    // base + 2 overlays + 2 instances (+ the serial link between them).
    expect(p.summary!.replace).toBeGreaterThanOrEqual(5);
    ok(pulumi("up", lab));
    expect(rt().images.get("base")!.spec).toMatchObject({ source: { sizeMiB: 40 } });
    expect((await rt().exec("m0", "ping -c 1 -W 5 10.0.0.2")).output).toContain("1 packets received");
  });

  it("a Kernel built from Debian's source (lean profile, cached) replaces the kernel the instances boot", async () => {
    const lab: Lab = { size: 2, kernelBuild: true, baseSizeMiB: 40 };
    ok(pulumi("up", lab));
    const kernel = rt().instances.get("m0")!.spec.kernel;
    expect(kernel).toMatch(/kernels\/lean-[0-9a-f]{16}\/linux$/);
    expect((await rt().exec("m0", "zcat /proc/config.gz | grep VMAP_STACK")).output).toContain("is not set");
    expect((await rt().exec("m0", "ping -c 1 -W 5 10.0.0.2")).output).toContain("1 packets received");
    expect(Object.keys(ok(pulumi("preview", lab)).summary!)).toEqual(["same"]);
  });

  it("destroy leaves no process, socket or file of the stack on the host", () => {
    ok(pulumi("destroy", { size: 2, kernelBuild: true, baseSizeMiB: 40 }));
    expect(leftOnHost()).toEqual({ processes: [], files: [] });
  });
});
