import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { main } from "../../src/cli/main";
import { stackTopology } from "../../src/cli/stack-topology";
import { topologyDot, topologyOf } from "../../src/cli/topology";
import type { Io } from "../../src/cli/verb";
import { LocalRuntime } from "../../src/host/runtime";
import { newTestDir } from "../helpers/paths";

const REPO = resolve(__dirname, "..", "..");
const haveDot = existsSync("/usr/bin/dot");

async function umlfleet(args: string[], env: NodeJS.ProcessEnv = { PATH: "/usr/bin:/bin" }) {
  let out = "";
  let err = "";
  const io: Io = { out: (t) => (out += t), err: (t) => (err += t), env };
  const status = await main(args, io);
  return { status, out, err };
}

const T = "pulumi-nodejs:dynamic/umlfleet:";
const encrypted = { "4dabf18193072939515e22adb298388d": "1b47061264138c4ac30d75fd1eb44270", ciphertext: "x" };
const A = "ssh://uml@lab-a:22";
const B = "ssh://uml@lab-b:22";
/** What `pulumi stack export` holds for a lab on two target hosts (the fields the graph reads). */
const EXPORT = {
  version: 3,
  deployment: {
    resources: [
      { urn: "urn:pulumi:s::p::pulumi:pulumi:Stack::p-s", type: "pulumi:pulumi:Stack" },
      { urn: "urn:h:a", type: `${T}Host`, outputs: { hostId: A, ssh: encrypted } },
      { urn: "urn:h:b", type: `${T}Host`, outputs: { hostId: B, ssh: encrypted } },
      ...["a", "b"].flatMap((h) => [
        {
          urn: `urn:base:${h}`,
          type: `${T}RootFilesystem`,
          outputs: { name: "bb", host: encrypted },
          propertyDependencies: { host: [`urn:h:${h}`] },
        },
        {
          urn: `urn:disk:${h}`,
          type: `${T}Disk`,
          outputs: { name: `g${h}-root`, base: "bb", host: encrypted },
          propertyDependencies: { host: [`urn:h:${h}`] },
        },
        {
          urn: `urn:vm:${h}`,
          type: `${T}Instance`,
          outputs: {
            name: `g${h}`,
            rootDisk: `g${h}-root`,
            nics: [{ network: "lan", ipv4: h === "a" ? "10.0.0.1/24" : "10.0.0.2/24" }],
            host: encrypted,
          },
          propertyDependencies: { host: [`urn:h:${h}`] },
        },
      ]),
      {
        urn: "urn:net:lan",
        type: `${T}Network`,
        outputs: {
          name: "lan",
          hosts: encrypted,
          switches: [
            { hostId: A, switchDir: "/s/a", running: true },
            { hostId: B, switchDir: "/s/b", running: true },
          ],
          cables: [{ name: "lan-0badcafe", from: A, to: B, up: false }],
        },
        propertyDependencies: { hosts: ["urn:h:a", "urn:h:b"] },
      },
      {
        urn: "urn:group",
        type: `${T}InstanceGroup`,
        outputs: {
          name: "fleet",
          base: "bb",
          members: encrypted,
          memberInfo: { m1: { state: "running", nicInfo: [{ index: 0, network: "lan", mac: "x" }] } },
          host: encrypted,
        },
        propertyDependencies: { host: ["urn:h:a"] },
      },
      {
        urn: "urn:link",
        type: `${T}SerialLink`,
        outputs: {
          name: "tty",
          a: { instance: "ga", line: 1 },
          b: { instance: "m1", line: 2 },
          host: encrypted,
        },
        propertyDependencies: { host: ["urn:h:a"] },
      },
    ],
  },
};

