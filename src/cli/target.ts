import { existsSync } from "node:fs";
import { LocalRuntime } from "../host/runtime";
import type { InstanceRecord } from "../host/instance";
import { parseWaitMs } from "./attach";
import { parseCommon } from "./options";
import { USAGE_ERROR, type Io } from "./verb";

/** Pipe mode's default: output quiet this long after the input ended detaches. */
export const DEFAULT_WAIT_MS = 2_000;

/**
 * What `console` and `serial` share: `--wait-ms N` and the common options,
 * `count` positional arguments, and a running instance of that name. A
 * problem is printed and its exit status returned (2 usage, 1 the instance).
 */
export function attachArgs(
  verb: string,
  usage: string,
  args: string[],
  io: Io,
  count: number,
): { rt: LocalRuntime; record: InstanceRecord; rest: string[]; waitMs: number } | number {
  const fail = (msg: string) => {
    io.err(`umlfleet ${verb}: ${msg} (usage: umlfleet ${usage})\n`);
    return USAGE_ERROR;
  };
  let waitMs = DEFAULT_WAIT_MS;
  const at = args.indexOf("--wait-ms");
  if (at >= 0) {
    const w = parseWaitMs(args[at + 1]);
    if (typeof w === "string") return fail(w);
    waitMs = w;
    args = [...args.slice(0, at), ...args.slice(at + 2)];
  }
  const o = parseCommon(verb, usage, args, io);
  if (typeof o === "number") return o;
  if (o.rest.length !== count) return fail(count === 1 ? "give one instance name" : "give NAME and LINE");
  const name = o.rest[0]!;
  if (!existsSync(o.stateDir)) {
    io.err(`umlfleet ${verb}: no state folder ${o.stateDir}\n`);
    return 1;
  }
  const rt = new LocalRuntime({ stateDir: o.stateDir });
  const record = rt.instances.get(name);
  if (!record) {
    io.err(`umlfleet ${verb}: no instance ${JSON.stringify(name)} in ${o.stateDir}\n`);
    return 1;
  }
  if (!rt.instances.isRunning(record)) {
    io.err(`umlfleet ${verb}: instance ${name} is not running\n`);
    return 1;
  }
  return { rt, record, rest: o.rest, waitMs };
}
