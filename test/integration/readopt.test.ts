import { execFileSync, spawn } from "node:child_process";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { LocalRuntime } from "../../src";
import { waitFor } from "../../src/process";
import { guestKernelPid, TestHost } from "../helpers/runtime";

const dist = join(__dirname, "..", "..", "dist", "src", "index.js");

describe("re-adopting instances from the state folder", () => {
  const host = new TestHost("readopt");
  beforeAll(() => host.lab(["a"]));
  afterAll(() => host.destroy());

  it("a fresh runtime object over the same folder sees and drives the instance", async () => {
    const other = new LocalRuntime({ stateDir: host.stateDir });
    const st = other.instanceStatus("a");
    expect(st.state).toBe("running");
    expect(st.pid).toBe(host.rt.instanceStatus("a").pid);
    expect((await other.exec("a", "echo from-another-runtime")).output).toContain("from-another-runtime");
  });

  it("a second process finds the instance, stops it, and this process sees it stopped", async () => {
    const script = `
      const { LocalRuntime } = require(${JSON.stringify(dist)});
      (async () => {
        const rt = new LocalRuntime({ stateDir: ${JSON.stringify(host.stateDir)} });
        const before = rt.instanceStatus("a").state;
        const out = (await rt.exec("a", "hostname")).output.trim();
        await rt.stopInstance("a");
        console.log(JSON.stringify({ before, out, after: rt.instanceStatus("a").state }));
      })().catch((e) => { console.error(e); process.exit(1); });`;
    const res = JSON.parse(
      execFileSync("node", ["-e", script], { encoding: "utf8", timeout: 120_000 }),
    ) as Record<string, string>;
    expect(res).toEqual({ before: "running", out: "a", after: "stopped" });
    expect(host.rt.instanceStatus("a").state).toBe("stopped");
  });

  it("an instance started by another process can be started again here", async () => {
    await host.rt.startInstance("a");
    expect(host.rt.instanceStatus("a").state).toBe("running");
  });

  it("kill -9 of the guest's main UML process alone: stopped, leftovers reaped, restarts with its data", async () => {
    await host.sh("a", "echo before-kill > /root/proof && sync");
    // linux.uml calls setsid(): its helpers outlive the main process unless reaped.
    const main = guestKernelPid(host.stateDir, "a");
    process.kill(main, "SIGKILL");
    await new Promise((r) => setTimeout(r, 500));
    expect(host.rt.instanceStatus("a").state).toBe("stopped");
    await host.rt.startInstance("a");
    expect(await host.sh("a", "cat /root/proof")).toContain("before-kill");
  });

  it("a boot whose process was killed before it finished is seen to its end by the next create: memory ballooned", async () => {
    await host.rt.ensureDisk({ name: "m-root", kind: "overlay", base: "bb" });
    const spec = { name: "m", rootDisk: "m-root", memoryMiB: 64, maxMemoryMiB: 192 };
    // Another process starts the boot and is killed as soon as the sandbox exists (before ready).
    const script = `
      const { LocalRuntime } = require(${JSON.stringify(dist)});
      new LocalRuntime({ stateDir: ${JSON.stringify(host.stateDir)} }).createInstance(${JSON.stringify(spec)});`;
    const child = spawn("node", ["-e", script], { stdio: "ignore" });
    // Killed once it has launched the guest and recorded the boot as under way.
    await waitFor(() => host.rt.instances.get("m")?.booting === true, 60_000, 5);
    child.kill("SIGKILL");
    await new Promise((r) => child.on("exit", r));
    expect(host.rt.instances.get("m")!.booting).toBe(true);
    // The next create adopts the running guest and completes its boot.
    const st = await host.rt.createInstance(spec);
    expect(st.bootCount).toBe(1);
    expect(host.rt.instances.get("m")!.booting).toBe(false);
    // 128 MiB held back by the balloon: far less free than the 192 the guest booted with.
    const free = Number(/MemFree:\s+(\d+)/.exec(await host.sh("m", "cat /proc/meminfo"))![1]);
    expect(free).toBeLessThan(90 * 1024);
  });
});
