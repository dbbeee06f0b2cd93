import { request, type IncomingMessage } from "node:http";
import type { ChangePlan, GroupApplyResult } from "../change-plan";
import { abortError, withDeadline } from "../deadline";
import { ERROR_CODES, errorFromJSON, isUmlfleetError, quote, UmlfleetError } from "../errors";
import type {
  BaseInfo,
  CallOptions,
  DiskInfo,
  HostDriver,
  InstanceInfo,
  Inventory,
  KernelInfo,
  MemberInfo,
  NetworkInfo,
  SerialLinkInfo,
} from "../host/driver";
import type { ExecResult } from "../host/guest-channel";
import type { HostFact } from "../host/host-facts";
import type { BaseSpec, DiskSpec, InstanceGroupSpec, KernelSpec, NetworkSpec, SerialLinkSpec } from "../spec";
import { packageVersion } from "../validation";
import { API_VERSION, ROUTES, type DriverMethod, type VersionInfo } from "./routes";
import type { Transport } from "./transport";

export interface AgentClientOptions {
  /**
   * The umlfleet version the agent must run (UMLFLEET_VERSION_MISMATCH
   * otherwise). Default: this package's; null: any.
   */
  expectVersion?: string | null;
  /** The bound of a call that names no timeoutMs. Default 30 minutes (a kernel build). */
  defaultTimeoutMs?: number;
  /** How much longer than its timeoutMs a call may take on the wire before the client gives up. Default 5 s. */
  graceMs?: number;
  /** Sends of an idempotent call after its transport failed. Default 2. */
  retries?: number;
}

/** The start of a body that was not what the wire promises, for an error message. */
const SHOWN_BYTES = 200;

/**
 * The HostDriver of another host: every call is an HTTP request to its
 * umlfleet-agent (routes: ./routes.ts) over a Transport. Errors come back as
 * the classes the agent threw (errorFromJSON); a call that names no deadline
 * gets `defaultTimeoutMs`; an idempotent call is sent again when the
 * transport failed under it, exec never is. Made by `AgentClient.connect`,
 * which asks the agent its version and state folder.
 */
export class AgentClient implements HostDriver {
  private constructor(
    private readonly transport: Transport,
    readonly version: VersionInfo,
    private readonly opts: AgentClientOptions,
  ) {}

  get stateDir(): string {
    return this.version.stateDir;
  }

  /** Connect: the agent answers its version (checked) and state folder, or the transport's error says why not. */
  static async connect(
    transport: Transport,
    opts: AgentClientOptions & CallOptions = {},
  ): Promise<AgentClient> {
    const probe = new AgentClient(transport, { version: "", api: API_VERSION, stateDir: "" }, opts);
    const v = await probe.send("GET", "/v1/version", undefined, true, {
      timeoutMs: opts.timeoutMs ?? 60_000,
      ...(opts.signal ? { signal: opts.signal } : {}),
    });
    const info = v as Partial<VersionInfo> | undefined;
    if (
      !info ||
      typeof info.version !== "string" ||
      typeof info.api !== "number" ||
      typeof info.stateDir !== "string"
    )
      throw protocolError(transport, "GET /v1/version", JSON.stringify(v));
    const want = opts.expectVersion === undefined ? packageVersion() : opts.expectVersion;
    if (info.api !== API_VERSION || (want !== null && info.version !== want))
      throw new UmlfleetError(
        "UMLFLEET_VERSION_MISMATCH",
        `${transport.describe} runs umlfleet ${info.version} (agent API ${info.api}); this provider is umlfleet ${packageVersion()} (API ${API_VERSION}): install the same version on the host (npm install -g umlfleet@${packageVersion()})`,
        { target: transport.describe, hostVersion: info.version, providerVersion: packageVersion() },
      );
    return new AgentClient(transport, info as VersionInfo, opts);
  }

  /** End the transport's connections and processes. */
  close(): Promise<void> {
    return this.transport.close();
  }

