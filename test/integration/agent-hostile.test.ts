import { execFileSync } from "node:child_process";
import { mkdirSync, readdirSync, rmSync, statSync } from "node:fs";
import { request } from "node:http";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { LocalRuntime } from "../../src";
import { MAX_BODY_BYTES } from "../../src/client";
import { serveAgent, type ServedAgent } from "../helpers/agent";
import { newTestDir, processesMentioning } from "../helpers/runtime";

/** One request as a hostile or broken client sends it, and how the agent must refuse it. */
interface Hostile {
  what: string;
  method?: string;
  path: string;
  body?: string | Buffer;
  /** Send the body chunked, with no Content-Length (the limit must hold while reading). */
  chunked?: boolean;
  /** Declare this Content-Length and send only the headers (refused before any body is read). */
  declared?: number;
  status: number;
  code: string;
  /** A field the refusal must name. */
  field?: string;
}

const SECRET = "s3cr3t-marker-in-a-body";
const post = (route: string, body: unknown) => ({ path: `/v1/${route}`, body: JSON.stringify(body) });
const args = (route: string, ...a: unknown[]) => post(route, { args: a });
const invalid = { status: 400, code: "UMLFLEET_INVALID_SPEC" };
const badRequest = { status: 400, code: "UMLFLEET_BAD_REQUEST" };
const noRoute = { status: 404, code: "UMLFLEET_UNKNOWN_ROUTE" };
const wrongMethod = { status: 405, code: "UMLFLEET_METHOD_NOT_ALLOWED" };
const tooLarge = { status: 413, code: "UMLFLEET_REQUEST_TOO_LARGE" };

