/**
 * The "three target hosts" parts of docs/benchmarks.md (section "hosts",
 * bench/hosts.ts): a target row and a section. bench/report.ts calls them.
 */
import { fmtS } from "./lib";
import type { Results } from "./results";

const ratio = (a?: number, b?: number) =>
  a === undefined || b === undefined || b === 0 ? "n/a" : `${(a / b).toFixed(2)}x`;
const pf = (ok: boolean | undefined) => (ok === undefined ? "not measured" : ok ? "**pass**" : "**FAIL**");
const ms = (x?: number, digits = 2) => (x === undefined ? "n/a" : `${x.toFixed(digits)} ms`);
const med = (xs: number[]) => {
  const s = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (s.length === 0) return undefined;
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

export function hostsTargetRows(res: Results): string[] {
  const h = res.hosts;
  const f = h?.fleet;
  const n = h?.perHost ?? 32;
  const rtt = h?.ping
    ? `; ping RTT median: one switch ${ms(h.ping.sameSwitch.median)}, across an SSH cable ${ms(h.ping.acrossCable.median)} (\`udp://\` cables do not exist yet)`
    : "";
  return [
    `| 3 hosts x ${n} guests on one spanning network ≤ 1.5x of ${n} guests on one host (runtime, no Pulumi; see "Three target hosts"); cross-host ping RTT per cable kind | ${f?.threeHostsMs !== undefined ? `${fmtS(f.threeHostsMs)} vs ${fmtS(f.oneHostNMs)}: ${ratio(f.threeHostsMs, f.oneHostNMs)} (vs the same ${3 * n} guests on one host: ${ratio(f.threeHostsMs, f.oneHostAllMs)})${rtt}` : h ? `not reached (${h.errors[0]?.slice(0, 120) ?? "?"})` : "not run (BENCH_HOSTS=1)"} | ${pf(f?.threeHostsMs !== undefined && f.oneHostNMs !== undefined ? f.threeHostsMs <= 1.5 * f.oneHostNMs : undefined)} |`,
  ];
}

export function hostsSection(res: Results): string[] {
  const h = res.hosts;
  const L: string[] = ["## Three target hosts (SSH)", ""];
  if (!h) {
    L.push(
      "Not run: section `hosts` runs only with `BENCH_HOSTS=1` (it needs root: it makes three network namespaces, a bridge, veths and three users, and removes them at the end).",
      "",
    );
    return L;
  }
  L.push(
    `Run with \`BENCH_HOSTS=1\` (needs root; off by default in \`npm run bench\`). Three hosts made on this machine by test/helpers/hosts.ts: a network namespace each (a veth into one bridge), Debian's sshd on its own address, an unprivileged user, the agent on its PATH; reached as the provider reaches them (provider/driver-factory.ts: an \`AgentClient\` through \`ssh\` with a ControlMaster, one per host). **The three hosts share this machine's 2 cores**: a guest on "another host" costs the same CPU as one here, so 3 x N guests across them are 3 x the work of N on one host. Every namespace, veth, bridge, user and process is removed at the end (the lab's teardown throws if any is left). Load average at start / before the fleet / at end: ${h.loadavg.join(" / ")}. Set-up outside every timing: ${Object.entries(
      h.setupMs,
    )
      .map(([k, v]) => `${k} ${fmtS(v)}`)
      .join(", ")}.`,
    "",
  );
  if (h.calls) {
    const c = h.calls;
    L.push(
      "| HostDriver call | calls | local (`LocalRuntime`): median / p90 | over SSH (`AgentClient`): median / p90 | ratio (median) | first SSH call (connects) |",
      "|---|---|---|---|---|---|",
      `| \`${c.method}()\` | ${c.n} each, interleaved in blocks of 5 | ${ms(c.local.median, 3)} / ${ms(c.local.p90, 3)} | ${ms(c.ssh.median)} / ${ms(c.ssh.p90)} | ${ratio(c.ssh.median, c.local.median)} | ${fmtS(c.connectMs)} |`,
      "",
    );
  }
  if (h.ping) {
    const p = h.ping;
    L.push(
      "Ping RTT, in the guest (busybox `ping -i 0.2`, blocks of 10 alternating). Two guests on host 1's switch; host 1 to host 2 across one SSH cable (`dpipe` + `vde_plug` over `ssh`, docs/hosts.md); host 2 to host 3 across two cables (the spanning network is a star from host 1). SSH is the only cable kind: `udp://` cables do not exist yet.",
      "",
      "| path | pings | RTT median | p90 | min | max | ratio to one switch (median) |",
      "|---|---|---|---|---|---|---|",
      ...(
        [
          ["one switch (host 1)", p.sameSwitch],
          ["across one SSH cable (host 1 - host 2)", p.acrossCable],
          ...(p.twoCables
            ? ([["across two SSH cables (host 2 - host 1 - host 3)", p.twoCables]] as const)
            : []),
        ] as const
      ).map(
        ([label, s]) =>
          `| ${label} | ${s.n} | ${ms(s.median, 3)} | ${ms(s.p90, 3)} | ${ms(s.min, 3)} | ${ms(s.max, 3)} | ${ratio(s.median, p.sameSwitch.median)} |`,
      ),
      "",
    );
  }
  if (h.tcp) {
    const t = h.tcp;
    const fmt = (xs: number[]) => xs.map((x) => x.toFixed(1)).join(", ");
    L.push(
      `TCP throughput, in the guest: \`dd if=/dev/zero bs=64k\` of ${t.mib} MiB piped into busybox \`nc\`, timed by the sending guest's clock (\`/proc/uptime\`, 10 ms steps) until its \`nc\` exits; the receiver's \`nc -l\` pipes into \`wc -c\`, and a round counts only if every byte arrived. What is still in socket buffers (and, across a cable, in \`ssh\`'s and \`dpipe\`'s) when the sender exits is not timed: with 64 MiB that is a few percent at most. Both guests' CPU is this machine's (2 shared cores), so this is CPU-bound, not link-bound. Rounds alternate.`,
      "",
      "| path | MiB/s median | rounds | ratio to one switch |",
      "|---|---|---|---|",
      `| one switch | ${med(t.sameSwitchMiBs)?.toFixed(1) ?? "n/a"} | ${fmt(t.sameSwitchMiBs)} | 1.00x |`,
      `| across one SSH cable | ${med(t.acrossCableMiBs)?.toFixed(1) ?? "n/a"} | ${fmt(t.acrossCableMiBs)} | ${ratio(med(t.acrossCableMiBs), med(t.sameSwitchMiBs))} |`,
      "",
    );
  }
  if (h.fleet) {
    const f = h.fleet;
    const n = h.perHost;
    L.push(
      `Fleets, through the runtime (no Pulumi: one \`applyGroup\` per host, called at once from the benchmark process; over SSH for the three hosts, \`LocalRuntime\` for one host). Members 64 MiB, lean kernel, one NIC each on network \`lan\` (10.0.0.0/24): on the three hosts the spanning network (its switches and cables made before the clock starts). After the three-host fleet, a guest on host 3 pings one on host 2 (two cables) to check it is one segment. From the call to the last group's return (every member ready).`,
      "",
      "| fleet | time to all ready | ready | ratio to " + n + " on one host | per host (returned at) |",
      "|---|---|---|---|---|",
      `| 3 hosts x ${n} (spanning network) | ${fmtS(f.threeHostsMs)} | ${f.threeHostsReady}/${3 * n} | ${ratio(f.threeHostsMs, f.oneHostNMs)} | ${f.perHostMs.map((x) => fmtS(x)).join(", ")} |`,
      `| ${3 * n} on one host (one switch) | ${fmtS(f.oneHostAllMs)} | ${f.oneHostAllReady}/${3 * n} | ${ratio(f.oneHostAllMs, f.oneHostNMs)} | |`,
      `| ${n} on one host | ${fmtS(f.oneHostNMs)} | ${f.oneHostNReady}/${n} | 1.00x | |`,
      "",
    );
  }
  if (h.errors.length)
    L.push("Errors:", "", ...h.errors.map((e) => `- ${e.replace(/\n/g, " ").slice(0, 400)}`), "");
  return L;
}
