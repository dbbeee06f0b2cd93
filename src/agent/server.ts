import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { performance } from "node:perf_hooks";
import { withDeadline } from "../deadline";
import { isUmlfleetError, UmlfleetError } from "../errors";
import type { HostDriver } from "../host/driver";
import { API_VERSION, isDriverMethod, MAX_BODY_BYTES, ROUTES, type VersionInfo } from "../client/routes";
import { sleep } from "../process";
import { packageVersion } from "../validation";
import { BLOB_PREFIX, handleBlob } from "./blobs";
import { CABLE_PREFIXES, handleCable } from "./cables-route";
import { RequestValidator } from "./requests";

export interface AgentServerOptions {
  /** One line per request: method, route, status, duration, error code. Never bodies: specs may hold secrets. */
  log?: (line: string) => void;
  maxBodyBytes?: number;
}

/**
 * The agent's own deadline runs this much past the caller's timeoutMs, so a
 * driver that enforces timeoutMs itself (exec: UMLFLEET_EXEC_TIMEOUT) reports
 * its own error first; the agent's bounds the calls that take no deadline.
 */
const DEADLINE_GRACE_MS = 2_000;

/**
 * The HostDriver as JSON over HTTP/1.1 (routes: src/client/routes.ts). Every
 * body is checked against schema/agent.json before the driver sees it; a
 * call ends when its timeoutMs passes or its connection closes (the driver
 * cleans up what it had begun). Errors answer with their code's status and
 * `{statusCode, code, error, message, details}`, never a stack.
 */
export function createAgentServer(driver: HostDriver, opts: AgentServerOptions = {}): AgentServer {
  const validator = new RequestValidator();
  // Driver calls still running, answered or not: an aborted one is cleaning up.
  const running = new Set<Promise<unknown>>();
  const maxBody = opts.maxBodyBytes ?? MAX_BODY_BYTES;
  const log = opts.log ?? (() => {});
  const server = createServer((req, res) => {
    const started = performance.now();
    const route = printable((req.url ?? "").split("?")[0]!);
    let code = "";
    res.on("close", () => {
      const ms = Math.round(performance.now() - started);
      const status = res.writableFinished ? String(res.statusCode) : "aborted";
      log(
        `${new Date().toISOString()} ${printable(req.method ?? "")} ${route} ${status} ${ms}ms${code ? ` ${code}` : ""}`,
      );
    });
    handle(req, res).catch((e: unknown) => {
      const err = asUmlfleetError(e);
      code = err.code;
      reply(res, err.statusCode, err.toJSON());
    });
  });

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = (req.url ?? "").split("?")[0]!;
    if (path === "/v1/version") {
      allow(req, res, "GET");
      const v: VersionInfo = { version: packageVersion(), api: API_VERSION, stateDir: driver.stateDir };
      return reply(res, 200, v);
    }
    if (path.startsWith(BLOB_PREFIX)) {
      const info = await handleBlob(req, driver.stateDir, path.slice(BLOB_PREFIX.length));
      return reply(res, 200, info === undefined ? {} : { result: info });
    }
    if (CABLE_PREFIXES.some((p) => path.startsWith(p))) {
      allow(req, res, "POST");
      const result = await handleCable(driver, path, parse(await readBody(req, res, maxBody)));
      return reply(res, 200, result === undefined ? {} : { result });
    }
    const method = path.startsWith("/v1/") ? path.slice(4) : "";
    if (!isDriverMethod(method))
      throw new UmlfleetError("UMLFLEET_UNKNOWN_ROUTE", `no such route: ${printable(path)}`, {
        route: printable(path),
      });
    allow(req, res, "POST");
    const body = parse(await readBody(req, res, maxBody));
    const { args, timeoutMs, owner } = validator.check(method, body);
    // The call stops when the caller goes away: its connection closed before the answer.
    const gone = new AbortController();
    res.on("close", () => {
      if (!res.writableFinished)
        gone.abort(new UmlfleetError("UMLFLEET_CANCELLED", `${method}: the client closed the connection`));
    });
    const full = [...args];
    while (full.length < ROUTES[method].args) full.push(undefined);
    const result = await withDeadline(
      method,
      {
        signal: gone.signal,
        ...(timeoutMs !== undefined ? { timeoutMs: timeoutMs + DEADLINE_GRACE_MS } : {}),
      },
      (signal) => {
        const call = (driver[method].bind(driver) as (...a: unknown[]) => Promise<unknown>)(...full, {
          signal,
          ...(timeoutMs !== undefined ? { timeoutMs } : {}),
          ...(owner !== undefined ? { owner } : {}),
        });
        const settled = call.then(
          () => undefined,
          () => undefined,
        );
        running.add(settled);
        void settled.then(() => running.delete(settled));
        // A driver call that takes no deadline (hostFacts, the *Info reads) still gets an answer in time.
        return Promise.race([
          call,
          new Promise<never>((_resolve, reject) =>
            signal.addEventListener("abort", () => reject(signal.reason as Error), { once: true }),
          ),
        ]);
      },
    );
    reply(res, 200, result === undefined ? {} : { result });
  }

  return Object.assign(server, {
    settled: async (timeoutMs = 120_000) => {
      const deadline = performance.now() + timeoutMs;
      while (running.size > 0 && performance.now() < deadline)
        await Promise.race([Promise.all([...running]), sleep(Math.min(1_000, deadline - performance.now()))]);
    },
  });
}