const HOSTILE: Hostile[] = [
  // Not JSON, or not an object.
  { what: "bad JSON", path: "/v1/inventory", body: "{", ...badRequest },
  { what: "truncated JSON", path: "/v1/removeInstance", body: '{"args": ["a"', ...badRequest },
  { what: "an empty body", path: "/v1/inventory", body: "", ...badRequest },
  { what: "null", path: "/v1/inventory", body: "null", ...badRequest },
  { what: "an array", path: "/v1/inventory", body: "[]", ...badRequest },
  { what: "a string", path: "/v1/inventory", body: '"args"', ...badRequest },
  { what: "a number", path: "/v1/inventory", body: "42", ...badRequest },
  { what: "binary garbage", path: "/v1/removeBase", body: Buffer.from([0xff, 0xfe, 0, 1, 2]), ...badRequest },
  // The envelope.
  { what: "no args", ...post("removeInstance", {}), ...invalid, field: "/args" },
  { what: "args not an array", ...post("removeInstance", { args: "a" }), ...invalid, field: "/args" },
  { what: "an extra field", ...post("inventory", { args: [], evil: SECRET }), ...invalid, field: "/evil" },
  { what: "a missing argument", ...args("removeInstance"), ...invalid, field: "/args" },
  { what: "an extra argument", ...args("removeInstance", "a", "b"), ...invalid, field: "/args" },
  { what: "applyGroup with three arguments", ...args("applyGroup", {}, {}, {}), ...invalid },
  {
    what: "a negative timeoutMs",
    ...post("inventory", { args: [], timeoutMs: -1 }),
    ...invalid,
    field: "/timeoutMs",
  },
  {
    what: "a string timeoutMs",
    ...post("inventory", { args: [], timeoutMs: "10" }),
    ...invalid,
    field: "/timeoutMs",
  },
  {
    what: "a huge timeoutMs",
    ...post("inventory", { args: [], timeoutMs: 1e12 }),
    ...invalid,
    field: "/timeoutMs",
  },
  { what: "a fractional timeoutMs", ...post("inventory", { args: [], timeoutMs: 1000.5 }), ...invalid },
  // Names that would leave their folder or break a command line.
  { what: "a name with ..", ...args("removeInstance", "../../etc"), ...invalid, field: "/args/0" },
  { what: "a name that is ..", ...args("removeBase", ".."), ...invalid, field: "/args/0" },
  { what: "a name with /", ...args("removeDisk", "a/b"), ...invalid, field: "/args/0" },
  { what: "a name with a comma", ...args("removeNetwork", "a,b"), ...invalid, field: "/args/0" },
  { what: "a name with a space", ...args("stopInstance", "a b"), ...invalid, field: "/args/0" },
  { what: "a name with a NUL", ...args("instanceInfo", "a\u0000b"), ...invalid, field: "/args/0" },
  { what: "an upper-case name", ...args("startInstance", "Router"), ...invalid, field: "/args/0" },
  { what: "a 33-character name", ...args("removeSerialLink", `a${"b".repeat(32)}`), ...invalid },
  { what: "a name of the wrong type", ...args("baseInfo", 42), ...invalid, field: "/args/0" },
  { what: "a name as an object", ...args("diskInfo", { toString: "x" }), ...invalid, field: "/args/0" },
  // Specs.
  {
    what: "a spec with a stateDir",
    ...args("ensureNetwork", { name: "n", stateDir: "/etc" }),
    ...invalid,
    field: "/args/0/stateDir",
  },
  { what: "a spec with an unknown field", ...args("ensureNetwork", { name: "n", evil: true }), ...invalid },
  {
    what: "a root disk named ../x",
    ...args("createInstance", { name: "x", rootDisk: "../y" }),
    ...invalid,
    field: "/args/0/rootDisk",
  },
  {
    what: "host-side kernel args",
    ...args("createInstance", { name: "x", rootDisk: "y", kernelArgs: ["init=/bin/sh"] }),
    ...invalid,
  },
  {
    what: "a kernel path with ..",
    ...args("ensureKernel", { path: "/tmp/../etc/passwd" }),
    ...invalid,
    field: "/args/0/path",
  },
  { what: "a relative kernel path", ...args("kernelInfo", "relative/linux"), ...invalid, field: "/args/0" },
  {
    what: "a serial line as a string",
    ...args("ensureSerialLink", {
      name: "l",
      a: { instance: "a", line: "1" },
      b: { instance: "b", line: 1 },
    }),
    ...invalid,
  },
  {
    what: "a group member named ..",
    ...args("groupInfo", { name: "g", base: "b", members: { "..": {} } }),
    ...invalid,
  },
  { what: "a script over 64 KiB", ...args("exec", "a", "x".repeat(70_000)), ...invalid, field: "/args/1" },
  {
    what: "deeply nested JSON",
    path: "/v1/inventory",
    body: `{"args":[${"[".repeat(100_000)}${"]".repeat(100_000)}]}`,
    ...badRequest,
  },
  {
    what: "a spec nested 40 levels",
    ...args("ensureNetwork", JSON.parse(`${'{"a":'.repeat(40)}1${"}".repeat(40)}`)),
    ...badRequest,
  },
  // Sizes.
  {
    what: "a declared length over the limit",
    path: "/v1/inventory",
    declared: MAX_BODY_BYTES + 1,
    ...tooLarge,
  },
  { what: "a declared length of 1 TiB", path: "/v1/removeBase", declared: 2 ** 40, ...tooLarge },
  {
    what: "a chunked body over the limit",
    path: "/v1/inventory",
    body: Buffer.alloc(2 * MAX_BODY_BYTES, 0x20),
    chunked: true,
    ...tooLarge,
  },
  // Routes and methods.
  { what: "an unknown route", ...args("destroyEverything"), ...noRoute },
  { what: "another API version", path: "/v2/inventory", body: '{"args":[]}', ...noRoute },
  { what: "a path with ..", path: "/v1/../v1/inventory", body: '{"args":[]}', ...noRoute },
  { what: "a prototype key", path: "/v1/constructor", body: '{"args":[]}', ...noRoute },
  { what: "__proto__", path: "/v1/__proto__", body: '{"args":[]}', ...noRoute },
  { what: "the driver's stateDir field", path: "/v1/stateDir", body: '{"args":[]}', ...noRoute },
  { what: "the root", path: "/", body: "", ...noRoute },
  { what: "GET of a driver route", method: "GET", path: "/v1/createInstance", ...wrongMethod },
  { what: "DELETE of a driver route", method: "DELETE", path: "/v1/removeInstance", ...wrongMethod },
  { what: "POST of the version", path: "/v1/version", body: "{}", ...wrongMethod },
];

