import { UmlfleetError } from "../errors";
import { LocalRuntime } from "../host/runtime";
import { StateDir } from "../host/state";
import { USAGE_ERROR, type Verb } from "./verb";

/** One shell word: 'it'\''s' style quoting, so the guest's sh sees the argument as given. */
const quote = (a: string) => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, "'\\''")}'`);

/** The script for `exec NAME -- CMD...`: one word is a script as it stands, several are quoted one by one. */
export const guestScript = (command: string[]): string =>
  command.length === 1 ? command[0]! : command.map(quote).join(" ");

/**
 * `umlfleet exec NAME -- CMD [ARG...]`: runs a command in a running guest
 * through umlfleet's init (LocalRuntime.exec), prints its output and exits
 * with its status. One CMD word is taken as a shell script (`-- 'a | b'`);
 * several are quoted one by one.
 */
export const exec: Verb = {
  usage: "exec [--state-dir DIR] [--timeout-ms N] NAME -- CMD [ARG...]",
  summary: "run a command inside a guest; exits with its status",
  async run(args, io) {
    const usage = (msg: string) => {
      io.err(`umlfleet exec: ${msg} (usage: umlfleet ${this.usage})\n`);
      return USAGE_ERROR;
    };
    let stateDir = StateDir.defaultRoot(io.env);
    let timeoutMs = 60_000;
    let i = 0;
    for (; i < args.length && args[i]!.startsWith("--") && args[i] !== "--"; i += 2) {
      const [flag, value] = [args[i]!, args[i + 1]];
      if (value === undefined) return usage(`${flag} needs a value`);
      if (flag === "--state-dir") stateDir = value;
      else if (flag === "--timeout-ms") {
        timeoutMs = Number(value);
        if (!Number.isInteger(timeoutMs) || timeoutMs <= 0)
          return usage(
            `--timeout-ms must be a positive whole number of milliseconds (got ${JSON.stringify(value)})`,
          );
      } else return usage(`unknown option ${JSON.stringify(flag)}`);
    }
    const name = args[i];
    if (name === undefined || name === "--") return usage("no instance name");
    const command = args.slice(args[i + 1] === "--" ? i + 2 : i + 1);
    if (command.length === 0) return usage("no command");
    const script = guestScript(command);
    try {
      const r = await new LocalRuntime({ stateDir }).exec(name, script, { timeoutMs });
      io.out(r.output);
      return r.exitCode;
    } catch (e) {
      if (e instanceof UmlfleetError) {
        io.err(`umlfleet exec: [${e.code}] ${e.message}\n`);
        return 1;
      }
      throw e;
    }
  },
};