/** The agent's http.Server, and a wait for the driver calls still running (cleaning up after an abort). */
export type AgentServer = Server & {
  /** Resolves when no driver call runs, or after `timeoutMs` (default 2 min). */
  settled(timeoutMs?: number): Promise<void>;
};

function allow(req: IncomingMessage, res: ServerResponse, method: string): void {
  if (req.method === method) return;
  res.setHeader("Allow", method);
  throw new UmlfleetError(
    "UMLFLEET_METHOD_NOT_ALLOWED",
    `${printable(req.url ?? "")} takes ${method}, not ${printable(req.method ?? "")}`,
    { method: printable(req.method ?? "") },
  );
}

/** The body, refused with 413 past `max` bytes (from Content-Length before reading, or while reading). */
function readBody(req: IncomingMessage, res: ServerResponse, max: number): Promise<string> {
  const tooLarge = () => {
    // The rest of the body is never read: the connection cannot carry another request.
    res.setHeader("Connection", "close");
    return new UmlfleetError("UMLFLEET_REQUEST_TOO_LARGE", `request body is larger than ${max} bytes`, {
      maxBytes: max,
    });
  };
  if (Number(req.headers["content-length"] ?? 0) > max) return Promise.reject(tooLarge());
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on("data", (c: Buffer) => {
      size += c.length;
      if (size > max) {
        req.removeAllListeners("data");
        req.pause();
        reject(tooLarge());
      } else chunks.push(c);
    });
    req.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")));
    req.on("error", reject);
  });
}

/** Specs nest a few levels; a body nested deeper is refused before anything recurses over it. */
const MAX_DEPTH = 32;

/** How deeply `text`'s arrays and objects nest (brackets inside strings do not count). */
function nesting(text: string): number {
  let depth = 0;
  let max = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c)
        i++; // backslash: skip the escaped character
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x5b || c === 0x7b) max = Math.max(max, ++depth);
    else if (c === 0x5d || c === 0x7d) depth--;
  }
  return max;
}

function parse(text: string): Record<string, unknown> {
  if (nesting(text) > MAX_DEPTH)
    throw new UmlfleetError("UMLFLEET_BAD_REQUEST", `request body nests deeper than ${MAX_DEPTH} levels`, {
      maxDepth: MAX_DEPTH,
    });
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch (e) {
    throw new UmlfleetError("UMLFLEET_BAD_REQUEST", `request body is not JSON: ${(e as Error).message}`);
  }
  if (typeof body !== "object" || body === null || Array.isArray(body))
    throw new UmlfleetError(
      "UMLFLEET_BAD_REQUEST",
      `request body must be a JSON object {"args": [...]}, got ${body === null ? "null" : Array.isArray(body) ? "an array" : typeof body}`,
    );
  return body as Record<string, unknown>;
}

function reply(res: ServerResponse, status: number, body: unknown): void {
  if (res.headersSent || res.destroyed) return;
  const text = JSON.stringify(body);
  res.writeHead(status, { "Content-Type": "application/json", "Content-Length": Buffer.byteLength(text) });
  res.end(text);
}

/** What any error becomes on the wire: an umlfleet error as it is, anything else as a failed command without its stack. */
function asUmlfleetError(e: unknown): UmlfleetError {
  if (isUmlfleetError(e)) return e;
  const message = e instanceof Error ? e.message : String(e);
  return new UmlfleetError("UMLFLEET_COMMAND_FAILED", `agent: ${message}`);
}

/** A request word fit for a log line: no control characters, bounded. */
function printable(s: string): string {
  const clean = s.replace(/[\u0000-\u001f\u007f]/g, "?");
  return clean.length > 100 ? `${clean.slice(0, 97)}...` : clean;
}
