import { findDebris, removeDebris } from "../host/gc";
import { StateDir } from "../host/state";
import { parseCommon } from "./options";
import { USAGE_ERROR, type Verb } from "./verb";

/**
 * `umlfleet gc [--state-dir DIR] [--dry-run]`: finds what a crash left in the
 * state folder (processes and files of resources with no record, dead locks,
 * temp files) and removes it; anything with a record belongs to a stack and is
 * never touched. Exit status 0, also when there was nothing to do.
 */
export const gc: Verb = {
  usage: "gc [--state-dir DIR] [--dry-run]",
  summary: "remove what a crash left behind (never what a stack owns)",
  async run(args, io) {
    const o = parseCommon("gc", this.usage, args, io, ["--dry-run"]);
    if (typeof o === "number") return o;
    if (o.rest.length > 0) {
      io.err(
        `umlfleet gc: unexpected argument ${JSON.stringify(o.rest[0])} (usage: umlfleet ${this.usage})\n`,
      );
      return USAGE_ERROR;
    }
    const state = new StateDir(o.stateDir);
    const debris = findDebris(state);
    if (debris.length === 0) {
      io.out(`nothing to remove in ${o.stateDir}\n`);
      return 0;
    }
    const line = (d: (typeof debris)[number]) =>
      `${d.kind}\t${d.pid !== undefined ? `pid ${d.pid} (${d.command})` : d.path}\t${d.reason}\n`;
    if (o.flags.has("--dry-run")) {
      for (const d of debris) io.out(`would remove ${line(d)}`);
      return 0;
    }
    for (const d of await removeDebris(state, debris)) io.out(`removed ${line(d)}`);
    return 0;
  },
};
