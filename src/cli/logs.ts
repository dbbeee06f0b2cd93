import { existsSync, readFileSync, statSync } from "node:fs";
import { StateDir } from "../host/state";
import { sleep } from "../process";
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
    // Follow: print what grows; when the relay rotates (console.log becomes .1 and
    // a new console.log starts), print the rest of the old one, then the new one.
    let offset = existsSync(file) ? statSync(file).size : 0;
    let ino = existsSync(file) ? statSync(file).ino : 0;
    while (!io.stop?.aborted) {
      await sleep(200);
      if (!existsSync(file)) continue;
      const st = statSync(file);
      if (st.ino !== ino) {
        const old = existsSync(`${file}.1`) ? readFileSync(`${file}.1`) : Buffer.alloc(0);
        if (old.length > offset) io.out(old.subarray(offset).toString("utf8"));
        ino = st.ino;
        offset = 0;
      }
      if (st.size > offset) {
        io.out(readFileSync(file).subarray(offset).toString("utf8"));
        offset = st.size;
      }
    }
    return 0;
  },
};
