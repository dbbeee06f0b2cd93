import { UmlfleetError } from "../errors";
import { run } from "../process";

/**
 * mconsole client. The management console is a unix *datagram* socket and
 * Node's dgram module has no unix datagram sockets, so each call runs
 * uml-utilities' `uml_mconsole <socket> <command>` (C, maintained in Debian,
 * no native addon to build) under a deadline: a hung guest never answers and
 * uml_mconsole would then wait forever (shared/UML.md). Cost: one short-lived
 * process per call, a few milliseconds.
 *
 * The socket lies in a folder the guest can write (its vm/ folder, through
 * hostfs), so the guest can replace it with a link to another guest's socket
 * (measured before: stopping the first guest powered off the second). With
 * `sandboxPid`, uml_mconsole runs inside that guest's own mount namespace
 * (nsenter into its sandbox's user and mount namespaces): the socket path,
 * and any link in it, resolves within what that guest's sandbox holds, where
 * no other guest's socket exists. Replies still arrive: the sandbox shares the
 * host's network namespace, where uml_mconsole's reply socket lives.
 */
export class MconsoleClient {
  constructor(
    readonly socketPath: string,
    private readonly defaultTimeoutMs = 5_000,
    /** The host pid of the guest's sandbox (its pid 1): send from inside its namespaces. */
    private readonly sandboxPid?: number,
  ) {}

  /** Send one command; resolves with the reply text after "OK". */
  async send(command: string, opts: { timeoutMs?: number; signal?: AbortSignal } = {}): Promise<string> {
    const timeoutMs = opts.timeoutMs ?? this.defaultTimeoutMs;
    const [file, args] = this.sandboxPid
      ? [
          "nsenter",
          [
            `--target=${this.sandboxPid}`,
            "--user",
            "--mount",
            "--preserve-credentials",
            "--",
            "uml_mconsole",
            this.socketPath,
            ...command.split(" "),
          ],
        ]
      : ["uml_mconsole", [this.socketPath, ...command.split(" ")]];
    const r = await run(file, args, { timeoutMs, signal: opts.signal, allowFailure: true });
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
