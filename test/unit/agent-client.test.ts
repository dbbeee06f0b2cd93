import nock from "nock";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { AgentClient, httpTransport, ROUTES, type DriverMethod } from "../../src/client";
import { sshError } from "../../src/client/ssh";
import { BootError, ERROR_CODES, InvalidSpecError, UmlfleetError, type ErrorCode } from "../../src/errors";
import { packageVersion } from "../../src/validation";

/**
 * AgentClient against an agent played by nock (no network): the requests it
 * sends, the answers it understands, the errors it rebuilds, its deadlines
 * and retries. The real agent answers the same routes in
 * test/integration/agent.test.ts.
 */
const BASE = "http://agent.test:7000";
const VERSION = { version: packageVersion(), api: 1, stateDir: "/srv/umlfleet" };

let client: AgentClient;

async function connect(opts: Parameters<typeof AgentClient.connect>[1] = {}): Promise<AgentClient> {
  nock(BASE).get("/v1/version").reply(200, VERSION);
  return AgentClient.connect(httpTransport(BASE), { graceMs: 200, ...opts });
}

beforeAll(() => nock.disableNetConnect());
afterAll(() => nock.enableNetConnect());
beforeEach(async () => {
  client = await connect();
});
afterEach(async () => {
  nock.abortPendingRequests();
  nock.cleanAll();
  await client.close();
});

const instance = { name: "a", rootDisk: "a-root" };
const group = { name: "g", base: "bb", members: { m1: {} } };
const info = { state: "running", instanceId: "0123456789abcdef" };

/** Each route: the arguments a caller gives, and a result the agent might answer. */
const CALLS: Record<DriverMethod, { args: unknown[]; result: unknown }> = {
  hostFacts: { args: [], result: [{ name: "uml", ok: true, detail: "6.1" }] },
  inventory: { args: [], result: { bases: ["bb"], disks: [], networks: [], instances: ["a"], links: [] } },
  ensureKernel: { args: [{ path: "/k/linux" }], result: { path: "/k/linux", sha256: "ab", version: "6.1" } },
  kernelInfo: { args: ["/k/linux"], result: undefined },
  ensureBase: { args: [{ name: "bb", source: { kind: "busybox" } }], result: { name: "bb", drift: "" } },
  baseInfo: { args: ["bb"], result: { name: "bb", drift: "changed" } },
  removeBase: { args: ["bb"], result: undefined },
  ensureDisk: { args: [{ name: "d", kind: "blank", sizeMiB: 8 }], result: { name: "d", diskId: "x" } },
  diskInfo: { args: ["d"], result: undefined },
  removeDisk: { args: ["d"], result: undefined },
  ensureNetwork: { args: [{ name: "lan" }], result: { name: "lan", switchDir: "/s", running: true } },
  networkInfo: { args: ["lan"], result: { name: "lan", switchDir: "/s", running: false } },
  removeNetwork: { args: ["lan"], result: undefined },
  ensureSerialLink: {
    args: [{ name: "l", a: { instance: "a", line: 1 }, b: { instance: "b", line: 1 } }],
    result: { name: "l", up: true },
  },
  serialLinkInfo: { args: ["l"], result: { name: "l", up: false } },
  removeSerialLink: { args: ["l"], result: undefined },
  createInstance: { args: [instance], result: info },
  planInstance: { args: [instance], result: { kind: "none", changes: [] } },
  updateInstance: { args: [instance], result: { plan: { kind: "live", changes: [] }, info } },
  startInstance: { args: ["a"], result: info },
  stopInstance: { args: ["a"], result: undefined },
  removeInstance: { args: ["a"], result: undefined },
  instanceInfo: { args: ["a"], result: info },
  exec: { args: ["a", "echo hi"], result: { exitCode: 0, output: "hi\n" } },
  applyGroup: {
    args: [group, { ...group, members: {} }],
    result: { result: { actions: [] }, members: { m1: info } },
  },
  removeGroup: { args: [group], result: undefined },
  groupInfo: { args: [group], result: { m1: { state: "missing" } } },
};

