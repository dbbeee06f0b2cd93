import { StateDir } from "../host/state";
import { USAGE_ERROR, type Io } from "./verb";

/**
 * The options every state-folder verb shares, parsed the same way: `--state-dir
 * DIR` and the verb's own flags (`--json`, `-f`, ...) before positional
 * arguments. A usage error is printed and its exit status returned.
 */
export function parseCommon(
  verb: string,
  usage: string,
  args: string[],
  io: Io,
  flags: readonly string[] = [],
): { stateDir: string; flags: Set<string>; rest: string[] } | number {
  let stateDir = StateDir.defaultRoot(io.env);
  const set = new Set<string>();
  const rest: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === "--state-dir") {
      const v = args[++i];
      if (v === undefined) return fail(verb, usage, io, "--state-dir needs a value");
      stateDir = v;
    } else if (flags.includes(a)) set.add(a);
    else if (a.startsWith("-")) return fail(verb, usage, io, `unknown option ${JSON.stringify(a)}`);
    else rest.push(a);
  }
  return { stateDir, flags: set, rest };
}

function fail(verb: string, usage: string, io: Io, msg: string): number {
  io.err(`umlfleet ${verb}: ${msg} (usage: umlfleet ${usage})\n`);
  return USAGE_ERROR;
}
