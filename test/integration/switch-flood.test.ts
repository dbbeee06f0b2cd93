import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { isAlive } from "../../src/process";
import { TestHost } from "../helpers/runtime";

/** busybox ping's summary: received count, loss and average RTT. */
function pingStats(out: string): { received: number; lossPct: number; avgMs: number | undefined } {
  const sum = /(\d+) packets transmitted, (\d+) packets received, (\d+)% packet loss/.exec(out);
  const rtt = /min\/avg\/max = [\d.]+\/([\d.]+)\/[\d.]+/.exec(out);
  if (!sum) throw new Error(`no ping summary in: ${out}`);
  return { received: Number(sum[2]), lossPct: Number(sum[3]), avgMs: rtt ? Number(rtt[1]) : undefined };
}

const rxBytes = async (host: TestHost, n: string) =>
  Number((await host.sh(n, "cat /sys/class/net/eth0/statistics/rx_bytes")).trim());

/**
 * A guest flooding its network (UDP as fast as it can, MAC flooding, garbage
 * frames) does not cut off guests on another network, and cannot reach or
 * crash another network's switch. Timing is logged (docs/security.md), never
 * asserted: the test asserts delivery and survival only.
 */
describe("switch flood: one network's flood against another network's guests", () => {
  const host = new TestHost("flood");
  const NET_A = "flood";
  const NET_B = "quiet";

  beforeAll(async () => {
    await host.rt.ensureBase({ name: "bb", source: { kind: "busybox", sizeMiB: 32 } });
    await host.rt.ensureNetwork({ name: NET_A });
    await host.rt.ensureNetwork({ name: NET_B });
    const guests: [string, string, string][] = [
      ["f1", NET_A, "10.1.0.1/24"],
      ["f2", NET_A, "10.1.0.2/24"],
      ["q1", NET_B, "10.2.0.1/24"],
      ["q2", NET_B, "10.2.0.2/24"],
    ];
    for (const [n] of guests) await host.rt.ensureDisk({ name: `${n}-root`, kind: "overlay", base: "bb" });
    await Promise.all(
      guests.map(([name, network, ipv4]) =>
        host.rt.createInstance({ name, rootDisk: `${name}-root`, nics: [{ network, ipv4 }] }),
      ),
    );
  });
  afterAll(() => host.destroy());

  it("guests on B keep reaching each other while a guest on A floods it (RTT and loss logged, with and without)", async () => {
    const quiet = pingStats(await host.sh("q1", "ping -c 10 10.2.0.2; true", 60_000));
    const rx0 = await rxBytes(host, "f2");
    // Eight streams of 1400-byte echo requests from f1 to f2, each sent as soon as the last was answered
    // (busybox has no flood ping or UDP netcat): as much as A carries.
    await host.sh(
      "f1",
      "for i in 1 2 3 4 5 6 7 8; do (ping -q -A -s 1400 -c 10000000 10.1.0.2 >/dev/null 2>&1 &); done; sleep 1",
    );
    const flooded = pingStats(await host.sh("q1", "ping -c 10 10.2.0.2; true", 60_000));
    const rx1 = await rxBytes(host, "f2");
    await host.rt.exec("f1", "killall ping 2>/dev/null; true");
    console.log(
      `switch flood: B ping without flood ${JSON.stringify(quiet)}, with flood on A ${JSON.stringify(flooded)}, A carried ${Math.round((rx1 - rx0) / 1024)} KiB to f2 meanwhile`,
    );
    // Control: the flood really flowed on A (far more than the pings on B).
    expect(rx1 - rx0).toBeGreaterThan(1024 * 1024);
    expect(quiet.received).toBeGreaterThan(0);
    expect(flooded.received).toBeGreaterThan(0);
  });

  it("MAC flooding and garbage frames on A: A's switch survives, A's and B's guests still reach each other", async () => {
    const switchA = host.rt.networks.get(NET_A)!.switch!;
    const switchB = host.rt.networks.get(NET_B)!.switch!;
    const mac = (await host.sh("f1", "cat /sys/class/net/eth0/address")).trim();
    // 40 source MACs from f1, each a new entry in A's switch table (a MAC changes only while the link is
    // down, and each up connects the NIC to a new port: fewer than A's 64).
    await host.sh(
      "f1",
      "i=0; while [ $i -lt 40 ]; do m=$(printf '02:00:00:00:00:%02x' $i); ip link set eth0 down; ip link set eth0 address $m; ip link set eth0 up; arping -c 1 -w 1 -I eth0 10.1.0.2 >/dev/null 2>&1; i=$((i + 1)); done; true",
      180_000,
    );
    // Garbage: 8 MiB of random bytes as vde_plug's stream (2-byte length, frame) into A's switch,
    // what a guest whose root took over its UML process could send (random lengths, runts, giants).
    const plug = spawn("/usr/bin/vde_plug", [`vde://${host.rt.networks.get(NET_A)!.switchDir}`], {
      stdio: ["pipe", "ignore", "ignore"],
    });
    const done = new Promise<void>((resolve) => plug.on("close", () => resolve()));
    for (let i = 0; i < 64; i++) plug.stdin.write(randomBytes(128 * 1024));
    plug.stdin.end();
    await done;
    expect(isAlive(switchA)).toBe(true);
    expect(isAlive(switchB)).toBe(true);
    // f1 takes its own address back; f2 forgets the flood's MACs for f1's IP.
    await host.sh("f1", `ip link set eth0 down; ip link set eth0 address ${mac}; ip link set eth0 up`);
    await host.sh("f2", "ip neigh flush dev eth0; ping -c 3 -W 5 10.1.0.1", 60_000);
    await host.sh("q1", "ping -c 3 -W 5 10.2.0.2", 60_000);
  });

  it("a guest on A has no path to B's switch: its folder is not in A's guests' sandboxes (A's is)", async () => {
    const dirA = host.rt.networks.get(NET_A)!.switchDir;
    const dirB = host.rt.networks.get(NET_B)!.switchDir;
    const out = await host.sh(
      "f1",
      `mkdir -p /mnt/x; mount -t hostfs none /mnt/x -o /../../.. && ls /mnt/x${dirA}/ctl && echo A-OK; ls /mnt/x${dirB} 2>&1; umount /mnt/x; true`,
    );
    expect(out).toContain("A-OK");
    expect(out).toMatch(/No such file or directory/);
  });
});
