/**
 * Section "hosts" of `npm run bench` (only with BENCH_HOSTS=1: it needs root
 * for network namespaces and users). Three target hosts made on this machine
 * by test/helpers/hosts.ts (a network namespace each, Debian's sshd, an
 * unprivileged user, the agent on PATH), reached the way the provider reaches
 * them (provider/driver-factory.ts: an AgentClient over one SSH master
 * connection per host). Measures: one cheap HostDriver call over SSH vs
 * LocalRuntime; ping RTT and TCP throughput between guests on one switch vs
 * across an SSH cable, then across a UDP cable (the network switched in place); 3 x N guests on one spanning network vs the same
 * guests (and N) on one host, through the runtime (no Pulumi); and the same
 * comparison through one real `pulumi up` each (bench/hosts-program.ts: three
 * Host resources, a Network across them and an InstanceGroup per host, vs N
 * guests on this machine), then `pulumi destroy`, which must leave the hosts
 * as they were. Everything the lab made is removed at the end, whatever
 * happens (`lab.teardown()` throws if a namespace, link, user or process is
 * left).
 */
import { join } from "node:path";
import { closeRemotes, driverFor } from "../provider/driver-factory";
import * as impl from "../provider/impl";
import type { HostDriver } from "../src/host/driver";
import { LocalRuntime } from "../src/host/runtime";
import { makeHosts, type HostLab, type NsHost } from "../test/helpers/hosts";
import { holdTestRoot } from "../test/helpers/paths";
import { upComparison, type UpComparison } from "./hosts-up";
import { fleetNic, loadavg, stats, type Stats } from "./lib";

export interface HostsResult {
  /** Guests per host in the fleet comparison. */
  perHost: number;
  calls?: { method: string; n: number; local: Stats; ssh: Stats; connectMs: number };
  ping?: {
    count: number;
    sameSwitch: Stats;
    acrossCable: Stats;
    twoCables?: Stats;
    /** The same network switched to UDP cables (`cable: "udp"`), measured after the SSH ones. */
    udp?: { sameSwitch: Stats; acrossCable: Stats; twoCables: Stats };
  };
  tcp?: {
    mib: number;
    sameSwitchMiBs: number[];
    acrossCableMiBs: number[];
    acrossUdpCableMiBs?: number[];
    /** The guests' MTU at 1458: a full frame fits one UDP datagram on a 1500-byte link. */
    acrossUdpCableMtu1458MiBs?: number[];
  };
  fleet?: {
    /** 3 x perHost guests, one group per host, applied at once, on one spanning network (cables made before). */
    threeHostsMs?: number;
    threeHostsReady: number;
    /** The same 3 x perHost guests as one group on this host (one switch). */
    oneHostAllMs?: number;
    oneHostAllReady: number;
    /** perHost guests as one group on this host (the "32 on one host"). */
    oneHostNMs?: number;
    oneHostNReady: number;
    /** Per host: when its applyGroup returned, ms after the start. */
    perHostMs: number[];
  };
  /** The same comparison through one `pulumi up` per stack (bench/hosts-up.ts). */
  up?: UpComparison;
  setupMs: Record<string, number>;
  loadavg: string[];
  errors: string[];
}

type Log = (...a: unknown[]) => void;

const ref = (lab: HostLab, h: NsHost) => ({
  hostId: `ssh://${h.user}@${h.address}:22`,
  ssh: { host: h.address, user: h.user, privateKey: lab.privateKey, hostKey: h.hostKey },
});
const on = (lab: HostLab, h: NsHost) => ({ host: ref(lab, h), stateDir: h.stateDir });

/** Guest-side seconds from its own clock (/proc/uptime has 10 ms resolution: runs are long). */
const uptime = "cut -d' ' -f1 /proc/uptime";

async function timeCalls(d: HostDriver, n: number): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    await d.inventory();
    out.push(performance.now() - t0);
  }
  return out;
}

