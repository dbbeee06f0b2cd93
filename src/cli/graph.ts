import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { UmlfleetError } from "../errors";
import { LocalRuntime } from "../host/runtime";
import { run } from "../process";
import { parseCommon } from "./options";
import { stackTopology } from "./stack-topology";
import { topologyDot, topologyOf } from "./topology";
import { USAGE_ERROR, type Verb } from "./verb";

const FORMATS = ["dot", "svg"] as const;

/** DOT rendered as SVG by Graphviz's `dot` (Debian's graphviz), spawned with argv. */
export async function renderSvg(dot: string, env: NodeJS.ProcessEnv = process.env): Promise<string> {
  // Not findOnPath: it resolves links, and dot is a link whose name picks the layout engine.
  const file = (env.PATH ?? "/usr/bin:/bin")
    .split(":")
    .filter(Boolean)
    .map((d) => join(d, "dot"))
    .find((f) => existsSync(f));
  if (!file)
    throw new UmlfleetError(
      "UMLFLEET_HOST_UNSUPPORTED",
      "graph --format svg needs Graphviz's dot, which is not on PATH: apt-get install -y graphviz (or print DOT without --format)",
      { field: "--format", value: "svg" },
    );
  return (await run(file, ["-Tsvg"], { input: dot, timeoutMs: 60_000, env })).stdout;
}

/**
 * `umlfleet graph [--state-dir DIR | --stack-export FILE] [--format dot|svg]`:
 * the topology on stdout. From the state folder (this host, and the cables
 * it runs to others), or from `pulumi stack export` (the whole program,
 * target hosts included, read from the stack's outputs).
 */
export const graph: Verb = {
  usage: "graph [--state-dir DIR | --stack-export FILE] [--format dot|svg]",
  summary:
    "print the machines, networks, bases, serial links, cables and hosts as Graphviz DOT or SVG, from the state folder or a `pulumi stack export` file",
  async run(args, io) {
    const fail = (msg: string) => {
      io.err(`umlfleet graph: ${msg} (usage: umlfleet ${this.usage})\n`);
      return USAGE_ERROR;
    };
    let format = "dot";
    let stackExport: string | undefined;
    const rest: string[] = [];
    for (let i = 0; i < args.length; i++) {
      const a = args[i]!;
      if (a === "--format" || a === "--stack-export") {
        const v = args[++i];
        if (v === undefined) return fail(`${a} needs a value`);
        if (a === "--format") format = v;
        else stackExport = v;
      } else rest.push(a);
    }
    if (!(FORMATS as readonly string[]).includes(format))
      return fail(`--format must be one of ${FORMATS.join(", ")} (got ${JSON.stringify(format)})`);
    const o = parseCommon("graph", this.usage, rest, io);
    if (typeof o === "number") return o;
    if (o.rest.length > 0) return fail(`unexpected argument ${JSON.stringify(o.rest[0])}`);
    if (stackExport !== undefined && rest.includes("--state-dir"))
      return fail("--state-dir and --stack-export are two sources: give one");
    let topology;
    if (stackExport !== undefined) {
      let exported: unknown;
      try {
        exported = JSON.parse(readFileSync(stackExport, "utf8"));
      } catch (e) {
        io.err(`umlfleet graph: --stack-export ${JSON.stringify(stackExport)}: ${(e as Error).message}\n`);
        return 1;
      }
      topology = stackTopology(exported, stackExport);
    } else topology = await topologyOf(new LocalRuntime({ stateDir: o.stateDir }));
    const dot = topologyDot(topology);
    if (format === "dot") io.out(dot);
    else {
      try {
        io.out(await renderSvg(dot, io.env));
      } catch (e) {
        const code = e instanceof UmlfleetError ? `[${e.code}] ` : "";
        io.err(`umlfleet graph: ${code}${e instanceof Error ? e.message : String(e)}\n`);
        return 1;
      }
    }
    return 0;
  },
};