function send(socketPath: string, h: Hostile): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const body = h.body ?? "";
    const length = h.declared ?? Buffer.byteLength(body);
    const timer = setTimeout(() => reject(new Error(`${h.what}: no answer within 20 s`)), 20_000);
    const req = request(
      {
        socketPath,
        agent: false,
        method: h.method ?? "POST",
        path: h.path,
        headers: h.chunked
          ? { "Content-Type": "application/json", "Transfer-Encoding": "chunked" }
          : { "Content-Type": "application/json", "Content-Length": length },
      },
      (res) => {
        let text = "";
        res.on("data", (c: Buffer) => (text += c.toString()));
        res.on("end", () => {
          clearTimeout(timer);
          resolve({ status: res.statusCode ?? 0, text });
          if (h.declared) req.destroy();
        });
      },
    );
    // The agent may answer 413 and close before taking the whole body.
    req.on("error", (e: NodeJS.ErrnoException) =>
      e.code === "EPIPE" || e.code === "ECONNRESET" ? undefined : reject(e),
    );
    if (h.declared) req.flushHeaders();
    else if (h.chunked) {
      const buf = Buffer.from(body);
      for (let i = 0; i < buf.length; i += 64 * 1024) req.write(buf.subarray(i, i + 64 * 1024));
      req.end();
    } else req.end(body);
  });
}

/** Every file and folder under `dir` with its size and change time: nothing may differ after the requests. */
function snapshot(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      const st = statSync(p, { throwIfNoEntry: false });
      out.push(`${p} ${e.isDirectory() ? "dir" : st?.size} ${st?.mtimeMs} ${st?.ctimeMs}`);
      if (e.isDirectory()) walk(p);
    }
  };
  walk(dir);
  return out.sort();
}

describe("hostile agent requests are refused and change nothing", () => {
  const dir = newTestDir("ah");
  const stateDir = `${dir}/s`;
  const socket = `${dir}/a.sock`;
  let agent: ServedAgent;

  beforeAll(async () => {
    mkdirSync(dir, { recursive: true });
    // Something to damage: a running switch and its records.
    await new LocalRuntime({ stateDir }).ensureNetwork({ name: "lan" });
    agent = await serveAgent(socket, stateDir);
  });

  it(`refuses each of ${HOSTILE.length} requests with its status and code, naming the field`, async () => {
    expect(HOSTILE.length).toBeGreaterThanOrEqual(30);
    const before = { files: snapshot(stateDir), procs: processesMentioning(stateDir) };
    let refused = 0;
    for (const h of HOSTILE) {
      const { status, text } = await send(socket, h);
      expect(status, `${h.what}: ${text.slice(0, 300)}`).toBe(h.status);
      const body = JSON.parse(text) as Record<string, unknown>;
      expect(body, h.what).toMatchObject({
        statusCode: h.status,
        error: expect.any(String),
        message: expect.any(String),
      });
      expect(body.code, h.what).toBe(h.code);
      expect(body, h.what).not.toHaveProperty("stack");
      if (h.field) expect(body.message, h.what).toContain(h.field);
      refused++;
    }
    expect(refused).toBe(HOSTILE.length);
    // Nothing changed: the same files, the same processes, and the agent started none.
    expect(snapshot(stateDir)).toEqual(before.files);
    expect(processesMentioning(stateDir)).toEqual(before.procs);
    expect(children(agent.child.pid!)).toEqual([]);
    // It still serves, and the log holds routes and statuses, never a body.
    expect((await send(socket, { what: "ok", ...args("inventory"), status: 200, code: "" })).status).toBe(
      200,
    );
    const log = agent.stderr();
    expect(log.match(/ (400|404|405|413) \d+ms/g)?.length).toBe(HOSTILE.length);
    expect(log).not.toContain(SECRET);
    expect(log).not.toContain("etc/passwd");
  });

  afterAll(async () => {
    expect(await agent?.stop()).toBe(0);
    await new LocalRuntime({ stateDir }).destroyAll();
    expect(processesMentioning(dir)).toEqual([]);
    rmSync(dir, { recursive: true, force: true });
  });
});

/** Pids of `pid`'s children. */
function children(pid: number): string[] {
  try {
    return execFileSync("pgrep", ["-P", String(pid)], { encoding: "utf8" })
      .trim()
      .split("\n")
      .filter(Boolean);
  } catch {
    return []; // pgrep exits 1 when none
  }
}
