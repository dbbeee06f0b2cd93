import { withSbinOnPath } from "../process";
import { consoleVerb } from "./console";
import { doctor } from "./doctor";
import { exec } from "./exec";
import { gc } from "./gc";
import { graph } from "./graph";
import { logs } from "./logs";
import { ls } from "./ls";
import { serial } from "./serial";
import { USAGE_ERROR, type Io, type Verb } from "./verb";
import { wait } from "./wait";

/** A new verb (ls, logs, ...) is one entry here and a module beside this one. */
export const VERBS: Record<string, Verb> = {
  doctor,
  ls,
  wait,
  logs,
  exec,
  console: consoleVerb,
  serial,
  graph,
  gc,
};

function help(io: Io): void {
  io.out("usage: umlfleet <command> [arguments]\n\n");
  for (const v of Object.values(VERBS)) io.out(`  umlfleet ${v.usage}\n      ${v.summary}\n`);
  io.out("\n`umlfleet <command> --help` shows one command; exit status 0 ok, 1 failed, 2 usage error\n");
}

export async function main(argv: string[], io: Io): Promise<number> {
  const [name, ...args] = argv;
  if (name === undefined || name === "help" || name === "--help" || name === "-h") {
    help(io);
    return name === undefined ? USAGE_ERROR : 0;
  }
  const verb = Object.hasOwn(VERBS, name) ? VERBS[name] : undefined;
  if (!verb) {
    io.err(
      `umlfleet: unknown command ${JSON.stringify(name)} (commands: ${Object.keys(VERBS).join(", ")})\n`,
    );
    return USAGE_ERROR;
  }
  // `--help` (or -h) anywhere before a `--` (after it, the words are a guest's command).
  const own = args.includes("--") ? args.slice(0, args.indexOf("--")) : args;
  if (own.includes("--help") || own.includes("-h")) {
    io.out(`usage: umlfleet ${verb.usage}\n\n${verb.summary}\n${verb.help ? `\n${verb.help}` : ""}`);
    return 0;
  }
  return verb.run(args, io);
}

/** bin/umlfleet. */
export function cli(): void {
  // A reader that went away (`umlfleet doctor | head`) ends the output, not with a stack trace.
  process.stdout.on("error", (e: NodeJS.ErrnoException) => {
    if (e.code !== "EPIPE") throw e;
    process.exit();
  });
  withSbinOnPath();
  const io: Io = {
    out: (t) => process.stdout.write(t),
    err: (t) => process.stderr.write(t),
    env: process.env,
    stdin: process.stdin,
    outStream: process.stdout,
  };
  main(process.argv.slice(2), io).then(
    (status) => (process.exitCode = status),
    (e: unknown) => {
      io.err(`umlfleet: ${e instanceof Error ? e.message : String(e)}\n`);
      process.exitCode = 1;
    },
  );
}
