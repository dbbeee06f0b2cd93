import { existsSync } from "node:fs";
import { StringDecoder } from "node:string_decoder";
import type { SerialLinkRecord } from "../host/serial-links";
import { readJson } from "../host/state";
import { attach, ATTACH_HELP, fifoSocket } from "./attach";
import { attachArgs } from "./target";
import { USAGE_ERROR, type Verb } from "./verb";

/**
 * `umlfleet serial NAME LINE`: a guest's serial line (/dev/ttyS<LINE>),
 * byte for byte, through its FIFO pair: what the guest writes is printed,
 * keys go to it. umlfleet's init leaves the line raw and runs nothing on it:
 * what answers is what the guest runs there (a getty, a program). A line
 * joined by a SerialLink is refused: its relay owns the bytes.
 */
export const serial: Verb = {
  usage: "serial [--state-dir DIR] [--wait-ms N] NAME LINE",
  summary: "attach to a guest's serial line; detach with Ctrl-]",
  help: ATTACH_HELP,
  async run(args, io) {
    const a = attachArgs("serial", this.usage, args, io, 2);
    if (typeof a === "number") return a;
    const name = a.record.spec.name;
    const word = a.rest[1]!;
    const line = Number(word);
    if (!/^\d+$/.test(word)) {
      io.err(`umlfleet serial: LINE must be a serial line number (got ${JSON.stringify(word)})\n`);
      return USAGE_ERROR;
    }
    if (line >= a.record.spec.serialLines) {
      io.err(
        `umlfleet serial: instance ${name} has ${a.record.spec.serialLines} serial line(s) (ttyS0..); no line ${line}\n`,
      );
      return 1;
    }
    for (const l of a.rt.state.list("links")) {
      const s = readJson<SerialLinkRecord>(a.rt.state.linkRecord(l))?.spec;
      if (!s) continue;
      if ([s.a, s.b].some((e) => e.instance === name && e.line === line)) {
        io.err(
          `umlfleet serial: line ${line} of ${name} is joined by serial link ${l}; its relay owns the bytes\n`,
        );
        return 1;
      }
    }
    const input = a.rt.instances.fifo(name, `ttyS${line}`, "in");
    const out = a.rt.instances.fifo(name, `ttyS${line}`, "out");
    if (!existsSync(input) || !existsSync(out)) {
      io.err(`umlfleet serial: line ${line} of ${name} has no FIFOs; restart the instance\n`);
      return 1;
    }
    return attach(
      io,
      {
        label: `serial line ${line} (ttyS${line}) of ${name}`,
        input,
        output: (write) => {
          const sock = fifoSocket(out, "read");
          const decoder = new StringDecoder("utf8");
          sock.on("data", (d: Buffer) => write(decoder.write(d)));
          sock.on("error", () => undefined);
          return () => sock.destroy();
        },
      },
      a.waitMs,
    );
  },
};
