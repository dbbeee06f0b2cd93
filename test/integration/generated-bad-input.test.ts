/**
 * The generated bad-input corpus (test/helpers/bad-input.ts): every invalid
 * spec is refused by the validator naming the field, and by the runtime
 * before any side effect (the state folder and the process list are the same
 * after the whole corpus as before it).
 */
import { existsSync, mkdirSync, readdirSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { InvalidSpecError, LocalRuntime, SpecValidator, UmlfleetError } from "../../src";
import type { InstanceGroupSpec, SpecKind } from "../../src/spec";
import { request } from "node:http";
import { MAX_BODY_BYTES } from "../../src/client/routes";
import { serveAgent } from "../helpers/agent";
import { badGroupMembers, badSpecs, type BadSpec } from "../helpers/bad-input";
import { newTestDir, processesMentioning } from "../helpers/runtime";

const KERNEL = "/usr/bin/linux.uml";
const instanceSeed = {
  name: "web",
  kernel: KERNEL,
  memoryMiB: 64,
  maxMemoryMiB: 128,
  rootDisk: "web-root",
  disks: [{ disk: "data", readOnly: true }],
  swapDisk: "swap",
  nics: [
    {
      network: "lan",
      mac: "52:54:00:12:34:56",
      ipv4: "10.0.0.1/24",
      ipv6: "fd00::1/64",
      gateway: "10.0.0.254",
      routes: [{ to: "10.9.0.0/16", via: "10.0.0.253" }],
    },
  ],
  serialLines: 2,
  shares: [{ name: "src", hostPath: "/srv/src", guestPath: "/mnt/src", readOnly: true }],
  hostname: "web",
  kernelArgs: ["quiet"],
  files: [
    { path: "/etc/motd", content: "hi", mode: 420 },
    { path: "/etc/banner", source: "/etc/hostname" },
  ],
  startup: "echo hello",
  startupMustSucceed: false,
  readiness: "marker",
  bootTimeoutMs: 30000,
  consoleLogKiB: 256,
  login: {
    user: "alice",
    sshPublicKeys: ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIG9f alice@laptop"],
    passwordHash: "$6$salt$0123456789abcdefABCDEF./",
  },
  runAs: { uid: 2100000005 },
};
/** A group member: an instance without what the group sets for it. */
const memberSeed = Object.fromEntries(
  Object.entries(instanceSeed).filter(([k]) => !["name", "rootDisk", "kernel"].includes(k)),
);
const seeds: [SpecKind, unknown][] = [
  ["kernel", { path: KERNEL }],
  ["kernel", { build: { profile: "lean", extraConfig: ["CONFIG_BRIDGE=y"], timeoutMs: 600000 } }],
  [
    "base",
    {
      name: "bb",
      source: { kind: "busybox", sizeMiB: 64, files: [{ path: "/etc/motd", content: "hi", mode: 420 }] },
    },
  ],
  ["base", { name: "img", source: { kind: "image", path: "/srv/root.img" } }],
  ["base", { name: "dir", source: { kind: "directory", path: "/srv/root", sizeMiB: 512 } }],
  [
    "base",
    {
      name: "deb",
      source: {
        kind: "debian",
        suite: "bookworm",
        variant: "minbase",
        packages: ["openssh-server", "libstdc++6"],
        sizeMiB: 1024,
        files: [{ path: "/etc/motd", content: "hi", mode: 420 }],
      },
    },
  ],
  ["disk", { name: "web-root", kind: "overlay", base: "bb" }],
  ["disk", { name: "data", kind: "blank", sizeMiB: 16, format: "ext4" }],
  ["network", { name: "lan", hub: false, ports: 8 }],
  [
    "network",
    {
      name: "wan",
      hostInterface: { name: "umlf-tap0", ipv4: "10.0.0.254/24" },
      capture: { path: join(tmpdir(), "wan.pcap") },
    },
  ],
  ["instance", instanceSeed],
  ["serial-link", { name: "cable", a: { instance: "a", line: 1 }, b: { instance: "b", line: 1 } }],
  ["instance-group", { name: "g", base: "bb", kernel: KERNEL, members: { m: memberSeed } }],
];

function corpus(): { cases: BadSpec[]; unclassified: string[] } {
  const unclassified: string[] = [];
  const cases = seeds.flatMap(([kind, seed]) => badSpecs(kind, seed, unclassified));
  const group = seeds.find(([k]) => k === "instance-group")![1] as InstanceGroupSpec;
  cases.push(...badGroupMembers(group, instanceSeed));
  return { cases, unclassified: [...new Set(unclassified)] };
}

/** The error names the mutated field, one of its parts (a required field inside it), or its unknown neighbour. */
function namesField(problems: readonly { field: string }[], field: string): boolean {
  return problems.some((p) => p.field === field || (field !== "" && p.field.startsWith(`${field}/`)));
}

/** Every path under `dir` with its size and mtime: what a side effect would change. */
function snapshot(dir: string): string[] {
  if (!existsSync(dir)) return [];
  const out: string[] = [];
  const walk = (d: string) => {
    for (const e of readdirSync(d)) {
      const p = join(d, e);
      const st = statSync(p);
      out.push(`${p} ${st.size} ${st.mtimeMs}`);
      if (st.isDirectory()) walk(p);
    }
  };
  walk(dir);
  return out.sort();
}

describe("generated bad input: refused naming the field, before any side effect", () => {
  const v = new SpecValidator(KERNEL);
  const { cases, unclassified } = corpus();
  const stateDir = newTestDir("gbi");
  afterAll(() => rmSync(stateDir, { recursive: true, force: true }));

  it("every seed is valid, so each case is invalid because of its one mutation", () => {
    for (const [kind, seed] of seeds)
      expect(v.problems(kind, structuredClone(seed)), `${kind} seed`).toEqual([]);
  });

  it("every unconstrained string field is classified as free text, with a reason", () => {
    expect(unclassified).toEqual([]);
  });

  it(`at least 500 generated cases (${cases.length}), each refused by the validator naming its field`, () => {
    expect(cases.length).toBeGreaterThanOrEqual(500);
    const missed: string[] = [];
    for (const c of cases) {
      const problems = v.problems(c.kind, structuredClone(c.spec));
      if (!namesField(problems, c.field))
        missed.push(`${c.kind} ${c.field} ${c.label}: ${JSON.stringify(problems).slice(0, 200)}`);
    }
    expect(missed).toEqual([]);
  });

  it("the runtime refuses every case with UMLFLEET_INVALID_SPEC and changes nothing on the host", async () => {
    mkdirSync(stateDir, { recursive: true });
    const rt = new LocalRuntime({ stateDir }, new SpecValidator(KERNEL));
    const call: Record<SpecKind, (spec: unknown) => Promise<unknown>> = {
      kernel: (s) => rt.ensureKernel(s as never, { timeoutMs: 5000 }),
      base: (s) => rt.ensureBase(s as never, { timeoutMs: 5000 }),
      disk: (s) => rt.ensureDisk(s as never, { timeoutMs: 5000 }),
      network: (s) => rt.ensureNetwork(s as never, { timeoutMs: 5000 }),
      instance: (s) => rt.createInstance(s, { timeoutMs: 5000 }),
      "serial-link": (s) => rt.ensureSerialLink(s as never, { timeoutMs: 5000 }),
      "instance-group": (s) => rt.applyGroup(s, undefined, { timeoutMs: 5000 }),
    };
    const before = snapshot(stateDir);
    const wrong: string[] = [];
    let refused = 0;
    for (const c of cases) {
      try {
        await call[c.kind](structuredClone(c.spec));
        wrong.push(`${c.kind} ${c.field} ${c.label}: accepted`);
      } catch (e) {
        if (e instanceof InvalidSpecError && namesField(e.problems, c.field)) refused++;
        else
          wrong.push(`${c.kind} ${c.field} ${c.label}: ${e instanceof UmlfleetError ? e.code : String(e)}`);
      }
    }
    expect(wrong).toEqual([]);
    expect(refused).toBe(cases.length);
    expect(snapshot(stateDir)).toEqual(before);
    expect(processesMentioning(stateDir)).toEqual([]);
  });
});

/** One POST to an agent on a unix socket: the status and the parsed body. */
function post(
  socket: string,
  route: string,
  body: unknown,
): Promise<{ status: number; body: Record<string, unknown> }> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        socketPath: socket,
        method: "POST",
        path: `/v1/${route}`,
        headers: { "content-type": "application/json" },
      },
      (res) => {
        let text = "";
        res.on("data", (c: Buffer) => (text += c.toString()));
        res.on("end", () =>
          resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) as Record<string, unknown> }),
        );
      },
    );
    req.on("error", reject);
    req.end(JSON.stringify(body));
  });
}

