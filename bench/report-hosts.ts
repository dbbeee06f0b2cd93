/**
 * The "three target hosts" parts of docs/benchmarks.md (section "hosts",
 * bench/hosts.ts): a target row and a section. bench/report.ts calls them.
 */
import type { UpComparison, UpSide } from "./hosts-up";
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
    ? `; ping RTT median: one switch ${ms(h.ping.sameSwitch.median)}, across an SSH cable ${ms(h.ping.acrossCable.median)}, ${h.ping.udp ? `across a UDP cable ${ms(h.ping.udp.acrossCable.median)}` : "UDP cable not measured"}`
    : "";
  return [
    `| 3 hosts x ${n} guests on one spanning network ≤ 1.5x of ${n} guests on one host (runtime, no Pulumi; see "Three target hosts"); cross-host ping RTT per cable kind | ${f?.threeHostsMs !== undefined ? `${fmtS(f.threeHostsMs)} vs ${fmtS(f.oneHostNMs)}: ${ratio(f.threeHostsMs, f.oneHostNMs)} (vs the same ${3 * n} guests on one host: ${ratio(f.threeHostsMs, f.oneHostAllMs)})${rtt}` : h ? `not reached (${h.errors[0]?.slice(0, 120) ?? "?"})` : "not run (BENCH_HOSTS=1)"} | ${pf(f?.threeHostsMs !== undefined && f.oneHostNMs !== undefined ? f.threeHostsMs <= 1.5 * f.oneHostNMs : undefined)} |`,
    upTargetRow(res),
  ];
}

/** Per side, the medians over the rounds of the up's time; whether every round had every guest ready. */
function upSummary(up: UpComparison, n: number) {
  const of = (side: "threeHosts" | "oneHost" | "oneHostAll", size: number) => {
    const sides = up.rounds.flatMap((r) => (r[side] ? [r[side]] : []));
    return {
      ms: med(sides.flatMap((s) => (s.ms !== undefined ? [s.ms] : []))),
      ready: sides.map((s) => s.ready),
      allReady:
        sides.length === up.rounds.length && sides.every((s) => s.ms !== undefined && s.ready === size),
    };
  };
  return { three: of("threeHosts", 3 * n), one: of("oneHost", n), all: of("oneHostAll", 3 * n) };
}

