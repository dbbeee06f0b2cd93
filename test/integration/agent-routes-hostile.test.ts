import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { request } from "node:http";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { LocalRuntime } from "../../src";
import { serveAgent, type ServedAgent } from "../helpers/agent";
import { newTestDir, processesMentioning } from "../helpers/runtime";

/** Requests to the routes beside the HostDriver's (blobs, cables), as a hostile client sends them. */
interface Case {
  what: string;
  method?: string;
  path: string;
  body?: string;
  status: number;
  code: string;
}
const SHA = "a".repeat(64);
const post = (path: string, body: unknown) => ({ path, body: JSON.stringify(body) });
const invalid = { status: 400, code: "UMLFLEET_INVALID_SPEC" };
const noRoute = { status: 404, code: "UMLFLEET_UNKNOWN_ROUTE" };
const KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJ9Jb6Vd0m2kQ4H8y2Gn7cG0a8Q0W6r1m3k9nXl2Zp4E";
const peer = { host: "10.231.1.2", port: 22, user: "u", hostKey: KEY };

const CASES: Case[] = [
  // Blobs: a name that is no sha256, bytes that do not hash to it, a method it does not take.
  { what: "a blob named ..", method: "GET", path: "/v1/blobs/..", ...noRoute },
  { what: "a blob name with a slash", method: "PUT", path: `/v1/blobs/${SHA}/x`, body: "x", ...noRoute },
  { what: "an upper-case sha", method: "GET", path: `/v1/blobs/${SHA.toUpperCase()}`, ...noRoute },
  { what: "a short sha", method: "DELETE", path: "/v1/blobs/abc", ...noRoute },
  {
    what: "bytes that are not the sha",
    method: "PUT",
    path: `/v1/blobs/${SHA}`,
    body: "not it",
    status: 400,
    code: "UMLFLEET_BAD_REQUEST",
  },
  {
    what: "POST of a blob",
    method: "POST",
    path: `/v1/blobs/${SHA}`,
    body: "{}",
    status: 405,
    code: "UMLFLEET_METHOD_NOT_ALLOWED",
  },
  {
    what: "a blob that is not there",
    method: "GET",
    path: `/v1/blobs/${SHA}`,
    status: 404,
    code: "UMLFLEET_NOT_FOUND",
  },
  // Cables: names, peers and keys that would leave a folder or write another authorized_keys line.
  { what: "a cable named ..", ...post("/v1/cables/prepare", { name: ".." }), ...invalid },
  { what: "a cable name with a comma", ...post("/v1/cables/remove", { name: "a,b" }), ...invalid },
  { what: "a cable name of the wrong type", ...post("/v1/cables/info", { name: 1 }), ...invalid },
  { what: "a cable without a peer", ...post("/v1/cables/ensure", { name: "c", network: "lan" }), ...invalid },
  {
    what: "a peer host that is an ssh option",
    ...post("/v1/cables/ensure", { name: "c", network: "lan", peer: { ...peer, host: "-oProxyCommand=sh" } }),
    ...invalid,
  },
  {
    what: "a peer user with @",
    ...post("/v1/cables/ensure", { name: "c", network: "lan", peer: { ...peer, user: "u@h" } }),
    ...invalid,
  },
  {
    what: "a peer port of 0",
    ...post("/v1/cables/ensure", { name: "c", network: "lan", peer: { ...peer, port: 0 } }),
    ...invalid,
  },
  {
    what: "a network with a slash",
    ...post("/v1/cables/ensure", { name: "c", network: "../lan", peer }),
    ...invalid,
  },
  {
    what: "a host key with a second line",
    ...post("/v1/cables/ensure", {
      name: "c",
      network: "lan",
      peer: { ...peer, hostKey: `${KEY}\nevil ssh-ed25519 AAAA` },
    }),
    ...invalid,
  },
  {
    what: "a public key with options",
    ...post("/v1/cable-ends/allow", { name: "c", network: "lan", publicKey: `command="sh" ${KEY}` }),
    ...invalid,
  },
  {
    what: "a public key with a newline",
    ...post("/v1/cable-ends/allow", { name: "c", network: "lan", publicKey: `${KEY}\nssh-ed25519 AAAAevil` }),
    ...invalid,
  },
  {
    what: "a cable end on a network that does not run",
    ...post("/v1/cable-ends/allow", { name: "c", network: "nope", publicKey: KEY }),
    status: 404,
    code: "UMLFLEET_NOT_FOUND",
  },
  // UDP cables: a kind, a peer or a reservation that would bend vde_plug's URL.
  {
    what: "a cable of an unknown kind",
    ...post("/v1/cables/ensure", { name: "c", network: "lan", kind: "tcp", peer }),
    ...invalid,
  },
  {
    what: "a UDP peer host carrying a second URL",
    ...post("/v1/cables/ensure", {
      name: "c",
      network: "lan",
      kind: "udp",
      peer: { host: "h->evil", port: 9 },
    }),
    ...invalid,
  },
  {
    what: "a UDP peer port out of range",
    ...post("/v1/cables/ensure", {
      name: "c",
      network: "lan",
      kind: "udp",
      peer: { host: "10.0.0.1", port: 70000 },
    }),
    ...invalid,
  },
  { what: "a reservation toward no host", ...post("/v1/cables/reserve", { name: "c" }), ...invalid },
  {
    what: "a reservation toward a host with a space",
    ...post("/v1/cables/reserve", { name: "c", peerHost: "10.0.0.1 x" }),
    ...invalid,
  },
  { what: "an unknown cable route", ...post("/v1/cables/explode", { name: "c" }), ...noRoute },
  {
    what: "GET of a cable route",
    method: "GET",
    path: "/v1/cables/info",
    status: 405,
    code: "UMLFLEET_METHOD_NOT_ALLOWED",
  },
  {
    what: "a cable body that is not JSON",
    path: "/v1/cable-ends/remove",
    body: "{",
    status: 400,
    code: "UMLFLEET_BAD_REQUEST",
  },
];

