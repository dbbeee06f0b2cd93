import { spawn, type ChildProcess } from "node:child_process";
import { existsSync } from "node:fs";
import { Agent } from "node:http";
import { join } from "node:path";
import type { Transport } from "../../src/client";
import { waitFor } from "../../src/process";
import { StreamSocket } from "../../src/stream-socket";

export const AGENT_BIN = join(__dirname, "..", "..", "bin", "umlfleet-agent");

/** A running `umlfleet-agent serve` and what it logged to stderr. */
export interface ServedAgent {
  child: ChildProcess;
  socket: string;
  stderr: () => string;
  stop: () => Promise<number | null>;
}

/** Start `umlfleet-agent serve --socket <socket> --state-dir <stateDir>` and wait for its socket. */
export async function serveAgent(socket: string, stateDir: string): Promise<ServedAgent> {
  const child = spawn(AGENT_BIN, ["serve", "--socket", socket, "--state-dir", stateDir], {
    stdio: ["ignore", "ignore", "pipe"],
  });
  let err = "";
  child.stderr.on("data", (c: Buffer) => (err += c.toString()));
  const exited = new Promise<number | null>((resolve) => child.once("close", (code) => resolve(code)));
  await waitFor(() => existsSync(socket) || child.exitCode !== null, 30_000, 20);
  if (!existsSync(socket)) throw new Error(`agent did not start: ${err}`);
  return {
    child,
    socket,
    stderr: () => err,
    stop: async () => {
      if (child.exitCode === null) child.kill("SIGTERM");
      return exited;
    },
  };
}

/** A `umlfleet-agent dial-stdio` child, reached through its stdin/stdout (what ssh carries). */
export function dialStdio(stateDir: string): {
  child: ChildProcess;
  transport: Transport;
  exited: Promise<number | null>;
} {
  const child = spawn(AGENT_BIN, ["dial-stdio", "--state-dir", stateDir], {
    stdio: ["pipe", "pipe", "pipe"],
  });
  const exited = new Promise<number | null>((resolve) => child.once("close", (code) => resolve(code)));
  child.stderr.resume();
  const socket = new StreamSocket(child.stdout, child.stdin);
  // The one connection the process serves, kept alive for every request.
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  let used = false;
  agent.createConnection = (_opts, done) => {
    // Once it is gone there is no other: a call sent again fails at once.
    if (used && socket.destroyed) {
      done?.(new Error("dial-stdio: the connection is gone"), socket);
      return undefined;
    }
    used = true;
    return socket;
  };
  return {
    child,
    exited,
    transport: {
      describe: "dial-stdio",
      requestOptions: { agent, host: "agent" },
      close: () => {
        socket.end();
        return exited.then(() => undefined);
      },
    },
  };
}