function upTargetRow(res: Results): string {
  const h = res.hosts;
  const n = h?.perHost ?? 32;
  const label = `| 3 hosts x ${n} guests through one \`pulumi up\` ≤ 1.5x ${n} guests on one host (see "Three target hosts"); every guest ready; \`pulumi destroy\` leaves nothing`;
  const up = h?.up;
  if (!up || up.rounds.length === 0)
    return `${label} | ${h ? "not measured (results from before this part, or `BENCH_HOSTS_UP_ROUNDS=0`)" : "not run (BENCH_HOSTS=1)"} | not measured |`;
  const { three, one, all } = upSummary(up, n);
  const rounds = up.rounds.map((r) => `${fmtS(r.threeHosts?.ms)} / ${fmtS(r.oneHost?.ms)}`).join(", ");
  const measured = `${fmtS(three.ms)} vs ${fmtS(one.ms)}: ${ratio(three.ms, one.ms)} (median of ${up.rounds.length} rounds: ${rounds}); ready per round ${three.ready.join(", ")} of ${3 * n} / ${one.ready.join(", ")} of ${n}; destroy left ${up.left.length === 0 ? "nothing" : `${up.left.length} (see "Three target hosts")`}${all.ms !== undefined ? `; the same ${3 * n} guests on one host (the same CPU work: the three hosts share this machine's cores) ${fmtS(all.ms)}: 3 hosts at ${ratio(three.ms, all.ms)} of it` : ""}`;
  const ok =
    three.ms !== undefined && one.ms !== undefined
      ? three.ms <= 1.5 * one.ms && three.allReady && one.allReady && up.left.length === 0
      : undefined;
  return `${label} | ${measured} | ${pf(ok)} |`;
}

/** "where the time goes" of one up: its steps and quickUp's timings, ms after the call. */
function upSteps(s: UpSide | undefined): string {
  if (!s) return "n/a | | | | | |";
  const changed = s.steps.filter((x) => x.op !== "same");
  const net = changed.find((x) => x.type === "Network");
  const groups = changed.filter((x) => x.type === "InstanceGroup");
  // Unchanged resources: when the engine had the last one's check and diff, per type.
  const same = (type: string) => {
    const xs = s.steps.filter((x) => x.op === "same" && x.type === type).map((x) => x.startMs);
    return xs.length ? fmtS(Math.max(...xs)) : "n/a";
  };
  const span = (x?: { startMs: number; doneMs?: number }) =>
    x ? `${fmtS(x.startMs)} – ${fmtS(x.doneMs)}` : "n/a";
  const first = changed[0]?.startMs;
  const done = changed.flatMap((x) => (x.doneMs !== undefined ? [x.doneMs] : []));
  const last = done.length ? Math.max(...done) : undefined;
  return [
    fmtS(s.timings?.preludeMs),
    `${same("Host")} / ${same("Kernel")} / ${same("RootFilesystem")}`,
    fmtS(first),
    span(net),
    groups.length ? groups.map((g) => `${g.name} ${span(g)}`).join("; ") : "n/a",
    `${fmtS(last)}, ${fmtS(s.timings?.summaryMs)}, ${fmtS(s.timings?.cliExitMs)}, ${fmtS(s.ms)}`,
  ].join(" | ");
}

function upLines(h: NonNullable<Results["hosts"]>, up: UpComparison, presetLpj: boolean): string[] {
  const n = h.perHost;
  const L: string[] = [
    `Fleets through one \`pulumi up\` (bench/hosts-up.ts, bench/hosts-program.ts): the real CLI through the Automation API (\`quickUp\`, automation/quick-up.ts, as the scale curve), a local file backend (\`?metadata=skip\`). Stack "3 hosts" declares three \`Host\` resources (over SSH, the host key pinned and the private key a secret, as test/e2e/hosts.test.ts does), on each a \`Kernel\` (the lab's copy of the lean kernel, by path) and a \`RootFilesystem\` (busybox, 32 MiB), one \`Network\` across the three (a switch on each, cables from host 1 to 2 and 3), and an \`InstanceGroup\` of ${n} per host (what \`Fleet\` declares; 64 MiB, one NIC on that network, 10.0.0.0/24); stack "one host" the same on this machine without a \`Host\` (a kernel and a base from the same file and recipe, a \`Network\`, one group of ${n}). Each stack's hosts, kernels and bases come first, in an \`up\` outside the rounds (${fmtS(up.prepMs.threeHosts)} / ${fmtS(up.prepMs.oneHost)}); each round times the \`up\` that adds the network and the guests, from the call to its return (every \`Host\` is checked again in it: an SSH connection and the host's facts), then an \`up\` takes them away again. ${presetLpj ? "Both stacks' state folders hold the kernel's delay-loop value from the runtime parts before (src/host/delay-calibration.ts)." : "**`BENCH_PRESET_LPJ=0`: this machine's guests calibrate their delay loop at every boot, the hosts' do not** (their agents run with sshd's environment, without `UMLFLEET_PRESET_LPJ=off`), so the two sides differ by that."} Order alternates by round (round 1: 3 hosts first). At the end \`pulumi destroy\` of each stack (${fmtS(up.destroyMs.threeHosts)} / ${fmtS(up.destroyMs.oneHost)}); then the hosts' state folders, their users' processes and cable keys, this machine's ssh clients to them and its state folder are compared with before the stacks${up.seenWhileUp !== undefined ? ` (the same comparison found ${up.seenWhileUp} new entries while round 1's three-host stack was up)` : ""}: ${
      up.left.length === 0
        ? "**nothing left**"
        : `**${up.left.length} left**: ${up.left
            .slice(0, 10)
            .map((x) => `\`${x}\``)
            .join(", ")}`
    }.${up.crossHostPing === undefined ? "" : ` After the first three-host up a guest on host 3 pinged one on host 2 (two cables): ${up.crossHostPing ? "answered" : "**no answer**"}.`} Load average at the start of this part / before destroy: ${up.loadavg.join(" / ")}.`,
    "",
    `| round | 3 hosts x ${n}: up | ready | ${n} on one host: up | ready | ratio | ${3 * n} on one host: up (ratio of 3 hosts to it) | wall (process) 3 hosts / one host | \`up\` back to no guests: 3 hosts / one host |`,
    "|---|---|---|---|---|---|---|---|---|",
    ...up.rounds.map(
      (r) =>
        `| ${r.round + 1} | ${fmtS(r.threeHosts?.ms)} | ${r.threeHosts ? `${r.threeHosts.ready}/${3 * n}` : "n/a"} | ${fmtS(r.oneHost?.ms)} | ${r.oneHost ? `${r.oneHost.ready}/${n}` : "n/a"} | ${ratio(r.threeHosts?.ms, r.oneHost?.ms)} | ${r.oneHostAll ? `${fmtS(r.oneHostAll.ms)}, ${r.oneHostAll.ready}/${3 * n} ready (${ratio(r.threeHosts?.ms, r.oneHostAll.ms)})` : "not measured"} | ${fmtS(r.threeHosts?.wallMs)} / ${fmtS(r.oneHost?.wallMs)} | ${fmtS(r.threeHosts?.downMs)} / ${fmtS(r.oneHost?.downMs)} |`,
    ),
    "",
    "Where each `up`'s time goes (engine events by time of receipt in the program's process, from the call): before the first step the CLI starts, runs the program, starts the dynamic-provider plugin and checks and diffs every resource (a `Host` already in the stack: its check begins the SSH connection and its diff waits for it and the agent's version, with `PULUMI_PARALLEL_DIFF=true` (automation/local-stack.ts) the three at once; a kernel, base or network waits for its hosts' outputs; \"unchanged\" is when the engine had the last resource of each kind decided); the network's create (on three hosts: its switches, then its cables, at once); each group's create (its members prepared and booted to ready on its host: the groups start together once the network is done); then the engine's summary, the CLI's exit and the return.",
    "",
    "| stack, round | first engine event | unchanged: Hosts / kernels / bases | first step started | network: start – done | groups: start – done | last step done, summary, CLI exit, returned |",
    "|---|---|---|---|---|---|---|",
    ...up.rounds.flatMap((r) => [
      `| 3 hosts, ${r.round + 1} | ${upSteps(r.threeHosts)} |`,
      `| one host, ${r.round + 1} | ${upSteps(r.oneHost)} |`,
      ...(r.oneHostAll ? [`| one host, ${3 * n} guests, ${r.round + 1} | ${upSteps(r.oneHostAll)} |`] : []),
    ]),
    "",
  ];
  const c = up.hostCheck;
  if (c)
    L.push(
      `The three \`Host\` checks alone (provider/host.ts \`checkHost\`, at once, on fresh connections as a new provider process makes them at every \`up\`; timed once, after round 1's three-host stack was back to no guests). A new Host's (connect, version, then the host's facts and default kernel): ${fmtS(c.ms)}; per host, the first connection (ssh master, the agent started, its version and state folder) ${c.perHost.map((x) => fmtS(x.connectMs)).join(", ")}, the whole check ${c.perHost.map((x) => fmtS(x.checkMs)).join(", ")}.` +
        (c.knownMs !== undefined
          ? ` A Host already in the stack, reached the same way (what each timed \`up\` here does: its check begins the connection, its diff waits for it and the version; refresh probes the facts): ${fmtS(c.knownMs)}; per host ${(c.knownPerHost ?? []).map(fmtS).join(", ")}.`
          : ""),
      "",
    );
  return L;
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
      "Ping RTT, in the guest (busybox `ping -i 0.2`, blocks of 10 alternating). Two guests on host 1's switch; host 1 to host 2 across one SSH cable (`dpipe` + `vde_plug` over `ssh`, docs/hosts.md); host 2 to host 3 across two cables (the spanning network is a star from host 1). Then the network switched to UDP cables (`cable: \"udp\"`: a `vde_plug` with vdeplug4's `udp://` on each host, an in-place update; the same guests) and the same three paths again, one switch as the control.",
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
          ...(p.udp
            ? ([
                ["UDP phase: one switch (host 1)", p.udp.sameSwitch],
                ["across one UDP cable (host 1 - host 2)", p.udp.acrossCable],
                ["across two UDP cables (host 2 - host 1 - host 3)", p.udp.twoCables],
              ] as const)
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
      ...(t.acrossUdpCableMiBs
        ? [
            `| across one UDP cable | ${med(t.acrossUdpCableMiBs)?.toFixed(1) ?? "n/a"} | ${fmt(t.acrossUdpCableMiBs)} | ${ratio(med(t.acrossUdpCableMiBs), med(t.sameSwitchMiBs))} |`,
            ...(t.acrossUdpCableMtu1458MiBs
              ? [
                  `| across one UDP cable, both guests' MTU 1458 (a full frame in one datagram, no IP fragments) | ${med(t.acrossUdpCableMtu1458MiBs)?.toFixed(1) ?? "n/a"} | ${fmt(t.acrossUdpCableMtu1458MiBs)} | ${ratio(med(t.acrossUdpCableMtu1458MiBs), med(t.sameSwitchMiBs))} |`,
                ]
              : []),
          ]
        : []),
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
  if (h.up) L.push(...upLines(h, h.up, res.knobs?.BENCH_PRESET_LPJ !== 0));
  if (h.errors.length)
    L.push("Errors:", "", ...h.errors.map((e) => `- ${e.replace(/\n/g, " ").slice(0, 400)}`), "");
  return L;
}
