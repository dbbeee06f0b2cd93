import { Agent, type AgentOptions } from "node:http";
import type { UmlfleetError } from "../errors";

/**
 * How AgentClient reaches an agent: the options node's http.request needs
 * (an http.Agent that makes and keeps connections, and where they go).
 * Every transport goes through the same client code; only the connection
 * differs (a unix socket, SSH sessions, or plain TCP for tests).
 */
export interface Transport {
  /** For messages: where the agent is (`ssh://user@host:port`, `unix:/path`). */
  readonly describe: string;
  /** Spread into http.request's options. */
  readonly requestOptions: { agent: Agent; socketPath?: string; host?: string; port?: number };
  /**
   * An http.Agent that makes a new connection for each request, for calls
   * that are never sent twice (exec): a kept-alive connection the agent closed
   * while idle would fail such a call for nothing. Default: `requestOptions.agent`.
   */
  readonly freshAgent?: Agent;
  /**
   * Why a request failed below HTTP (the connection refused, dropped, or the
   * far side's command missing), as a typed error when the transport can
   * tell; `socket` is the connection the request was on, if it got one.
   */
  explain?(error: Error, socket: unknown): Promise<UmlfleetError | undefined>;
  /** End every connection and process the transport started. */
  close(): Promise<void>;
}

const keepAlive: AgentOptions = { keepAlive: true, maxSockets: 8 };

/** The agent of `umlfleet-agent serve --socket PATH` on this machine. */
export function unixSocketTransport(path: string): Transport {
  const agent = new Agent(keepAlive);
  const fresh = new Agent({ keepAlive: false });
  return {
    describe: `unix:${path}`,
    requestOptions: { agent, socketPath: path, host: "localhost" },
    freshAgent: fresh,
    close: () => Promise.resolve((agent.destroy(), fresh.destroy())),
  };
}

/**
 * An agent reached over plain TCP at `baseUrl` (http://host:port). For tests
 * only (the unit tests intercept it with nock): the agent itself never listens
 * on TCP, it has no authentication of its own.
 */
export function httpTransport(baseUrl: string): Transport {
  const url = new URL(baseUrl);
  const agent = new Agent(keepAlive);
  const fresh = new Agent({ keepAlive: false });
  return {
    describe: url.origin,
    requestOptions: { agent, host: url.hostname, port: Number(url.port || 80) },
    freshAgent: fresh,
    close: () => Promise.resolve((agent.destroy(), fresh.destroy())),
  };
}