/** Median-able ping RTTs (ms) from `guest` to `ip`, in the guest. */
async function pingRtts(d: HostDriver, guest: string, ip: string, count: number): Promise<number[]> {
  const r = await d.exec(guest, `ping -c ${count} -i 0.2 -W 5 ${ip}`, { timeoutMs: 120_000 });
  const rtts = [...r.output.matchAll(/time=([\d.]+) ms/g)].map((m) => Number(m[1]));
  if (rtts.length === 0) throw new Error(`ping ${ip} from ${guest}: ${r.output.slice(-300)}`);
  return rtts;
}

/**
 * MiB/s of `mib` MiB from /dev/zero through busybox nc, timed in the sending guest until its nc
 * exits; the receiver counts what arrived (a short count is an error, not a figure).
 */
async function tcpMiBs(
  send: { d: HostDriver; guest: string },
  recv: { d: HostDriver; guest: string; ip: string },
  mib: number,
  port: number,
): Promise<number> {
  const rx = `/tmp/rx${port}`;
  // The listener runs in its own session, so it outlives the exec that starts it. Its stdin is a
  // pipe that stays open: busybox nc stops at EOF on either side, so /dev/null would end it at once
  // (and the pipeline then outlives nc: wc's count is read once the file is not empty).
  const l = await recv.d.exec(
    recv.guest,
    `rm -f ${rx}; setsid sh -c 'sleep 600 | nc -l -p ${port} | wc -c > ${rx}' </dev/null >/dev/null 2>&1 & sleep 0.3; echo listening`,
    { timeoutMs: 30_000 },
  );
  if (!l.output.includes("listening")) throw new Error(`nc -l in ${recv.guest}: ${l.output}`);
  const script = [
    `t0=$(${uptime})`,
    `dd if=/dev/zero bs=65536 count=${mib * 16} 2>/dev/null | nc ${recv.ip} ${port}`,
    `rc=$?`,
    `t1=$(${uptime})`,
    `echo "T $t0 $t1 $rc"`,
  ].join("; ");
  const r = await send.d.exec(send.guest, script, { timeoutMs: 300_000 });
  const m = /T ([\d.]+) ([\d.]+) (\d+)/.exec(r.output);
  if (!m || m[3] !== "0") throw new Error(`nc from ${send.guest}: ${r.output.slice(-300)}`);
  const c = await recv.d.exec(
    recv.guest,
    `for i in $(seq 100); do [ -s ${rx} ] && break; sleep 0.1; done; cat ${rx}`,
    { timeoutMs: 30_000 },
  );
  const got = Number(c.output.trim());
  if (got !== mib * 2 ** 20)
    throw new Error(`${recv.guest} received ${c.output.trim()} of ${mib * 2 ** 20} bytes`);
  const s = Number(m[2]) - Number(m[1]);
  return s > 0 ? mib / s : NaN;
}

function groupSpec(name: string, kernel: string, network: string, count: number, offset: number) {
  const members = Object.fromEntries(
    Array.from({ length: count }, (_, i) => {
      const k = offset + i;
      // One /24 for every guest of the fleet (fleetNic with one network: 10.0.0.<k+1>, k < 254).
      const { ipv4 } = fleetNic(k, 1);
      return [`${name}m${i}`, { memoryMiB: 64, bootTimeoutMs: 300_000, nics: [{ network, ipv4 }] }];
    }),
  );
  return { name, base: "base", kernel, members };
}