function send(socketPath: string, c: Case): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const body = c.body ?? "";
    const req = request(
      {
        socketPath,
        agent: false,
        method: c.method ?? "POST",
        path: c.path,
        headers: { "Content-Length": Buffer.byteLength(body) },
      },
      (res) => {
        let text = "";
        res.on("data", (x: Buffer) => (text += x.toString()));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, text }));
      },
    );
    req.on("error", reject);
    req.end(body);
  });
}

function snapshot(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      const st = statSync(p, { throwIfNoEntry: false });
      out.push(`${p} ${e.isDirectory() ? "dir" : st?.size} ${st?.mtimeMs}`);
      if (e.isDirectory()) walk(p);
    }
  };
  walk(dir);
  return out.sort();
}

describe("hostile requests to the blob and cable routes are refused and change nothing", () => {
  const dir = newTestDir("ar");
  const stateDir = `${dir}/s`;
  const home = `${dir}/home`;
  const socket = `${dir}/a.sock`;
  let agent: ServedAgent;
  beforeAll(async () => {
    mkdirSync(join(home, ".ssh"), { recursive: true, mode: 0o700 });
    writeFileSync(join(home, ".ssh", "authorized_keys"), `${KEY} someone\n`, { mode: 0o600 });
    await new LocalRuntime({ stateDir }).ensureNetwork({ name: "lan" });
    // The agent's $HOME holds the authorized_keys a cable end would edit: the test's, not this machine's.
    const saved = process.env.HOME;
    process.env.HOME = home;
    try {
      agent = await serveAgent(socket, stateDir);
    } finally {
      process.env.HOME = saved;
    }
  });
  afterAll(async () => {
    await agent?.stop();
    await new LocalRuntime({ stateDir }).destroyAll();
  });

  it(`refuses each of ${CASES.length} requests with its status and code`, async () => {
    const before = { state: snapshot(stateDir), home: snapshot(home), procs: processesMentioning(stateDir) };
    for (const c of CASES) {
      const { status, text } = await send(socket, c);
      expect(status, `${c.what}: ${text.slice(0, 300)}`).toBe(c.status);
      const body = JSON.parse(text) as Record<string, unknown>;
      expect(body.code, c.what).toBe(c.code);
      expect(body, c.what).not.toHaveProperty("stack");
    }
    expect(snapshot(stateDir)).toEqual(before.state);
    expect(snapshot(home)).toEqual(before.home);
    expect(processesMentioning(stateDir)).toEqual(before.procs);
  });

  it("keeps a blob only when its bytes hash to its name, and lets a cable key in for one command only", async () => {
    const bytes = "kernel bytes\n";
    const sha = createHash("sha256").update(bytes).digest("hex");
    expect(
      (
        await send(socket, {
          what: "put",
          method: "PUT",
          path: `/v1/blobs/${sha}`,
          body: bytes,
          status: 200,
          code: "",
        })
      ).status,
    ).toBe(200);
    expect(readFileSync(join(stateDir, "uploads", sha), "utf8")).toBe(bytes);
    const allow = await send(socket, {
      what: "allow",
      ...post("/v1/cable-ends/allow", { name: "c1", network: "lan", publicKey: KEY }),
      status: 200,
      code: "",
    });
    expect(allow.status, allow.text).toBe(200);
    const lines = readFileSync(join(home, ".ssh", "authorized_keys"), "utf8")
      .trim()
      .split("\n");
    expect(lines[0]).toBe(`${KEY} someone`); // the user's own line kept
    expect(lines[1]).toMatch(
      /^restrict,command="exec \S*vde_plug vde:\/\/\S+\/switches\/lan" ssh-ed25519 \S+ umlfleet-cable:\S+\/c1$/,
    );
    await send(socket, {
      what: "remove",
      ...post("/v1/cable-ends/remove", { name: "c1" }),
      status: 200,
      code: "",
    });
    expect(readFileSync(join(home, ".ssh", "authorized_keys"), "utf8")).toBe(`${KEY} someone\n`);
    await send(socket, { what: "delete", method: "DELETE", path: `/v1/blobs/${sha}`, status: 200, code: "" });
    expect(existsSync(join(stateDir, "uploads", sha))).toBe(false);
  });
});
