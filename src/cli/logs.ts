import { existsSync, readFileSync } from "node:fs";
import { StateDir } from "../host/state";
import { followLog } from "./follow";
import { parseCommon } from "./options";
import { USAGE_ERROR, type Verb } from "./verb";

/** The console log as one text: the older half (console.log.1) then the newer. */
function readLog(file: string): string {
  const part = (f: string) => (existsSync(f) ? readFileSync(f, "utf8") : "");
  return part(`${file}.1`) + part(file);
}

/**
 * `umlfleet logs [--state-dir DIR] [-f] NAME`: a guest's console log (what
 * the host keeps of it: the newest consoleLogKiB). `-f` follows it until
 * interrupted, across the relay's rotations.
 */
export const logs: Verb = {
  usage: "logs [--state-dir DIR] [-f] NAME",
  summary: "print a guest's console log; -f follows it",
  async run(args, io) {
    const o = parseCommon("logs", this.usage, args, io, ["-f"]);
    if (typeof o === "number") return o;
    const [name, extra] = o.rest;
    if (name === undefined || extra !== undefined) {
      io.err(`umlfleet logs: give one instance name (usage: umlfleet ${this.usage})\n`);
      return USAGE_ERROR;
    }
    const state = new StateDir(o.stateDir);
    if (!existsSync(state.instanceRecord(name))) {
      io.err(`umlfleet logs: no instance ${JSON.stringify(name)} in ${o.stateDir}\n`);
      return 1;
    }
    const file = state.consoleLog(name);
    io.out(readLog(file));
    if (!o.flags.has("-f")) return 0;
    await followLog(
      file,
      (t) => io.out(t),
      () => io.stop?.aborted === true,
    );
    return 0;
  },
};
