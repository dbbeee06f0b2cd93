import { execFileSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { describe, expect, it } from "vitest";
import { haveCli, useExample } from "./example-harness";

const REPO = resolve(__dirname, "..", "..");
const NETWORKS = ["br-ab", "br-bc", "br-ca"];
/** The committed picture of this lab (docs/img/); UMLFLEET_REGEN_DOCS=1 rewrites it from the test's stack. */
const DOC_DOT = join(REPO, "docs", "img", "bridge-lab.dot");

const GUESTS = ["bridge-a", "bridge-b", "bridge-c"];
const ADDRESS: Record<string, string> = {
  "bridge-a": "10.30.0.1",
  "bridge-b": "10.30.0.2",
  "bridge-c": "10.30.0.3",
};
// Kernel bridge port states (sysfs brif/<port>/state).
const LISTENING = 1;
const LEARNING = 2;
const FORWARDING = 3;
const BLOCKING = 4;

/**
 * examples/bridge-lab: three guests in a triangle of networks, each a Linux
 * bridge with spanning tree on (forward delay 4 s, max age 6 s).
 */
describe.skipIf(!haveCli)("examples/bridge-lab", () => {
  const ex = useExample("bridge-lab");

  /** "guest/port" -> STP state, read from sysfs in every guest. */
  const portStates = async () => {
    const states: Record<string, number> = {};
    for (const g of GUESTS) {
      const out = await ex.sh(
        g,
        "for p in /sys/class/net/br0/brif/*; do echo ${p##*/} $(cat $p/state); done",
      );
      for (const line of out.trim().split("\n")) {
        const [port, state] = line.split(" ");
        states[`${g}/${port}`] = Number(state);
      }
    }
    return states;
  };
  const converged = async () => {
    const s = await portStates();
    const values = Object.values(s);
    return values.length > 0 && !values.some((v) => v === LISTENING || v === LEARNING) ? s : undefined;
  };
  /** Frames received on every bridge port, per guest. */
  const rxFrames = async () =>
    Object.fromEntries(
      await Promise.all(
        GUESTS.map(async (g) => [
          g,
          Number(
            (
              await ex.sh(
                g,
                "cat /sys/class/net/eth*/statistics/rx_packets | awk '{ s += $1 } END { print s }'",
              )
            ).trim(),
          ),
        ]),
      ),
    ) as Record<string, number>;

  it("comes up, and spanning tree blocks exactly one port of the loop: c's on the b-c link", async () => {
    const r = ex.ok(ex.pulumi("up"));
    expect(r.outputs?.guests).toEqual(GUESTS.map((g) => [g, "running", 0]));
    // Listening, then learning, one forward delay each: ~8 s.
    await expect.poll(converged, { timeout: 60_000, interval: 1_000 }).toBeDefined();
    const states = (await converged())!;
    expect(Object.keys(states).sort()).toEqual(GUESTS.flatMap((g) => [`${g}/eth0`, `${g}/eth1`]));
    expect(Object.entries(states).filter(([, s]) => s === BLOCKING)).toEqual([["bridge-c/eth0", BLOCKING]]);
    expect(Object.values(states).filter((s) => s === FORWARDING)).toHaveLength(5);
  });

  it("umlfleet graph draws the lab the same from the stack export and from the state folder; the SVG names every machine and network; docs/img holds this picture", () => {
    const exported = join(ex.dir, "export.json");
    writeFileSync(exported, JSON.stringify(ex.ok(ex.pulumi("export")).deployment));
    const umlfleet = (...args: string[]) =>
      execFileSync(join(REPO, "bin", "umlfleet"), ["graph", ...args], { encoding: "utf8" });
    const fromStack = umlfleet("--stack-export", exported);
    expect(umlfleet("--state-dir", ex.stateDir)).toBe(fromStack);
    const nics = [...fromStack.matchAll(/"vm:([a-z-]+)" -- "net:([a-z-]+)"/g)].map((m) => `${m[1]} ${m[2]}`);
    expect(nics.sort()).toEqual(
      ["a br-ab", "a br-ca", "b br-ab", "b br-bc", "c br-bc", "c br-ca"].map((x) => `bridge-${x}`),
    );
    const svg = umlfleet("--stack-export", exported, "--format", "svg");
    const texts = [...svg.matchAll(/>([^<]*)<\/text>/g)].map((m) => m[1]!.replace(/&#45;/g, "-"));
    for (const name of [...GUESTS, ...NETWORKS, "bridge-base"]) expect(texts, name).toContain(name);
    if (process.env.UMLFLEET_REGEN_DOCS === "1") {
      writeFileSync(DOC_DOT, fromStack);
      writeFileSync(DOC_DOT.replace(/\.dot$/, ".svg"), svg);
    }
    expect(fromStack, "docs/img/bridge-lab.dot is stale: run this test with UMLFLEET_REGEN_DOCS=1").toBe(
      readFileSync(DOC_DOT, "utf8"),
    );
  });

  it("every guest pings every other, and frame counters stay bounded: no broadcast storm", async () => {
    for (const from of GUESTS)
      for (const to of GUESTS.filter((g) => g !== from))
        expect(await ex.sh(from, `ping -c 1 -W 5 ${ADDRESS[to]}`)).toContain("1 packets received");
    const before = await rxFrames();
    await new Promise((r) => setTimeout(r, 5_000));
    const after = await rxFrames();
    // Quiet bridges exchange a BPDU per port each second; a storm loops frames by the thousand.
    for (const g of GUESTS) expect(after[g]! - before[g]!, g).toBeLessThan(100);
  });

  it("cutting the a-c link live (c's last NIC unplugged) sends a-c traffic through b once spanning tree reconverges", async () => {
    const bootCounts = () => GUESTS.map((g) => ex.rt().instanceStatus(g).bootCount);
    const booted = bootCounts();
    const p = ex.ok(ex.pulumi("preview", { cut: true }));
    expect(p.stdout).toMatch(/change\s+: "live: nics live"/);
    ex.ok(ex.pulumi("up", { cut: true }));
    expect(bootCounts()).toEqual(booted);
    expect(await ex.sh("bridge-c", "ls /sys/class/net/br0/brif")).toBe("eth0\n");
    // c's blocked port must listen and learn (2 x 4 s) before it forwards: a generous bound.
    const started = performance.now();
    await expect
      .poll(async () => (await ex.rt().exec("bridge-a", "ping -c 1 -W 1 10.30.0.3")).exitCode, {
        timeout: 30_000,
        interval: 500,
      })
      .toBe(0);
    console.log(`bridge-lab: a reached c again ${Math.round(performance.now() - started)} ms after the cut`);
    expect((await portStates())["bridge-c/eth0"]).toBe(FORWARDING);
    expect(await ex.sh("bridge-c", "ping -c 1 -W 5 10.30.0.1")).toContain("1 packets received");
  });

  it("destroys to a clean host", () => ex.destroyClean());

  it("with c's bridge swapped for the netlink one (one line of the program), the loop still blocks c's b-c port, and all ping", async () => {
    const r = ex.ok(ex.pulumi("up", { bridges: { c: "ip-link" } }));
    expect(r.outputs?.guests).toEqual(GUESTS.map((g) => [g, "running", 0]));
    // c booted the netlink script (and it succeeded); a and b kept brctl.
    const startup = (g: string) => ex.rt().instances.get(g)!.spec.startup ?? "";
    expect(startup("bridge-c")).toContain("ip link add br0 type bridge");
    expect(startup("bridge-c")).not.toContain("brctl");
    expect(startup("bridge-a")).toContain("brctl addbr br0");
    expect(await ex.sh("bridge-c", "ls /sys/class/net/br0/brif")).toBe("eth0\neth1\n");
    await expect.poll(converged, { timeout: 60_000, interval: 1_000 }).toBeDefined();
    const states = (await converged())!;
    expect(Object.entries(states).filter(([, s]) => s === BLOCKING)).toEqual([["bridge-c/eth0", BLOCKING]]);
    for (const to of ["bridge-a", "bridge-b"])
      expect(await ex.sh("bridge-c", `ping -c 1 -W 5 ${ADDRESS[to]}`)).toContain("1 packets received");
    ex.destroyClean();
  });
});
