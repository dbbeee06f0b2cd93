import { LocalRuntime } from "../host/runtime";
import { sleep } from "../process";
import { Progress } from "./progress";
import { StateDir } from "../host/state";
import { USAGE_ERROR, type Verb } from "./verb";

/** Instance names as the schema has them (schema/common.json): nothing else reaches a path. */
const NAME = /^[a-z][a-z0-9-]{0,31}$/;
export const DEFAULT_WAIT_TIMEOUT_MS = 600_000;
const POLL_MS = 250;

/** Where one guest is on its way up, from its record and whether its process lives. */
export type GuestState = "ready" | "booting" | "created" | "absent" | "stopped" | "gone";
const FAILED: readonly GuestState[] = ["stopped", "gone"];
/** Where a guest is, in the progress line (counted) and in the final message (named). */
const SHORT: Record<GuestState, string> = {
  ready: "ready",
  booting: "booting",
  created: "not started",
  absent: "not made yet",
  stopped: "stopped",
  gone: "gone",
};
const SAYS: Record<GuestState, string> = {
  ready: "ready",
  booting: "booting",
  created: "made, not started yet",
  absent: "not made yet",
  stopped: "stopped",
  gone: "removed during its boot (the boot failed?)",
};

/**
 * The progress line: ready out of total, then how many are where.
 * "ready 1/3 (booting 1, not made yet 1)".
 */
export function progressLine(states: ReadonlyMap<string, GuestState>, total: number): string {
  const count = new Map<GuestState, number>();
  for (const s of states.values()) count.set(s, (count.get(s) ?? 0) + 1);
  // Expected (--count) but not in the folder yet: not made yet.
  const unseen = Math.max(0, total - states.size);
  if (unseen) count.set("absent", (count.get("absent") ?? 0) + unseen);
  const rest = (["booting", "created", "absent", "stopped", "gone"] as const)
    .filter((s) => count.get(s))
    .map((s) => `${SHORT[s]} ${count.get(s)}`);
  return `ready ${count.get("ready") ?? 0}/${total}${rest.length ? ` (${rest.join(", ")})` : ""}`;
}

/**
 * `umlfleet wait [NAME...]`: follows guests coming up (what a `pulumi up`
 * is booting) from the state folder, as "ready N/TOTAL": one line rewritten
 * in place on a terminal, a line per change otherwise. Exits 0 once all are
 * ready; 1 as soon as one stops or is removed during its boot, or at the
 * timeout, naming those that are not ready.
 */
export const wait: Verb = {
  usage: "wait [--state-dir DIR] [--timeout-ms N] [--count N] [NAME...]",
  summary: "wait until guests are ready, showing how many are (ready 12/32)",
  help:
    "NAMEs: those guests (one not made yet is waited for); none: every guest in the state folder,\n" +
    "and those made while it waits; --count N: at least N of them.\n" +
    `--timeout-ms N (default ${DEFAULT_WAIT_TIMEOUT_MS}) bounds the wait.\n` +
    "Exit status: 0 all ready; 1 one stopped or was removed during its boot, or the timeout; 2 usage.\n",
  async run(args, io) {
    const usage = (msg: string) => {
      io.err(`umlfleet wait: ${msg} (usage: umlfleet ${this.usage})\n`);
      return USAGE_ERROR;
    };
    let stateDir = StateDir.defaultRoot(io.env);
    let timeoutMs = DEFAULT_WAIT_TIMEOUT_MS;
    let count = 0;
    const names: string[] = [];
    for (let i = 0; i < args.length; i++) {
      const a = args[i]!;
      if (a === "--state-dir" || a === "--timeout-ms" || a === "--count") {
        const v = args[++i];
        if (v === undefined) return usage(`${a} needs a value`);
        if (a === "--state-dir") stateDir = v;
        else {
          const n = Number(v);
          if (!Number.isInteger(n) || n <= 0 || !/^\d+$/.test(v))
            return usage(
              `${a} must be a positive whole number${a === "--count" ? "" : " of milliseconds"} (got ${JSON.stringify(v)})`,
            );
          if (a === "--count") count = n;
          else timeoutMs = n;
        }
      } else if (a.startsWith("-")) return usage(`unknown option ${JSON.stringify(a)}`);
      else if (!NAME.test(a)) return usage(`${JSON.stringify(a)} is not an instance name (${NAME.source})`);
      else if (!names.includes(a)) names.push(a);
    }
    if (names.length && count) return usage("give NAMEs or --count, not both");
    const rt = new LocalRuntime({ stateDir });
    const progress = new Progress({
      write: (t) => io.out(t),
      // Read, not spread: a tty stream's isTTY is on its prototype.
      isTTY: io.outStream?.isTTY === true,
      columns: io.outStream?.columns,
    });
    const seenBooting = new Set<string>();
    const known = new Set<string>(names);
    const deadline = performance.now() + timeoutMs;
    for (;;) {
      // Without NAMEs: what the folder has now, and what it had (a guest removed during its boot failed).
      if (!names.length) for (const n of rt.instances.list()) known.add(n);
      const states = new Map<string, GuestState>();
      for (const n of known) {
        const r = rt.instances.get(n);
        let s: GuestState;
        if (!r) s = seenBooting.has(n) ? "gone" : "absent";
        else if (rt.instances.isRunning(r)) s = r.booting ? "booting" : "ready";
        else s = r.bootCount === 0 ? "created" : "stopped";
        if (s === "booting") seenBooting.add(n);
        // Ready, then removed: a member being replaced, not a failure.
        if (s === "ready" || s === "absent") seenBooting.delete(n);
        // Without NAMEs, a guest removed after it was ready (or never booted) is no longer waited for.
        if (s === "absent" && !names.length) {
          known.delete(n);
          continue;
        }
        states.set(n, s);
      }
      const total = Math.max(count, states.size);
      const line = progressLine(states, total);
      const failed = [...states].filter(([, s]) => FAILED.includes(s));
      const ready = [...states.values()].filter((s) => s === "ready").length;
      const timedOut = performance.now() >= deadline;
      const stopped = io.stop?.aborted === true;
      if (failed.length || ready === total || timedOut || stopped) {
        progress.done(line);
        if (ready === total && !failed.length) return 0;
        const notReady = [...states].filter(([, s]) => s !== "ready");
        const why = failed.length
          ? "not all will be ready"
          : timedOut
            ? `timed out after ${timeoutMs} ms`
            : "interrupted";
        const unseen = total - states.size;
        io.err(
          `umlfleet wait: ${why}: ${[
            ...notReady.map(([n, s]) => `${n} ${SAYS[s]}`),
            ...(unseen > 0 ? [`${unseen} more not made yet (--count ${count})`] : []),
          ].join(", ")}\n`,
        );
        return 1;
      }
      progress.update(line);
      await sleep(POLL_MS);
    }
  },
};