const callRoute = (c: AgentClient, m: DriverMethod, args: unknown[], opts?: object) =>
  (c[m] as (...a: unknown[]) => Promise<unknown>).apply(c, [...args, opts]);

describe("AgentClient: each route's request and response", () => {
  it("covers every route of the wire", () => {
    expect(Object.keys(CALLS).sort()).toEqual(Object.keys(ROUTES).sort());
  });

  it.each(Object.keys(CALLS) as DriverMethod[])(
    "%s posts {args, timeoutMs} to /v1/<method> and returns the result",
    async (m) => {
      const { args, result } = CALLS[m];
      let seen: unknown;
      const scope = nock(BASE)
        .post(`/v1/${m}`, (body: unknown) => ((seen = body), true))
        .matchHeader("content-type", "application/json")
        .reply(200, result === undefined ? {} : { result });
      expect(await callRoute(client, m, args, { timeoutMs: 4_000 })).toEqual(result);
      expect(seen).toEqual({ args, timeoutMs: 4_000 });
      scope.done();
    },
  );

  it("a call without a deadline sends no timeoutMs; applyGroup without `previous` sends one argument", async () => {
    const bodies: unknown[] = [];
    nock(BASE)
      .post("/v1/applyGroup", (b: unknown) => (bodies.push(b), true))
      .reply(200, { result: { result: {}, members: {} } })
      .post("/v1/inventory", (b: unknown) => (bodies.push(b), true))
      .reply(200, { result: CALLS.inventory.result });
    await client.applyGroup(group);
    await client.inventory();
    expect(bodies).toEqual([{ args: [group] }, { args: [] }]);
  });

  it("stateDir and the version come from GET /v1/version", () => {
    expect(client.stateDir).toBe("/srv/umlfleet");
    expect(client.version).toEqual(VERSION);
  });

  it("an agent of another version or API is refused with UMLFLEET_VERSION_MISMATCH, saying how to fix it", async () => {
    for (const v of [
      { ...VERSION, version: "0.0.1" },
      { ...VERSION, api: 2 },
    ]) {
      nock(BASE).get("/v1/version").reply(200, v);
      const e = await AgentClient.connect(httpTransport(BASE)).catch((x: unknown) => x);
      expect(e).toMatchObject({ code: "UMLFLEET_VERSION_MISMATCH" });
      expect((e as Error).message).toContain(`npm install -g umlfleet@${packageVersion()}`);
    }
    nock(BASE)
      .get("/v1/version")
      .reply(200, { ...VERSION, version: "0.0.1" });
    const any = await AgentClient.connect(httpTransport(BASE), { expectVersion: null });
    expect(any.version.version).toBe("0.0.1");
  });
});

/** An error of each code as the agent would send it. */
function sample(code: ErrorCode): UmlfleetError {
  if (code === "UMLFLEET_INVALID_SPEC")
    return new InvalidSpecError("ensureNetwork", [{ field: "/args/0/name", value: "X", message: "bad" }]);
  if (code === "UMLFLEET_BOOT_FAILED" || code === "UMLFLEET_BOOT_TIMEOUT")
    return new BootError(code, "boot failed", {
      instance: "a",
      argv: ["/k"],
      exitCode: 1,
      signal: null,
      timedOut: false,
      durationMs: 5,
      consoleTail: "panic",
    });
  return new UmlfleetError(code, `agent says ${code}`, { name: "a", n: 1 });
}

