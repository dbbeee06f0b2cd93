import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { isUmlfleetError } from "../../src";
import type { InstanceSpec } from "../../src/spec";
import { TestHost } from "../helpers/runtime";

/**
 * Per-instance set-up the way Netkit/Kathará labs do it: files copied into
 * the guest's root, a startup script, IPv6 addresses, gateways and routes,
 * all applied by umlfleet's init at boot from a folder the host staged and
 * the guest can only read.
 */
describe("files, startup scripts, IPv6, gateways and routes", () => {
  const host = new TestHost("setup");
  const tool = join(host.dir, "tool.sh");
  const specOf = (n: string) => host.rt.instances.get(n)!.spec;
  const a: Partial<InstanceSpec> = {
    nics: [
      {
        network: "lan",
        ipv4: "10.0.0.1/24",
        ipv6: "fd00:1::1/64",
        routes: [{ to: "10.9.0.0/24", via: "10.0.0.2" }],
      },
    ],
    files: [
      { path: "/etc/lab/hello", content: "hello from the host\n", mode: 0o600 },
      { path: "/usr/local/bin/tool", source: tool, mode: 0o755 },
    ],
    startup: "echo startup-ran-here\n/usr/local/bin/tool\nexit 3\n",
  };
  const b: Partial<InstanceSpec> = {
    nics: [{ network: "lan", ipv4: "10.0.0.2/24", ipv6: "fd00:1::2/64", gateway: "10.0.0.1" }],
    // A network only b has, behind it: a reaches it through its route via b.
    startup: "ip addr add 10.9.0.1/32 dev lo\n",
  };

  beforeAll(async () => {
    writeFileSync(tool, "#!/bin/sh\necho tool-from-a-host-file\n");
    await host.lab(["a", "b"], { extra: (n) => (n === "a" ? a : b) });
  });
  afterAll(() => host.destroy());

  it("files land with their content, mode and owner; the startup script ran after them, its exit status reported", async () => {
    expect(
      await host.sh("a", "cat /etc/lab/hello; stat -c '%a %u %g' /etc/lab/hello /usr/local/bin/tool"),
    ).toBe("hello from the host\n600 0 0\n755 0 0\n");
    const log = readFileSync(host.rt.instanceStatus("a").consoleLog, "utf8");
    expect(log).toMatch(/startup-ran-here\r?\ntool-from-a-host-file/);
    // A failing script does not fail the boot unless asked: it is reported.
    expect(host.rt.instanceStatus("a").state).toBe("running");
    expect(host.rt.instanceStatus("a").startupExitCode).toBe(3);
    expect(host.rt.instanceStatus("b").startupExitCode).toBe(0);
  });

  it("IPv6 addresses work at once, the gateway is the default route, and a route via a neighbour is taken", async () => {
    expect(await host.sh("a", "ping6 -c 1 -W 5 fd00:1::2")).toContain("1 packets received");
    expect(await host.sh("b", "ip route show default")).toContain("default via 10.0.0.1 dev eth0");
    expect(await host.sh("a", "ip route show 10.9.0.0/24")).toContain("via 10.0.0.2 dev eth0");
    // 10.9.0.1 exists only on b's loopback: a reaches it through its route.
    expect(await host.sh("a", "ping -c 1 -W 5 10.9.0.1")).toContain("1 packets received");
  });

  it("the staged folder is outside vm/, and the guest can neither write it nor keep it mounted", async () => {
    const staged = join(host.stateDir, "instances", "a", "setup");
    expect(existsSync(join(staged, "startup"))).toBe(true);
    expect(existsSync(join(host.stateDir, "instances", "a", "vm", "setup"))).toBe(false);
    expect(await host.sh("a", "grep -c /run/umlfleet/setup /proc/mounts || true")).toBe("0\n");
    const r = await host.rt.exec(
      "a",
      "mkdir -p /mnt/s && mount -t hostfs -o rw,/_setup none /mnt/s; echo x > /mnt/s/startup; echo rc=$?; cat /mnt/s/startup | head -1",
    );
    expect(r.output).toMatch(/rc=[1-9]/);
    expect(r.output).toContain("echo startup-ran-here");
    expect(readFileSync(join(staged, "startup"), "utf8")).toBe(a.startup);
  });

  it("changing the startup script restarts in place: the disk keeps its data, the new script runs", async () => {
    await host.sh("a", "echo kept > /root/data && sync");
    const before = host.rt.instanceStatus("a").bootCount;
    const next = { ...specOf("a"), startup: "echo second-script\n" };
    expect(host.rt.planInstanceUpdate(next)).toMatchObject({
      kind: "restart",
      changes: [{ field: "/startup", kind: "restart" }],
    });
    await host.rt.updateInstance(next);
    expect(host.rt.instanceStatus("a").bootCount).toBe(before + 1);
    expect(host.rt.instanceStatus("a").startupExitCode).toBe(0);
    expect(await host.sh("a", "cat /root/data")).toBe("kept\n");
    expect(readFileSync(host.rt.instanceStatus("a").consoleLog, "utf8")).toContain("second-script");
  });

  it("startupMustSucceed: a failing script fails the boot with its output, and a fixed one boots", async () => {
    const failing = { ...specOf("a"), startup: "echo about-to-fail\nexit 7\n", startupMustSucceed: true };
    const err = await host.rt.updateInstance(failing).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(isUmlfleetError(err, "UMLFLEET_BOOT_FAILED")).toBe(true);
    expect(String((err as Error).message)).toMatch(/startup script exited 7[\s\S]*about-to-fail/);
    expect(host.rt.instanceStatus("a").state).toBe("stopped");
    // As the provider does: the spec is updated, then the stopped guest is started.
    await host.rt.updateInstance({ ...failing, startup: "exit 0\n" });
    await host.rt.startInstance("a");
    expect(host.rt.instanceStatus("a").state).toBe("running");
    expect(await host.sh("a", "cat /root/data")).toBe("kept\n");
  });

  it("a NIC hot-plugged with IPv6 and a route is configured live", async () => {
    await host.rt.ensureNetwork({ name: "lan" });
    const spec = specOf("b");
    const before = host.rt.instanceStatus("b").bootCount;
    await host.rt.updateInstance({
      ...spec,
      nics: [
        ...(spec.nics ?? []),
        {
          network: "lan",
          ipv4: "10.0.5.2/24",
          ipv6: "fd00:5::2/64",
          routes: [{ to: "10.8.0.0/16", via: "10.0.5.1" }],
        },
      ],
    });
    expect(host.rt.instanceStatus("b").bootCount).toBe(before);
    const out = await host.sh("b", "ip -6 addr show eth1; ip route show 10.8.0.0/16");
    expect(out).toContain("fd00:5::2/64");
    expect(out).toContain("via 10.0.5.1 dev eth1");
  });

  it("a source in the state folder or in a read-write share is refused, naming the field, before anything is made", async () => {
    const shared = join(host.dir, "rw-share");
    mkdirSync(shared);
    writeFileSync(join(shared, "f"), "x");
    await host.rt.ensureDisk({ name: "c-root", kind: "overlay", base: "bb" });
    await host.rt.ensureDisk({ name: "d-root", kind: "overlay", base: "bb" });
    await host.rt.createInstance({
      name: "c",
      rootDisk: "c-root",
      shares: [{ name: "w", hostPath: shared, guestPath: "/w", readOnly: false }],
    });
    for (const source of [join(host.stateDir, "instances", "a", "instance.json"), join(shared, "f")]) {
      await expect(
        host.rt.createInstance({ name: "d", rootDisk: "d-root", files: [{ path: "/x", source }] }),
      ).rejects.toThrow(/\/files\/0\/source: .*(state folder|read-write share)/);
      expect(host.rt.instances.get("d")).toBeUndefined();
    }
  });
});