describe("generated bad input through umlfleet-agent: refused with 400 naming the field, nothing changed", () => {
  const { cases } = corpus();
  // Bodies over the agent's limit are refused by size before they are read
  // (413, test/integration/agent-hostile.test.ts): left out here.
  const small = cases.filter((c) => JSON.stringify({ args: [c.spec] }).length < MAX_BODY_BYTES);
  const dir = newTestDir("gba");
  const stateDir = join(dir, "s");
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const route: Record<SpecKind, string> = {
    kernel: "ensureKernel",
    base: "ensureBase",
    disk: "ensureDisk",
    network: "ensureNetwork",
    instance: "createInstance",
    "serial-link": "ensureSerialLink",
    "instance-group": "applyGroup",
  };

  it(`every case under the body limit (${small.length}) as an agent request, the instance cases as plan and update requests too`, async () => {
    mkdirSync(stateDir, { recursive: true });
    const agent = await serveAgent(join(dir, "agent.sock"), stateDir);
    try {
      const before = snapshot(stateDir);
      const requests = [
        ...small.map((c) => ({ c, route: route[c.kind] })),
        ...cases
          .filter((c) => c.kind === "instance")
          .flatMap((c) => ["planInstance", "updateInstance"].map((r) => ({ c, route: r }))),
      ];
      const wrong: string[] = [];
      for (const { c, route: r } of requests) {
        const res = await post(agent.socket, r, { args: [c.spec], timeoutMs: 5000 });
        const problems = (
          (res.body.details as { problems?: { field: string }[] } | undefined)?.problems ?? []
        ).map((p) => ({
          field: p.field.replace(/^\/args\/0/, ""),
        }));
        if (res.status !== 400 || res.body.code !== "UMLFLEET_INVALID_SPEC" || !namesField(problems, c.field))
          wrong.push(`${r} ${c.field} ${c.label}: ${res.status} ${JSON.stringify(res.body).slice(0, 200)}`);
      }
      expect(wrong).toEqual([]);
      expect(requests.length).toBeGreaterThanOrEqual(200);
      expect(snapshot(stateDir)).toEqual(before);
      expect(processesMentioning(stateDir)).toEqual([]);
      expect(agent.child.exitCode).toBeNull(); // it survived every one
    } finally {
      await agent.stop();
    }
  }, 300_000);
});