describe("AgentClient: errors come back as the classes the agent threw", () => {
  it.each(Object.keys(ERROR_CODES) as ErrorCode[])("%s", async (code) => {
    const e = sample(code);
    nock(BASE)
      .post("/v1/startInstance")
      .reply(e.statusCode, JSON.stringify(e), { "Content-Type": "application/json" });
    const back = await client.startInstance("a").catch((x: unknown) => x);
    expect(back).toBeInstanceOf(e.constructor);
    expect(back).toMatchObject({ code, message: e.message, details: JSON.parse(JSON.stringify(e.details)) });
    expect((back as Error).stack).not.toContain("agent.test"); // a local stack, never the far side's
  });
});

describe("AgentClient: deadlines", () => {
  it("a call whose agent never answers ends with UMLFLEET_OPERATION_TIMEOUT, and is not sent again", async () => {
    const scope = nock(BASE).post("/v1/inventory").delay(600_000).reply(200, { result: {} });
    const started = performance.now();
    const e = await client.inventory({ timeoutMs: 200 }).catch((x: unknown) => x);
    expect(e).toMatchObject({ code: "UMLFLEET_OPERATION_TIMEOUT" });
    // Generous: it stops; it does not wait for the answer.
    expect(performance.now() - started).toBeLessThan(30_000);
    scope.done();
  });

  it("a call without timeoutMs is bounded by defaultTimeoutMs", async () => {
    const c = await connect({ defaultTimeoutMs: 300 });
    nock(BASE).post("/v1/hostFacts").delay(600_000).reply(200, { result: [] });
    await expect(c.hostFacts()).rejects.toMatchObject({ code: "UMLFLEET_OPERATION_TIMEOUT" });
    await c.close();
  });

  it("the caller's signal cancels a call in flight: UMLFLEET_CANCELLED", async () => {
    nock(BASE).post("/v1/createInstance").delay(600_000).reply(200, { result: info });
    const ctl = new AbortController();
    const p = client.createInstance(instance, { signal: ctl.signal });
    setTimeout(() => ctl.abort(), 100);
    await expect(p).rejects.toMatchObject({ code: "UMLFLEET_CANCELLED" });
  });
});

/** A connection that failed under a request (nock wants an Error instance to emit it). */
const dropped = (code: string, message: string) => Object.assign(new Error(message), { code });

describe("AgentClient: retries", () => {
  it("exec is sent once: after a dropped connection it fails, saying it may have run", async () => {
    nock(BASE)
      .post("/v1/exec")
      .replyWithError(dropped("ECONNRESET", "socket hang up"))
      .post("/v1/exec")
      .reply(200, { result: { exitCode: 0, output: "" } });
    const e = await client.exec("a", "rm -f /x; echo once", { timeoutMs: 5_000 }).catch((x: unknown) => x);
    expect(e).toMatchObject({ code: "UMLFLEET_HOST_UNREACHABLE" });
    expect((e as Error).message).toContain("may or may not have run");
    // The second answer was never asked for.
    expect(nock.pendingMocks()).toHaveLength(1);
  });

  it("an idempotent call is sent again after a dropped connection, and succeeds", async () => {
    const scope = nock(BASE)
      .post("/v1/ensureNetwork")
      .replyWithError(dropped("ECONNRESET", "socket hang up"))
      .post("/v1/ensureNetwork")
      .reply(200, { result: { name: "lan", switchDir: "/s", running: true } });
    expect(await client.ensureNetwork({ name: "lan" })).toEqual({
      name: "lan",
      switchDir: "/s",
      running: true,
    });
    scope.done();
  });

  it("an idempotent call gives up after its retries with UMLFLEET_HOST_UNREACHABLE", async () => {
    const scope = nock(BASE)
      .post("/v1/inventory")
      .times(3)
      .replyWithError(dropped("ECONNREFUSED", "connect ECONNREFUSED"));
    await expect(client.inventory()).rejects.toMatchObject({ code: "UMLFLEET_HOST_UNREACHABLE" });
    scope.done();
  });

  it("an error answer is never sent again (it is the agent's answer, not a transport failure)", async () => {
    nock(BASE)
      .post("/v1/ensureNetwork")
      .reply(409, new UmlfleetError("UMLFLEET_CONFLICT", "differs").toJSON())
      .post("/v1/ensureNetwork")
      .reply(200, { result: {} });
    await expect(client.ensureNetwork({ name: "lan" })).rejects.toMatchObject({ code: "UMLFLEET_CONFLICT" });
    expect(nock.pendingMocks()).toHaveLength(1);
  });
});