  hostFacts(opts?: CallOptions): Promise<HostFact[]> {
    return this.call("hostFacts", [], opts);
  }
  inventory(opts?: CallOptions): Promise<Inventory> {
    return this.call("inventory", [], opts);
  }
  ensureKernel(spec: KernelSpec, opts?: CallOptions): Promise<KernelInfo> {
    return this.call("ensureKernel", [spec], opts);
  }
  kernelInfo(path: string, opts?: CallOptions): Promise<KernelInfo | undefined> {
    return this.call("kernelInfo", [path], opts);
  }
  ensureBase(spec: BaseSpec, opts?: CallOptions): Promise<BaseInfo> {
    return this.call("ensureBase", [spec], opts);
  }
  baseInfo(name: string, opts?: CallOptions): Promise<BaseInfo | undefined> {
    return this.call("baseInfo", [name], opts);
  }
  removeBase(name: string, opts?: CallOptions): Promise<void> {
    return this.call("removeBase", [name], opts);
  }
  ensureDisk(spec: DiskSpec, opts?: CallOptions): Promise<DiskInfo> {
    return this.call("ensureDisk", [spec], opts);
  }
  diskInfo(name: string, opts?: CallOptions): Promise<DiskInfo | undefined> {
    return this.call("diskInfo", [name], opts);
  }
  removeDisk(name: string, opts?: CallOptions): Promise<void> {
    return this.call("removeDisk", [name], opts);
  }
  ensureNetwork(spec: NetworkSpec, opts?: CallOptions): Promise<NetworkInfo> {
    return this.call("ensureNetwork", [spec], opts);
  }
  networkInfo(name: string, opts?: CallOptions): Promise<NetworkInfo | undefined> {
    return this.call("networkInfo", [name], opts);
  }
  removeNetwork(name: string, opts?: CallOptions): Promise<void> {
    return this.call("removeNetwork", [name], opts);
  }
  ensureSerialLink(spec: SerialLinkSpec, opts?: CallOptions): Promise<SerialLinkInfo> {
    return this.call("ensureSerialLink", [spec], opts);
  }
  serialLinkInfo(name: string, opts?: CallOptions): Promise<SerialLinkInfo | undefined> {
    return this.call("serialLinkInfo", [name], opts);
  }
  removeSerialLink(name: string, opts?: CallOptions): Promise<void> {
    return this.call("removeSerialLink", [name], opts);
  }
  createInstance(spec: unknown, opts?: CallOptions): Promise<InstanceInfo> {
    return this.call("createInstance", [spec], opts);
  }
  planInstance(spec: unknown, opts?: CallOptions): Promise<ChangePlan> {
    return this.call("planInstance", [spec], opts);
  }
  updateInstance(spec: unknown, opts?: CallOptions): Promise<{ plan: ChangePlan; info: InstanceInfo }> {
    return this.call("updateInstance", [spec], opts);
  }
  startInstance(name: string, opts?: CallOptions): Promise<InstanceInfo> {
    return this.call("startInstance", [name], opts);
  }
  stopInstance(name: string, opts?: CallOptions): Promise<void> {
    return this.call("stopInstance", [name], opts);
  }
  removeInstance(name: string, opts?: CallOptions): Promise<void> {
    return this.call("removeInstance", [name], opts);
  }
  instanceInfo(name: string, opts?: CallOptions): Promise<InstanceInfo | undefined> {
    return this.call("instanceInfo", [name], opts);
  }
  exec(name: string, script: string, opts?: CallOptions): Promise<ExecResult> {
    return this.call("exec", [name, script], opts);
  }
  applyGroup(
    spec: unknown,
    previous?: InstanceGroupSpec,
    opts?: CallOptions,
  ): Promise<{ result: GroupApplyResult; members: Record<string, MemberInfo> }> {
    return this.call("applyGroup", previous === undefined ? [spec] : [spec, previous], opts);
  }
  removeGroup(spec: InstanceGroupSpec, opts?: CallOptions): Promise<void> {
    return this.call("removeGroup", [spec], opts);
  }
  groupInfo(spec: InstanceGroupSpec, opts?: CallOptions): Promise<Record<string, MemberInfo>> {
    return this.call("groupInfo", [spec], opts);
  }

  private async call<T>(method: DriverMethod, args: unknown[], opts: CallOptions = {}): Promise<T> {
    const body = {
      args,
      ...(opts.timeoutMs !== undefined ? { timeoutMs: opts.timeoutMs } : {}),
      // The calling stack: the host records it and refuses another stack's resource (src/host/owners.ts).
      ...(opts.owner !== undefined ? { owner: opts.owner } : {}),
    };
    return (await this.send("POST", `/v1/${method}`, body, ROUTES[method].idempotent, opts)) as T;
  }

