import { closeSync, constants, existsSync, lstatSync, openSync, unlinkSync, writeSync } from "node:fs";
import { withSbinOnPath } from "../process";
import { connect } from "node:net";
import { LocalRuntime } from "../host/runtime";
import { packageVersion } from "../validation";
import { createAgentServer } from "./server";
import { StreamSocket } from "../stream-socket";

const USAGE = `usage: umlfleet-agent dial-stdio [--state-dir DIR] [--log FILE]
       umlfleet-agent serve --socket PATH [--state-dir DIR] [--log FILE]
       umlfleet-agent version
`;

interface Flags {
  stateDir?: string;
  socket?: string;
  log?: string;
}

function flags(args: string[]): Flags {
  const out: Flags = {};
  const names: Record<string, keyof Flags> = {
    "--state-dir": "stateDir",
    "--socket": "socket",
    "--log": "log",
  };
  for (let i = 0; i < args.length; i++) {
    const key = names[args[i]!];
    const value = args[i + 1];
    if (!key || value === undefined)
      throw new Error(`unknown or incomplete option ${JSON.stringify(args[i])}`);
    out[key] = value;
    i++;
  }
  return out;
}

/** The request log: a file (appended, 0600) or stderr. Never stdout: under dial-stdio that is the wire. */
function logger(file: string | undefined): (line: string) => void {
  if (!file) return (line) => process.stderr.write(`${line}\n`);
  const fd = openSync(file, constants.O_WRONLY | constants.O_APPEND | constants.O_CREAT, 0o600);
  process.on("exit", () => closeSync(fd));
  return (line) => writeSync(fd, `${line}\n`);
}

/** `umlfleet-agent dial-stdio`: one HTTP connection on stdin/stdout, as long as stdin lasts. */
function dialStdio(f: Flags): void {
  // Anything printed to stdout would corrupt the wire.
  console.log = console.info = console.warn = console.error;
  const driver = new LocalRuntime(f.stateDir ? { stateDir: f.stateDir } : {});
  const server = createAgentServer(driver, { log: logger(f.log) });
  // One connection that lives as long as its stream: no idle or header timers.
  server.keepAliveTimeout = 0;
  server.headersTimeout = 0;
  server.requestTimeout = 0;
  const socket = new StreamSocket(process.stdin, process.stdout);
  // Guests, switches and cables run detached: they outlive this process. A
  // call cut off by the stream's end is aborted; its clean-up finishes first.
  socket.on("close", () => {
    server.close();
    void server.settled().then(() => process.exit(0));
  });
  server.emit("connection", socket);
}

/** `umlfleet-agent serve --socket PATH`: the same API on a unix socket only its owner may use. */
async function serve(f: Flags): Promise<void> {
  const path = f.socket!;
  if (existsSync(path)) {
    if (!lstatSync(path).isSocket()) throw new Error(`${path} exists and is not a socket`);
    const live = await new Promise<boolean>((resolve) => {
      const c = connect(path, () => (c.end(), resolve(true)));
      c.on("error", () => resolve(false));
    });
    if (live) throw new Error(`another agent listens on ${path}`);
    unlinkSync(path); // a dead agent's
  }
  const driver = new LocalRuntime(f.stateDir ? { stateDir: f.stateDir } : {});
  const server = createAgentServer(driver, { log: logger(f.log) });
  // The socket is made 0600 (no moment when others may connect).
  const mask = process.umask(0o177);
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(path, () => resolve());
  });
  process.umask(mask);
  const stop = () => {
    server.close();
    // Closing the connections aborts their calls; they clean up before the exit.
    server.closeAllConnections();
    try {
      unlinkSync(path);
    } catch {
      /* gone already */
    }
    void server.settled().then(() => process.exit(0));
  };
  process.on("SIGTERM", stop);
  process.on("SIGINT", stop);
  process.stderr.write(`umlfleet-agent: serving ${driver.stateDir} on ${path}\n`);
}

export async function main(argv: string[]): Promise<number> {
  const [verb, ...rest] = argv;
  if (verb === "version") {
    process.stdout.write(`${packageVersion()}\n`);
    return 0;
  }
  if (verb !== "dial-stdio" && verb !== "serve") {
    process.stderr.write(USAGE);
    return 2;
  }
  withSbinOnPath();
  const f = flags(rest);
  if (verb === "serve" && !f.socket) throw new Error("serve needs --socket PATH");
  if (verb === "dial-stdio") dialStdio(f);
  else await serve(f);
  return 0;
}

/** bin/umlfleet-agent. */
export function cli(): void {
  main(process.argv.slice(2)).then(
    (status) => {
      if (status !== 0) process.exitCode = status;
    },
    (e: unknown) => {
      process.stderr.write(`umlfleet-agent: ${e instanceof Error ? e.message : String(e)}\n`);
      process.exitCode = 1;
    },
  );
}
