import { existsSync } from "node:fs";
import { UmlfleetError } from "../errors";
import { attach, ATTACH_HELP } from "./attach";
import { followLog } from "./follow";
import { attachArgs } from "./target";
import type { Verb } from "./verb";

/**
 * A shell on the guest's console (con0, the guest's /dev/tty0), started on
 * the first attach and kept until it exits: umlfleet's init starts none at
 * boot, so a guest nobody attaches to pays no process for it. setsid -c makes
 * the line its controlling terminal (Ctrl-C reaches what runs in it).
 */
export const CONSOLE_SHELL = [
  "p=/run/umlfleet/console.pid",
  'if ! { [ -f $p ] && kill -0 "$(cat $p)" 2>/dev/null; }; then',
  "  mkdir -p /run/umlfleet",
  "  t=/dev/tty0; [ -e $t ] || t=/dev/console",
  "  c=; setsid -c true </dev/null >/dev/null 2>&1 && c=-c",
  `  T=$t setsid $c sh -c 'echo $$ >/run/umlfleet/console.pid; exec sh -i <$T >$T 2>&1' </dev/null >/dev/null 2>&1 &`,
  "fi",
].join("\n");

/**
 * `umlfleet console NAME`: the guest's console, interactively. Output is the
 * console log as it grows (what `logs -f` shows); keys go to the console's
 * input FIFO. A terminal detaches with Ctrl-]; piped input detaches once it
 * ends and the output has been quiet for --wait-ms.
 */
export const consoleVerb: Verb = {
  usage: "console [--state-dir DIR] [--wait-ms N] NAME",
  summary: "attach to a guest's console (a shell on umlfleet's bases); detach with Ctrl-]",
  help: ATTACH_HELP,
  async run(args, io) {
    const a = attachArgs("console", this.usage, args, io, 1);
    if (typeof a === "number") return a;
    const name = a.record.spec.name;
    const input = a.rt.instances.fifo(name, "console", "in");
    if (!existsSync(input) || !(a.record.argv ?? []).some((w) => w.startsWith("con0=fd:"))) {
      io.err(
        `umlfleet console: instance ${name} booted without a console input (an older umlfleet); restart it\n`,
      );
      return 1;
    }
    if (a.record.spec.readiness === "marker") {
      try {
        await a.rt.exec(name, CONSOLE_SHELL, { timeoutMs: 30_000 });
      } catch (e) {
        if (!(e instanceof UmlfleetError)) throw e;
        io.err(`umlfleet console: [${e.code}] ${e.message}\n`);
        return 1;
      }
    }
    const log = a.rt.state.consoleLog(name);
    return attach(
      io,
      {
        label: `the console of ${name}`,
        input,
        output: (write) => {
          let stopped = false;
          void followLog(log, write, () => stopped, 100);
          return () => (stopped = true);
        },
      },
      a.waitMs,
    );
  },
};
