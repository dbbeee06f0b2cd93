import { execFileSync } from "node:child_process";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { cablesOn, closeRemotes, driverFor } from "../../provider/driver-factory";
import * as impl from "../../provider/impl";
import { hostsUnsupported, makeHosts, type HostLab, type NsHost } from "../helpers/hosts";
import { processesMentioning } from "../helpers/runtime";

/** A network across three namespace hosts, through the provider's functions (no Pulumi CLI). */
describe.skipIf(hostsUnsupported() !== undefined)("a network that spans hosts", () => {
  let lab: HostLab;
  const made: { kind: impl.Kind; id: string; outs: Record<string, unknown> }[] = [];
  beforeAll(() => {
    lab = makeHosts(3);
  });
  afterAll(async () => {
    for (const r of made.reverse()) await impl.remove(r.kind, r.id, r.outs).catch(() => undefined);
    await closeRemotes();
    lab?.teardown();
  });
  const ref = (h: NsHost) => ({
    hostId: `ssh://${h.user}@${h.address}:22`,
    ssh: { host: h.address, user: h.user, privateKey: lab.privateKey, hostKey: h.hostKey },
  });
  const create = async (kind: impl.Kind, news: Record<string, unknown>) => {
    const { inputs, failures } = await impl.check(kind, {}, news);
    expect(failures).toEqual([]);
    const r = await impl.create(kind, inputs);
    made.push({ kind, ...r });
    return r;
  };
  const sh = async (h: NsHost, guest: string, script: string) => {
    const r = await driverFor({ host: ref(h), stateDir: h.stateDir }).exec(guest, script, {
      timeoutMs: 60_000,
    });
    return r;
  };

  it("joins guests on three hosts into one segment; a broken cable is found and re-made", async () => {
    const hosts = lab.hosts.map((h) => ({ ...ref(h), stateDir: h.stateDir }));
    const net = await create("network", { name: "lan", hosts });
    expect(net.outs.running).toBe(true);
    expect((net.outs.cables as unknown[]).length).toBe(2);
    for (const [i, h] of lab.hosts.entries()) {
      const on = { host: ref(h), stateDir: h.stateDir };
      const base = await create("base", { ...on, name: "bb", source: { kind: "busybox", sizeMiB: 32 } });
      const disk = await create("disk", {
        ...on,
        name: `g${i}-root`,
        kind: "overlay",
        base: "bb",
        baseImageSha: base.outs.imageSha,
      });
      await create("instance", {
        ...on,
        name: `g${i}`,
        rootDisk: `g${i}-root`,
        rootDiskId: disk.outs.diskId,
        kernel: join(lab.dir, "linux"),
        nics: [{ network: "lan", ipv4: `10.0.0.${i + 1}/24` }],
      });
    }
    const [a] = lab.hosts;
    for (const ip of ["10.0.0.2", "10.0.0.3"]) {
      const r = await sh(a, "g0", `ping -c 2 -W 5 ${ip}`);
      expect(r.exitCode, r.output).toBe(0);
    }

    // The cable to host 3 killed behind our back: refresh says so, update re-makes it.
    const cable = (net.outs.cables as { name: string }[])[1].name;
    const pid = execFileSync("pgrep", ["-U", String(a.uid), "-f", `^/usr/bin/dpipe .*`], { encoding: "utf8" })
      .trim()
      .split("\n")
      .find((p) =>
        execFileSync("cat", [`/proc/${p}/cmdline`], { encoding: "utf8" }).includes(lab.hosts[2].address),
      )!;
    execFileSync("kill", ["-9", pid]);
    const read = await impl.read("network", net.id, net.outs);
    expect(read.props?.running).toBe(false);
    expect((read.props?.cables as { name: string; up: boolean }[]).find((c) => c.name === cable)?.up).toBe(
      false,
    );
    const d = await impl.diff("network", net.id, read.props!, { ...read.props! });
    expect(d.changes).toBe(true);
    expect(d.replaces).toEqual([]);
    const fixed = await impl.update("network", net.id, read.props!, { ...net.outs });
    expect(fixed.outs.running).toBe(true);
    const r = await sh(a, "g0", "ping -c 2 -W 5 10.0.0.3");
    expect(r.exitCode, r.output).toBe(0);
    made.find((m) => m.kind === "network")!.outs = fixed.outs;
  });

  it("switches its cables to UDP in place: guests keep their switches, keys go, a dead far end is re-made on its port", async () => {
    const net = made.find((r) => r.kind === "network")!;
    const news = { ...net.outs, cable: "udp" };
    const checked = await impl.check("network", net.outs, news);
    expect(checked.failures).toEqual([]);
    const d = await impl.diff("network", net.id, net.outs, checked.inputs);
    expect(d.changes).toBe(true);
    expect(d.replaces).toEqual([]);
    const bootIds = await Promise.all(
      lab.hosts.map((h, i) => sh(h, `g${i}`, "cat /proc/sys/kernel/random/boot_id")),
    );
    const udp = await impl.update("network", net.id, net.outs, checked.inputs);
    net.outs = udp.outs;
    expect(udp.outs.running).toBe(true);
    const cables = udp.outs.cables as { name: string; kind: string; up: boolean }[];
    expect(cables.map((c) => [c.kind, c.up])).toEqual([
      ["udp", true],
      ["udp", true],
    ]);
    const [a, , c] = lab.hosts;
    // No ssh carries frames any more, and no cable key is let in anywhere.
    expect(a.ssh("pgrep -U $(id -u) -af [d]pipe || true").trim()).toBe("");
    for (const h of lab.hosts) expect(h.ssh("cat ~/.ssh/authorized_keys")).not.toContain("umlfleet-cable");
    // A UDP end on each side, bound to its host's own address.
    const udpEnd = (h: NsHost) =>
      h.ssh("pgrep -U $(id -u) -af '^/usr/bin/[v]de_plug vde://.* udp://' || true").trim();
    expect(udpEnd(a).split("\n")).toHaveLength(2);
    expect(udpEnd(c)).toContain(`udp://${c.address}:`);
    for (const ip of ["10.0.0.2", "10.0.0.3"]) {
      const r = await sh(a, "g0", `ping -c 2 -W 5 ${ip}`);
      expect(r.exitCode, r.output).toBe(0);
    }
    // The same guests: nothing was restarted.
    for (const [i, h] of lab.hosts.entries())
      expect((await sh(h, `g${i}`, "cat /proc/sys/kernel/random/boot_id")).output).toBe(bootIds[i]!.output);

    // Host 3's end killed (as by its reboot): refresh sees it, update re-makes it on the same port.
    const before = udpEnd(c);
    c.ssh("pkill -9 -U $(id -u) -f '[v]de_plug vde://.* udp://'");
    const read = await impl.read("network", net.id, net.outs);
    expect(read.props?.running).toBe(false);
    expect((read.props?.cables as { up: boolean }[]).map((x) => x.up)).toEqual([true, false]);
    const fixed = await impl.update("network", net.id, read.props!, checked.inputs);
    net.outs = fixed.outs;
    expect(fixed.outs.running).toBe(true);
    expect(udpEnd(c).replace(/^\d+ /, "")).toBe(before.replace(/^\d+ /, ""));
    const r = await sh(a, "g0", "ping -c 2 -W 5 10.0.0.3");
    expect(r.exitCode, r.output).toBe(0);
  });

  it("a cable the far host refuses (another host's key pinned) fails naming it, and leaves no process", async () => {
    const [a, b, c] = lab.hosts;
    const hub = await cablesOn({ host: ref(a), stateDir: a.stateDir });
    await hub.prepare("refused");
    const err = await hub
      .ensure({
        name: "refused",
        network: "lan",
        peer: { host: b.address, port: 22, user: b.user, hostKey: c.hostKey },
      })
      .then(
        () => undefined,
        (e: unknown) => e,
      );
    expect(String(err)).toMatch(
      new RegExp(`cable refused to ${b.user}@${b.address.replace(/\./g, "\\.")}:22 did not stay up`),
    );
    expect(a.ssh("pgrep -U $(id -u) -af '[d]pipe|[s]sh .*refused' || true").trim()).toBe("");
    expect((await hub.info("refused"))?.up).toBe(false);
    await hub.remove("refused");
  });

  // (A killed process's orphans are reaped by the host's init in its own time: zombies are not processes left.)
  it("removes every switch, cable and cable key, on every host", async () => {
    for (const r of made.reverse()) await impl.remove(r.kind, r.id, r.outs);
    made.length = 0;
    for (const h of lab.hosts) {
      expect(processesMentioning(h.stateDir).filter((p) => !/umlfleet-agent|ssh /.test(p))).toEqual([]);
      expect(h.ssh("cat ~/.ssh/authorized_keys")).not.toContain("umlfleet-cable");
      expect(h.ssh(`test -e ${h.stateDir}/cables && ls -A ${h.stateDir}/cables || true`).trim()).toBe("");
      expect(
        h.ssh("ps -U $(id -u) -o pid=,stat=,args= | awk '$2 !~ /Z/' | grep [v]de_plug || true").trim(),
      ).toBe("");
    }
  });
});