  /**
   * One request under the call's deadline (its timeoutMs plus the wire's
   * grace, else defaultTimeoutMs), sent again after a transport failure when
   * `idempotent`. Aborting closes the connection: the agent then stops the
   * operation and cleans up.
   */
  private send(
    verb: "GET" | "POST",
    path: string,
    body: unknown,
    idempotent: boolean,
    opts: CallOptions,
  ): Promise<unknown> {
    const bound =
      opts.timeoutMs !== undefined
        ? opts.timeoutMs + (this.opts.graceMs ?? 5_000)
        : (this.opts.defaultTimeoutMs ?? 30 * 60_000);
    const what = `${this.transport.describe} ${verb} ${path}`;
    const deadline = {
      timeoutMs: bound,
      ...(opts.signal ? { signal: opts.signal } : {}),
    };
    return withDeadline(what, deadline, async (signal) => {
      const retries = idempotent ? (this.opts.retries ?? 2) : 0;
      for (let attempt = 0; ; attempt++) {
        const sent = await this.once(verb, path, body, signal, idempotent);
        if (sent.ok) return sent.value;
        if (signal.aborted) throw abortError(signal, what, sent.error);
        if (sent.final || attempt >= retries) {
          if (isUmlfleetError(sent.error)) throw sent.error;
          throw new UmlfleetError(
            "UMLFLEET_HOST_UNREACHABLE",
            `${what}: the connection to the agent failed (${sent.error.message})${idempotent ? "" : "; the call was not sent again: it may or may not have run"}`,
            { target: this.transport.describe, attempts: attempt + 1 },
            { cause: sent.error },
          );
        }
        await new Promise((r) => setTimeout(r, 100 * 2 ** attempt));
      }
    });
  }

  /** One HTTP exchange: the answer's value, a typed error from the agent (thrown), or how the transport failed. */
  private async once(
    verb: string,
    path: string,
    body: unknown,
    signal: AbortSignal,
    reuse: boolean,
  ): Promise<{ ok: true; value: unknown } | { ok: false; error: Error; final: boolean }> {
    const text = body === undefined ? undefined : JSON.stringify(body);
    let socket: unknown;
    let res: { status: number; text: string };
    try {
      res = await new Promise((resolve, reject) => {
        const req = request(
          {
            ...this.transport.requestOptions,
            // A call sent once goes on a new connection, never on one the agent may be closing.
            ...(reuse ? {} : { agent: this.transport.freshAgent ?? this.transport.requestOptions.agent }),
            method: verb,
            path,
            signal,
            headers: text
              ? { "Content-Type": "application/json", "Content-Length": Buffer.byteLength(text) }
              : {},
          },
          (r: IncomingMessage) => {
            const chunks: Buffer[] = [];
            r.on("data", (c: Buffer) => chunks.push(c));
            r.on("end", () =>
              resolve({ status: r.statusCode ?? 0, text: Buffer.concat(chunks).toString("utf8") }),
            );
            r.on("error", reject);
          },
        );
        req.on("socket", (s) => (socket = s));
        req.on("error", reject);
        req.end(text);
      });
    } catch (e) {
      const error = e instanceof Error ? e : new Error(String(e));
      if (signal.aborted) return { ok: false, error, final: true };
      const typed = await this.transport.explain?.(error, socket);
      // A refused key or user, or a missing agent, will not change by sending again.
      const final =
        !!typed &&
        ["UMLFLEET_HOST_KEY_MISMATCH", "UMLFLEET_HOST_AUTH_FAILED", "UMLFLEET_AGENT_MISSING"].includes(
          typed.code,
        );
      return { ok: false, error: typed ?? error, final };
    }
    return { ok: true, value: this.decode(`${verb} ${path}`, res.status, res.text) };
  }

  /** The value of a 200 `{result}` (`{}`: undefined), or the error an error body describes; anything else is UMLFLEET_AGENT_PROTOCOL. */
  private decode(what: string, status: number, text: string): unknown {
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch {
      throw protocolError(this.transport, what, text, status);
    }
    const isObject = typeof body === "object" && body !== null && !Array.isArray(body);
    if (status === 200 && isObject) {
      const b = body as Record<string, unknown>;
      if (path(what) === "/v1/version") return b;
      if ("result" in b && Object.keys(b).length === 1) return b.result;
      if (Object.keys(b).length === 0) return undefined;
    }
    if (status >= 400 && isObject) {
      const b = body as Record<string, unknown>;
      if (typeof b.code === "string" && Object.hasOwn(ERROR_CODES, b.code) && typeof b.message === "string")
        throw errorFromJSON(b);
    }
    throw protocolError(this.transport, what, text, status);
  }
}

const path = (what: string) => what.slice(what.indexOf(" ") + 1);

function protocolError(transport: Transport, what: string, text: string, status?: number): UmlfleetError {
  return new UmlfleetError(
    "UMLFLEET_AGENT_PROTOCOL",
    `${transport.describe}: ${what} got no umlfleet answer${status !== undefined ? ` (HTTP ${status})` : ""}: ${quote(text.slice(0, SHOWN_BYTES))}`,
    { target: transport.describe, status, body: text.slice(0, SHOWN_BYTES) },
  );
}
