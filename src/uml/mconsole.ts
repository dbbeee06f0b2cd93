import { UmlfleetError } from "../errors";
import { run } from "../host/process";

/**
 * mconsole client. The management console is a unix *datagram* socket and
 * Node's dgram module has no unix datagram sockets, so each call runs
 * uml-utilities' `uml_mconsole <socket> <command>` (C, maintained in Debian,
 * no native addon to build) under a deadline: a hung guest never answers and
 * uml_mconsole would then wait forever (shared/UML.md). Cost: one short-lived
 * process per call, a few milliseconds.
 */
export class MconsoleClient {
  constructor(
    readonly socketPath: string,
    private readonly defaultTimeoutMs = 5_000,
  ) {}

  /** Send one command; resolves with the reply text after "OK". */
  async send(command: string, opts: { timeoutMs?: number; signal?: AbortSignal } = {}): Promise<string> {
    const timeoutMs = opts.timeoutMs ?? this.defaultTimeoutMs;
    const r = await run("uml_mconsole", [this.socketPath, ...command.split(" ")], {
      timeoutMs,
      signal: opts.signal,
      allowFailure: true,
    });
    if (r.timedOut) {
      throw new UmlfleetError(
        "UMLFLEET_MCONSOLE_TIMEOUT",
        `mconsole '${command}' on ${this.socketPath}: no answer in ${timeoutMs} ms`,
        { socketPath: this.socketPath, command, timeoutMs },
      );
    }
    const out = r.stdout.trimEnd();
    if (out.startsWith("OK")) return out.slice(2).trim();
    const why = out.startsWith("ERR") ? out.slice(3).trim() : (out || r.stderr).trim();
    throw new UmlfleetError(
      "UMLFLEET_MCONSOLE_ERROR",
      `mconsole '${command}' on ${this.socketPath}: ${why}`,
      {
        socketPath: this.socketPath,
        command,
        reply: why,
        exitCode: r.exitCode,
      },
    );
  }
}