describe("AgentClient: a malformed answer is UMLFLEET_AGENT_PROTOCOL, not a crash", () => {
  const bad: [string, number, string | object][] = [
    ["not JSON", 200, "hello from .bashrc"],
    ["an array", 200, "[1,2]"],
    ["null", 200, "null"],
    ["a number", 200, "42"],
    ["an object without result", 200, { foo: 1 }],
    ["result with extra fields", 200, { result: 1, extra: 2 }],
    ["an HTML error page", 502, "<html>Bad Gateway</html>"],
    ["an error with an unknown code", 500, { code: "EVIL", message: "x" }],
    ["an error without a message", 404, { code: "UMLFLEET_NOT_FOUND" }],
    ["an empty body", 200, ""],
    ["a redirect", 302, ""],
  ];
  it.each(bad)("%s", async (_what, status, body) => {
    nock(BASE).post("/v1/instanceInfo").reply(status, body);
    const e = await client.instanceInfo("a").catch((x: unknown) => x);
    expect(e).toMatchObject({ code: "UMLFLEET_AGENT_PROTOCOL" });
    expect((e as Error).message).toContain("POST /v1/instanceInfo");
  });

  it("a malformed version answer fails connect with UMLFLEET_AGENT_PROTOCOL", async () => {
    nock(BASE).get("/v1/version").reply(200, { hello: "world" });
    await expect(AgentClient.connect(httpTransport(BASE))).rejects.toMatchObject({
      code: "UMLFLEET_AGENT_PROTOCOL",
    });
  });
});

describe("ssh failures map to error codes", () => {
  const cases: [string, number | null, string, "connect" | "session", ErrorCode][] = [
    [
      "changed key",
      255,
      "@@@@ WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED! @@@@\nHost key verification failed.",
      "connect",
      "UMLFLEET_HOST_KEY_MISMATCH",
    ],
    [
      "unknown key",
      255,
      "No ED25519 host key is known for [127.0.0.1]:2222 and you have requested strict checking.\nHost key verification failed.",
      "connect",
      "UMLFLEET_HOST_KEY_MISMATCH",
    ],
    ["wrong key", 255, "u@127.0.0.1: Permission denied (publickey).", "connect", "UMLFLEET_HOST_AUTH_FAILED"],
    ["no agent", 127, "bash: line 1: umlfleet-agent: command not found", "session", "UMLFLEET_AGENT_MISSING"],
    ["no agent (sh)", 127, "sh: 1: umlfleet-agent: not found", "session", "UMLFLEET_AGENT_MISSING"],
    [
      "refused",
      255,
      "ssh: connect to host 127.0.0.1 port 1: Connection refused",
      "connect",
      "UMLFLEET_HOST_UNREACHABLE",
    ],
    [
      "timeout",
      255,
      "ssh: connect to host 10.255.0.1 port 22: Connection timed out",
      "connect",
      "UMLFLEET_HOST_UNREACHABLE",
    ],
    [
      "unknown name",
      255,
      "ssh: Could not resolve hostname nowhere: Name or service not known",
      "connect",
      "UMLFLEET_HOST_UNREACHABLE",
    ],
    ["lost", 255, "Connection to 127.0.0.1 closed by remote host.", "session", "UMLFLEET_HOST_UNREACHABLE"],
  ];
  it.each(cases)("%s", (_what, code, stderr, stage, expected) => {
    const e = sshError(code, stderr, "ssh://u@h:1", stage);
    expect(e.code).toBe(expected);
    expect(e.message).toContain("ssh://u@h:1");
  });
});
