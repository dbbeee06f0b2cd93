import { execFileSync } from "node:child_process";
import {
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  realpathSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { createServer, connect, type Server } from "node:net";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { hasNetAdmin } from "../../src/host/host-link";
import { readPcap, summarizeFrame } from "../../src/pcap";
import { isAlive } from "../../src/process";
import { TestHost } from "../helpers/runtime";

const tapExists = (name: string) => existsSync(`/sys/class/net/${name}`);
const netns = (pid: number | string) => readlinkSync(`/proc/${pid}/ns/net`);
const capEff = (pid: number) => /^CapEff:\s*(\w+)$/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"))![1];

/** Processes of process group `pgid` whose command is `comm`. */
function inGroup(pgid: number, comm: string): number[] {
  return readdirSync("/proc")
    .filter((d) => /^\d+$/.test(d))
    .filter((d) => {
      try {
        // comm may hold spaces and parentheses: the fields after its last ")" are fixed.
        const stat = readFileSync(`/proc/${d}/stat`, "utf8");
        const [, pgrp] = stat
          .slice(stat.lastIndexOf(")") + 2)
          .split(" ")
          .slice(1, 3);
        return Number(pgrp) === pgid && readFileSync(`/proc/${d}/comm`, "utf8").trim() === comm;
      } catch {
        return false; // gone meanwhile
      }
    })
    .map(Number);
}
const seccompMode = (pid: number) =>
  Number(/^Seccomp:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"))![1]);

/** Frames of a capture, decoded. */
const framesOf = (file: string) => readPcap(readFileSync(file)).records.map((r) => summarizeFrame(r.frame));

describe("capture: every frame of a network in a pcap file on the host", () => {
  const host = new TestHost("capture");
  const pcap = join(host.dir, "captures", "lan.pcap");
  beforeAll(async () => {
    mkdirSync(join(host.dir, "captures"));
    await host.lab(["a", "b"], { network: "cap", networkSpec: { capture: { path: pcap } } });
  });
  afterAll(() => host.destroy());

  it("records each frame exactly once, whole, with a header that says so", async () => {
    await host.sh("a", "ping -c 3 -W 5 10.0.0.2");
    // b's nc starts in the background: a sends once it listens (port 4000 is 0FA0, LISTEN is 0A in
    // /proc/net/tcp or tcp6; a fixed 0.3 s wait lost the race on a loaded CI run).
    await host.sh(
      "b",
      "nc -l -p 4000 >/tmp/got & i=0; until cat /proc/net/tcp* | grep -q ':0FA0 [0-9A-F]*:0000 0A'; do i=$((i+1)); [ $i -lt 400 ] || exit 1; sleep 0.05; done",
    );
    await host.sh("a", "echo secret-words | nc 10.0.0.2 4000");
    // The writer follows the switch by a pipe: the last frames may land a moment after the guests are done.
    const tcpData = () =>
      framesOf(pcap)
        .filter((f) => f.protocol === "tcp" && f.dstPort === 4000 && f.payload?.length)
        .map((f) => f.payload!.toString());
    // Generous: a loaded machine may be seconds behind (and TCP may retransmit: ICMP below counts exactly).
    await expect.poll(tcpData, { timeout: 20_000 }).toContain("secret-words\n");
    const file = readPcap(readFileSync(pcap));
    expect(file.snaplen).toBeGreaterThanOrEqual(65535);
    expect(file.linkType).toBe(1);
    const frames = file.records.map((r) => summarizeFrame(r.frame));
    // Each echo request once: vde_switch's pdump would record each twice here (in, and out to b).
    const requests = frames.filter(
      (f) => f.protocol === "icmp" && f.src === "10.0.0.1" && f.payload?.[0] === 8,
    );
    expect(requests).toHaveLength(3); // ping waited for each reply, so all three are on file
    for (const r of file.records) expect(r.frame.length).toBe(r.originalLength);
    expect(statSync(pcap).mode & 0o777).toBe(0o600);
  });

  it.runIf(process.arch === "x64")(
    "the capture's vde_plug runs under the sandboxes' seccomp filter, the writer itself not",
    () => {
      const writer = host.rt.networks.get("cap")!.captureWriter!.pid;
      const plugs = inGroup(writer, "vde_plug");
      expect(plugs).toHaveLength(1);
      expect(seccompMode(plugs[0]!)).toBe(2);
      // What guests feed holds no fd of the pcap file (only the writer writes it).
      const fds = readdirSync(`/proc/${plugs[0]}/fd`).map((fd) => readlinkSync(`/proc/${plugs[0]}/fd/${fd}`));
      expect(fds).not.toContain(realpathSync(pcap));
      // Control: the Node writer outside the sandbox is unfiltered, so the field is read right.
      expect(seccompMode(writer)).toBe(0);
    },
  );

  it("a writer that died is plugged in again by the next ensure, appending, with the guests still connected", async () => {
    const before = framesOf(pcap).length;
    const rec = host.rt.networks.get("cap")!;
    process.kill(-rec.captureWriter!.pid, "SIGKILL");
    await expect.poll(() => isAlive(rec.captureWriter), { timeout: 20_000 }).toBe(false);
    expect(host.rt.networkStatus("cap")!.running).toBe(false);
    await host.rt.ensureNetwork({ name: "cap", capture: { path: pcap } });
    expect(host.rt.networks.get("cap")!.switch).toEqual(rec.switch);
    await host.sh("a", "ping -c 2 -W 5 10.0.0.2");
    const requests = () => framesOf(pcap).filter((f) => f.protocol === "icmp" && f.payload?.[0] === 8).length;
    await expect.poll(requests, { timeout: 20_000 }).toBe(5);
    expect(framesOf(pcap).length).toBeGreaterThan(before + 3);
  });

  it("a capture in the state folder, in a share or outside the capture folders is refused, naming the field, and nothing is made", async () => {
    const shared = join(host.dir, "share");
    mkdirSync(shared);
    await host.rt.ensureDisk({ name: "c-root", kind: "overlay", base: "bb" });
    await host.rt.createInstance({
      name: "c",
      rootDisk: "c-root",
      shares: [{ name: "s", hostPath: shared, guestPath: "/s" }],
    });
    for (const path of [join(host.stateDir, "x.pcap"), join(shared, "x.pcap"), "/etc/x.pcap"]) {
      await expect(host.rt.ensureNetwork({ name: "bad", capture: { path } })).rejects.toThrow(
        /capture\/path/,
      );
      expect(host.rt.networks.get("bad")).toBeUndefined();
      expect(existsSync(path)).toBe(false);
    }
    // A file that is not a pcap is never overwritten.
    const notes = join(host.dir, "captures", "notes.pcap");
    writeFileSync(notes, "my notes\n");
    await expect(host.rt.ensureNetwork({ name: "bad", capture: { path: notes } })).rejects.toThrow(
      /something other than a pcap/,
    );
    expect(readFileSync(notes, "utf8")).toBe("my notes\n");
    // And a share over a capture file is refused in turn.
    await host.rt.ensureDisk({ name: "d-root", kind: "overlay", base: "bb" });
    await expect(
      host.rt.createInstance({
        name: "d",
        rootDisk: "d-root",
        shares: [{ name: "c", hostPath: join(host.dir, "captures"), guestPath: "/c" }],
      }),
    ).rejects.toThrow(/shares\/0\/hostPath.*capture/);
  });
});

/**
 * The host on a network through a tap. Making a tap needs CAP_NET_ADMIN (CI
 * runs as root); without it a persistent tap the user owns is needed, which
 * this test cannot make.
 */
describe.runIf(hasNetAdmin())("host link: the host itself on a network, through a tap", () => {
  const host = new TestHost("hostlink");
  const id = Math.floor(Math.random() * 200) + 20;
  const tap = `uft${process.pid % 10000}${id}`.slice(0, 15);
  const subnet = `10.213.${id}`;
  let server: Server;
  const received: string[] = [];
  beforeAll(async () => {
    await host.lab(["g"], {
      network: "hl",
      networkSpec: { hostInterface: { name: tap, ipv4: `${subnet}.1/24` } },
      extra: () => ({ nics: [{ network: "hl", ipv4: `${subnet}.2/24` }] }),
    });
    server = createServer((s) => s.on("data", (d) => received.push(d.toString())));
    await new Promise<void>((r) => server.listen(7001, `${subnet}.1`, r));
  });
  afterAll(async () => {
    server?.close();
    await host.destroy();
  });

  it("a guest reaches a server on the host's tap address, and the host reaches the guest", async () => {
    await host.sh("g", `echo hello-from-guest | nc ${subnet}.1 7001`);
    await expect.poll(() => received.join("")).toContain("hello-from-guest");
    await host.sh("g", "nc -l -p 7002 -e /bin/hostname &");
    // The guest's nc starts in the background: connect until it listens (a loaded host may be seconds behind).
    const ask = () =>
      new Promise<string>((resolve) => {
        const c = connect(7002, `${subnet}.2`);
        let got = "";
        c.on("data", (d) => (got += d.toString()));
        c.on("end", () => resolve(got));
        c.on("error", () => resolve(""));
      });
    await expect.poll(async () => (await ask()).trim()).toBe("g");
  });

  it("the host-linked switch shares the host's network but holds no capability; other switches have no network", async () => {
    const linked = host.rt.networks.get("hl")!.switch!.pid;
    expect(netns(linked)).toBe(netns("self"));
    // No CAP_NET_ADMIN: as root only the three a switch keeps for runAs guests (sandbox.ts).
    expect(capEff(linked)).toMatch(process.getuid?.() === 0 ? /^0+b$/ : /^0+$/);
    await host.rt.ensureNetwork({ name: "plain" });
    const plain = host.rt.networks.get("plain")!.switch!.pid;
    expect(netns(plain)).not.toBe(netns("self"));
    await host.rt.removeNetwork("plain");
  });

  it("a name that is another interface (not a tap) is refused, naming the field, and nothing is made", async () => {
    await expect(host.rt.ensureNetwork({ name: "lo-net", hostInterface: { name: "lo" } })).rejects.toThrow(
      /hostInterface\/name: .*not a tap/,
    );
    expect(host.rt.networks.get("lo-net")).toBeUndefined();
  });

  it("removing the network removes the tap it made: the host is as it was", async () => {
    expect(tapExists(tap)).toBe(true);
    await host.rt.removeInstance("g");
    await host.rt.removeNetwork("hl");
    expect(tapExists(tap)).toBe(false);
    expect(execFileSync("ip", ["-4", "addr"], { encoding: "utf8" })).not.toContain(`${subnet}.1/24`);
  });
});