describe("umlfleet graph", () => {
  const dir = newTestDir("graph");
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it("reads a stack export: hosts from Host dependencies (their ssh stays encrypted), cables, groups, links", () => {
    const t = stackTopology(EXPORT);
    expect(t.bases).toEqual([
      { host: A, name: "bb" },
      { host: B, name: "bb" },
    ]);
    expect(t.networks).toEqual([
      { host: A, name: "lan" },
      { host: B, name: "lan" },
    ]);
    expect(t.cables).toEqual([{ name: "lan-0badcafe", network: "lan", from: A, to: B, up: false }]);
    expect(t.machines).toEqual([
      { host: A, name: "ga", base: "bb", nics: [{ network: "lan", ipv4: "10.0.0.1/24" }] },
      { host: B, name: "gb", base: "bb", nics: [{ network: "lan", ipv4: "10.0.0.2/24" }] },
      { host: A, name: "m1", base: "bb", nics: [{ network: "lan" }] },
    ]);
    expect(t.links).toEqual([
      { host: A, name: "tty", a: { instance: "ga", line: 1 }, b: { instance: "m1", line: 2 } },
    ]);
    expect(() => stackTopology({ version: 3 }, "x.json")).toThrow(/x\.json: not a `pulumi stack export`/);
  });

  it("draws each host as a cluster and a cable between its network's switches, dashed red when down", () => {
    const dot = topologyDot(stackTopology(EXPORT));
    expect(dot).toContain(`subgraph "cluster_${A}" {`);
    expect(dot).toContain(`subgraph "cluster_${B}" {`);
    expect(dot).toContain(
      `"net:${A}/lan" -- "net:${B}/lan" [penwidth=2, label="cable lan-0badcafe (down)", style=dashed, color=red];`,
    );
    expect(dot).toContain(`"vm:${B}/gb" -- "net:${B}/lan" [label="eth0 10.0.0.2/24"];`);
    expect(dot).toContain(`"vm:${A}/ga" -- "vm:${A}/m1" [style=dashed, label="tty: ttyS1-ttyS2"];`);
    // Only local resources: no clusters, the names as they were.
    const local = topologyDot({
      machines: [{ host: "local", name: "v", nics: [{ network: "n" }] }],
      networks: [{ host: "local", name: "n" }],
      bases: [],
      links: [],
      cables: [],
    });
    expect(local).not.toContain("subgraph");
    expect(local).toContain('"vm:v" -- "net:n" [label="eth0"];');
  });

  it("labels an impaired link with what it declares, and draws a cut one (down) dashed red", () => {
    const dot = topologyDot({
      machines: [
        {
          host: "local",
          name: "v",
          nics: [
            { network: "wan", ipv4: "10.0.0.1/24", impairment: { delayMs: 20, jitterMs: 5, lossPercent: 1 } },
            { network: "lan", impairment: { rateKbit: 512, down: true } },
          ],
        },
      ],
      networks: [],
      bases: [],
      links: [],
      cables: [],
    });
    expect(dot).toContain('"vm:v" -- "net:wan" [label="eth0 10.0.0.1/24\\ndelay 20ms ±5ms, loss 1%"];');
    expect(dot).toContain('"vm:v" -- "net:lan" [label="eth1\\n512 kbit/s, down", style=dashed, color=red];');
    const exported = structuredClone(EXPORT);
    const vm = exported.deployment.resources.find((r) => r.urn === "urn:vm:a")!;
    (vm.outputs as { nics: unknown[] }).nics = [{ network: "lan", impairment: { down: true } }];
    expect(stackTopology(exported).machines[0]!.nics).toEqual([
      { network: "lan", impairment: { down: true } },
    ]);
  });

  it("reads a state folder's cables: the far end is another host", async () => {
    const stateDir = join(dir, "s");
    const cable = join(stateDir, "cables", "lan-1234abcd");
    mkdirSync(cable, { recursive: true });
    const peer = { host: "10.0.0.9", port: 2222, user: "uml", hostKey: "ssh-ed25519 AAAA" };
    writeFileSync(
      join(cable, "cable.json"),
      JSON.stringify({
        schemaVersion: 1,
        spec: { name: "lan-1234abcd", network: "lan", peer },
        publicKey: "k",
      }),
    );
    const t = await topologyOf(new LocalRuntime({ stateDir }));
    expect(t.cables).toEqual([
      { name: "lan-1234abcd", network: "lan", from: "local", to: "ssh://uml@10.0.0.9:2222", up: false },
    ]);
    expect(t.networks).toEqual([{ host: "ssh://uml@10.0.0.9:2222", name: "lan" }]);
  });

  it("names bad arguments with exit status 2, an unreadable export with 1", async () => {
    const cases: [string[], string][] = [
      [["graph", "--format", "png"], '--format must be one of dot, svg (got "png")'],
      [["graph", "--format"], "--format needs a value"],
      [["graph", "--stack-export", "x", "--state-dir", "y"], "two sources"],
      [["graph", "extra"], 'unexpected argument "extra"'],
    ];
    for (const [args, message] of cases) {
      const r = await umlfleet(args);
      expect(r.status, args.join(" ")).toBe(2);
      expect(r.err, args.join(" ")).toContain(message);
    }
    const missing = await umlfleet(["graph", "--stack-export", join(dir, "none.json")]);
    expect(missing.status).toBe(1);
    expect(missing.err).toContain("none.json");
    const noDot = await umlfleet(["graph", "--state-dir", join(dir, "empty"), "--format", "svg"], {
      PATH: dir,
    });
    expect(noDot.status).toBe(1);
    expect(noDot.err).toContain("apt-get install -y graphviz");
  });

  it.skipIf(!haveDot)("renders SVG through dot that names every machine and network", async () => {
    mkdirSync(dir, { recursive: true });
    const file = join(dir, "export.json");
    writeFileSync(file, JSON.stringify(EXPORT));
    const r = await umlfleet(["graph", "--stack-export", file, "--format", "svg"]);
    expect(r.status, r.err).toBe(0);
    expect(r.out).toMatch(/^<\?xml/);
    const texts = [...r.out.matchAll(/>([^<]*)<\/text>/g)].map((m) => m[1]!.replace(/&#45;/g, "-"));
    for (const name of ["ga", "gb", "m1", "lan", A, B]) expect(texts).toContain(name);
  });

  it("docs/img/bridge-lab.svg is the rendering of docs/img/bridge-lab.dot (the tool's output for bridge-lab)", () => {
    const dot = readFileSync(join(REPO, "docs", "img", "bridge-lab.dot"), "utf8");
    const svg = readFileSync(join(REPO, "docs", "img", "bridge-lab.svg"), "utf8");
    // Every node and edge of the DOT is an element titled so in the SVG, and nothing else.
    const unq = (s: string) => JSON.parse(s) as string;
    const nodes = [...dot.matchAll(/^\s*("[^"]+") \[/gm)].map((m) => unq(m[1]!));
    const edges = [...dot.matchAll(/^\s*("[^"]+") -- ("[^"]+") \[/gm)].map(
      (m) => `${unq(m[1]!)}--${unq(m[2]!)}`,
    );
    const titles = [...svg.matchAll(/<title>([^<]*)<\/title>/g)]
      .map((m) => m[1]!.replace(/&#45;/g, "-").replace(/&quot;/g, '"'))
      .filter((x) => x !== "umlfleet");
    expect(nodes.length).toBeGreaterThan(0);
    expect(titles.sort()).toEqual([...nodes, ...edges].sort());
    if (haveDot) expect(execFileSync("dot", ["-Tsvg"], { input: dot, encoding: "utf8" })).toContain("<svg");
  });
});