/** The whole section; `stateDir` is a fresh local state folder of the run, `backendDir` a fresh Pulumi backend. */
export async function benchHosts(o: {
  stateDir: string;
  backendDir: string;
  perHost: number;
  calls: number;
  pings: number;
  tcpMiB: number;
  /** Rounds of part 4 (one `pulumi up` per stack and round); 0: not run. */
  upRounds: number;
  log: Log;
}): Promise<HostsResult> {
  const res: HostsResult = { perHost: o.perHost, setupMs: {}, loadavg: [loadavg()], errors: [] };
  // A test suite started meanwhile on the same root would wipe the lab: it refuses while this holds it.
  const release = holdTestRoot();
  const t = performance.now();
  let lab: HostLab;
  try {
    lab = makeHosts(3);
  } catch (e) {
    release();
    throw e;
  }
  res.setupMs.lab = Math.round(performance.now() - t);
  const local = new LocalRuntime({ stateDir: o.stateDir });
  const kernel = join(lab.dir, "linux");
  const made: { kind: impl.Kind; id: string; outs: Record<string, unknown> }[] = [];
  const drivers = lab.hosts.map((h) => driverFor(on(lab, h)));
  const create = async (kind: impl.Kind, news: Record<string, unknown>) => {
    const { inputs, failures } = await impl.check(kind, {}, news);
    if (failures.length) throw new Error(`${kind}: ${JSON.stringify(failures)}`);
    const r = await impl.create(kind, inputs);
    made.push({ kind, ...r });
    return r;
  };
  const removeMade = async () => {
    for (const r of made.reverse())
      await impl
        .remove(r.kind, r.id, r.outs)
        .catch((e) => res.errors.push(`hosts: remove ${r.kind} ${r.id}: ${String(e).slice(0, 300)}`));
    made.length = 0;
  };
  try {
    // 1. One cheap call (inventory: the host's resource names), local vs over SSH.
    let t0 = performance.now();
    await drivers[0]!.inventory(); // connects: ssh master, agent start, version check
    const connectMs = performance.now() - t0;
    await local.inventory();
    const l: number[] = [];
    const s: number[] = [];
    // Interleaved in blocks of 5, so drift in the machine's load hits both alike.
    for (let i = 0; i < o.calls; i += 5) {
      l.push(...(await timeCalls(local, 5)));
      s.push(...(await timeCalls(drivers[0]!, 5)));
    }
    res.calls = { method: "inventory", n: l.length, local: stats(l)!, ssh: stats(s)!, connectMs };
    o.log("hosts: calls", JSON.stringify(res.calls));

    // Bases on every host (outside every timing).
    t0 = performance.now();
    await Promise.all(
      [local as HostDriver, ...drivers].map((d) =>
        d.ensureBase({ name: "base", source: { kind: "busybox", sizeMiB: 32 } }),
      ),
    );
    res.setupMs.bases = Math.round(performance.now() - t0);

    // The spanning network: a switch "lan" on each host, cables from host 1 to 2 and 3.
    t0 = performance.now();
    await create("network", {
      name: "lan",
      hosts: lab.hosts.map((h) => ({ ...ref(lab, h), stateDir: h.stateDir })),
    });
    res.setupMs.spanningNetwork = Math.round(performance.now() - t0);

    // 2. Ping and TCP: a and b on host 1's switch, c on host 2 (one cable), e on host 3 (two cables: 2-1-3).
    const probes = groupSpec("p", kernel, "lan", 2, 0);
    await drivers[0]!.applyGroup(probes);
    await drivers[1]!.applyGroup(groupSpec("q", kernel, "lan", 1, 2));
    await drivers[2]!.applyGroup(groupSpec("r", kernel, "lan", 1, 3));
    const ip = (k: number) => fleetNic(k, 1).ipv4.split("/")[0]!;
    /** RTTs on host 1's switch, across one cable (1-2) and two (2-1-3), in alternating blocks of 10. */
    const pingPaths = async () => {
      const p = { same: [] as number[], across: [] as number[], two: [] as number[] };
      for (let i = 0; i < o.pings; i += 10) {
        p.same.push(...(await pingRtts(drivers[0]!, "pm0", ip(1), 10)));
        p.across.push(...(await pingRtts(drivers[0]!, "pm0", ip(2), 10)));
        p.two.push(...(await pingRtts(drivers[1]!, "qm0", ip(3), 10)));
      }
      return p;
    };
    /** MiB/s from host 1's guest to host 2's across the cable, 3 rounds (each on its own port). */
    const tcpAcross = async (portBase: number) => {
      const out: number[] = [];
      for (let r = 0; r < 3; r++)
        out.push(
          await tcpMiBs(
            { d: drivers[0]!, guest: "pm0" },
            { d: drivers[1]!, guest: "qm0", ip: ip(2) },
            o.tcpMiB,
            portBase + r,
          ),
        );
      return out;
    };
    const { same, across, two } = await pingPaths();
    res.ping = {
      count: same.length,
      sameSwitch: stats(same)!,
      acrossCable: stats(across)!,
      twoCables: stats(two)!,
    };
    o.log("hosts: ping", JSON.stringify(res.ping));
    const tcp: NonNullable<HostsResult["tcp"]> = { mib: o.tcpMiB, sameSwitchMiBs: [], acrossCableMiBs: [] };
    for (let r = 0; r < 3; r++) {
      try {
        tcp.sameSwitchMiBs.push(
          await tcpMiBs(
            { d: drivers[0]!, guest: "pm0" },
            { d: drivers[0]!, guest: "pm1", ip: ip(1) },
            o.tcpMiB,
            5000 + r,
          ),
        );
        tcp.acrossCableMiBs.push(
          await tcpMiBs(
            { d: drivers[0]!, guest: "pm0" },
            { d: drivers[1]!, guest: "qm0", ip: ip(2) },
            o.tcpMiB,
            5100 + r,
          ),
        );
      } catch (e) {
        res.errors.push(`hosts: tcp round ${r + 1}: ${String(e).slice(0, 300)}`);
      }
    }
    res.tcp = tcp;
    o.log("hosts: tcp", JSON.stringify(tcp));

    // 2b. The same paths across UDP cables: the network switched in place (its guests stay).
    try {
      const net = made.find((r) => r.kind === "network")!;
      const { inputs, failures } = await impl.check("network", net.outs, { ...net.outs, cable: "udp" });
      if (failures.length) throw new Error(`cable udp: ${JSON.stringify(failures)}`);
      net.outs = (await impl.update("network", net.id, net.outs, inputs)).outs;
      const u = await pingPaths();
      res.ping.udp = { sameSwitch: stats(u.same)!, acrossCable: stats(u.across)!, twoCables: stats(u.two)! };
      o.log("hosts: ping over udp", JSON.stringify(res.ping.udp));
      tcp.acrossUdpCableMiBs = await tcpAcross(5200);
      o.log("hosts: tcp over udp", JSON.stringify(tcp.acrossUdpCableMiBs));
      // A full frame (1514 bytes) in one datagram is 1542 bytes of IP: two fragments on a 1500-byte
      // link. With the guests' MTU at 1458 every frame fits one datagram.
      const mtu = (m: number) =>
        Promise.all([
          drivers[0]!.exec("pm0", `ip link set eth0 mtu ${m}`, { timeoutMs: 30_000 }),
          drivers[1]!.exec("qm0", `ip link set eth0 mtu ${m}`, { timeoutMs: 30_000 }),
        ]);
      await mtu(1458);
      tcp.acrossUdpCableMtu1458MiBs = await tcpAcross(5300);
      await mtu(1500);
      o.log("hosts: tcp over udp, MTU 1458", JSON.stringify(tcp.acrossUdpCableMtu1458MiBs));
    } catch (e) {
      res.errors.push(`hosts: udp cables: ${String(e).slice(0, 300)}`);
    }
    await drivers[0]!.removeGroup(probes);
    await drivers[1]!.removeGroup(groupSpec("q", kernel, "lan", 1, 2));
    await drivers[2]!.removeGroup(groupSpec("r", kernel, "lan", 1, 3));

    // 3. 3 x N guests on the spanning network (one group per host, all at once) vs on one host.
    const n = o.perHost;
    const fleet: NonNullable<HostsResult["fleet"]> = {
      threeHostsReady: 0,
      oneHostAllReady: 0,
      oneHostNReady: 0,
      perHostMs: [],
    };
    res.fleet = fleet;
    res.loadavg.push(loadavg());
    const groups = lab.hosts.map((_, i) => groupSpec(`h${i}`, kernel, "lan", n, i * n));
    t0 = performance.now();
    const settled = await Promise.allSettled(
      groups.map((g, i) =>
        drivers[i]!.applyGroup(g).then((r) => {
          fleet.perHostMs[i] = Math.round(performance.now() - t0);
          return r;
        }),
      ),
    );
    if (settled.every((x) => x.status === "fulfilled")) fleet.threeHostsMs = performance.now() - t0;
    for (const [i, x] of settled.entries()) {
      if (x.status === "rejected")
        res.errors.push(`hosts: group on host ${i + 1}: ${String(x.reason).slice(0, 400)}`);
      else
        fleet.threeHostsReady += Object.values(x.value.members).filter((m) => m.state === "running").length;
    }
    // One cross-host check that the fleet is one segment: the first guest of host 3 reaches host 2's.
    const probe = await drivers[2]!
      .exec("h2m0", `ping -c 1 -W 5 ${ip(n)}`, { timeoutMs: 30_000 })
      .catch((e) => ({
        exitCode: -1,
        output: String(e),
      }));
    if (probe.exitCode !== 0)
      res.errors.push(`hosts: h2m0 cannot reach ${ip(n)}: ${probe.output.slice(-200)}`);
    for (const [i, g] of groups.entries())
      await drivers[i]!.removeGroup(g).catch((e) => res.errors.push(String(e)));
    o.log("hosts: three hosts", JSON.stringify(fleet), loadavg());

    // Every one of the 3 x N guests on one switch: more ports than the default 64.
    await local.ensureNetwork({ name: "lan", ports: 3 * n + 8 });
    for (const [key, size] of [
      ["all", 3 * n],
      ["n", n],
    ] as const) {
      const g = groupSpec(`l${key}`, kernel, "lan", size, 0);
      t0 = performance.now();
      try {
        const r = await local.applyGroup(g);
        const ms = performance.now() - t0;
        const ready = Object.values(r.members).filter((m) => m.state === "running").length;
        if (key === "all") [fleet.oneHostAllMs, fleet.oneHostAllReady] = [ms, ready];
        else [fleet.oneHostNMs, fleet.oneHostNReady] = [ms, ready];
      } catch (e) {
        res.errors.push(`hosts: local group of ${size}: ${String(e).slice(0, 400)}`);
      }
      await local.removeGroup(g).catch((e) => res.errors.push(String(e)));
      o.log(`hosts: one host, ${size}`, JSON.stringify(fleet), loadavg());
    }
    await local.removeNetwork("lan");
  } catch (e) {
    res.errors.push(`hosts: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`.slice(0, 2000));
  }
  try {
    // 4. The same comparison through one `pulumi up` per stack. The runtime parts' spanning network
    // goes first: its cables' processes would run through the timings, and destroy is checked against
    // what the hosts held before.
    await removeMade();
    if (o.upRounds > 0)
      res.up = await upComparison({
        lab,
        drivers,
        localStateDir: o.stateDir,
        backendDir: o.backendDir,
        perHost: o.perHost,
        rounds: o.upRounds,
        log: o.log,
        errors: res.errors,
      });
  } catch (e) {
    res.errors.push(`hosts up: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`.slice(0, 2000));
  } finally {
    await removeMade();
    await closeRemotes().catch(() => undefined);
    try {
      lab.teardown();
    } catch (e) {
      res.errors.push(`hosts teardown: ${String(e).slice(0, 1000)}`);
    }
    release();
    res.loadavg.push(loadavg());
  }
  return res;
}
