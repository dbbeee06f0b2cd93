import { describe, expect, it } from "vitest";
import { main } from "../../src/cli/main";
import { Progress } from "../../src/cli/progress";
import type { Io } from "../../src/cli/verb";
import { progressLine, type GuestState } from "../../src/cli/wait";

/** A stream that records what is written, as a terminal (isTTY) or a pipe. */
function fakeStream(isTTY: boolean, columns = 80) {
  const writes: string[] = [];
  return { writes, stream: { write: (t: string) => void writes.push(t), isTTY, columns } };
}

describe("progress output", () => {
  it("on a terminal: one line rewritten with \\r, changes only, cut to the width, cleared at the end", () => {
    const { writes, stream } = fakeStream(true, 20);
    const p = new Progress(stream);
    p.update("ready 0/3");
    p.update("ready 0/3"); // unchanged: nothing written
    p.update("ready 1/3");
    p.update("ready 2/3 (booting 1, not made yet 4)");
    p.done("ready 3/3");
    expect(writes).toEqual([
      "\r\x1b[2Kready 0/3",
      "\r\x1b[2Kready 1/3",
      "\r\x1b[2Kready 2/3 (booting ", // 19 columns: the line never wraps
      "\r\x1b[2K",
      "ready 3/3\n",
    ]);
    // No newline until the end: the terminal shows one line.
    expect(writes.slice(0, 3).join("")).not.toContain("\n");
  });

  it("a terminal that reports no width (0) is taken as 80 columns, not cut to nothing", () => {
    const { writes, stream } = fakeStream(true, 0);
    new Progress(stream).update("ready 1/32 (booting 31)");
    expect(writes).toEqual(["\r\x1b[2Kready 1/32 (booting 31)"]);
  });

  it("not on a terminal: a plain line per change, no control characters, the last once", () => {
    const { writes, stream } = fakeStream(false);
    const p = new Progress(stream);
    p.update("ready 0/2");
    p.update("ready 0/2");
    p.update("ready 1/2");
    p.update("ready 2/2");
    p.done("ready 2/2");
    expect(writes).toEqual(["ready 0/2\n", "ready 1/2\n", "ready 2/2\n"]);
  });

  it("counts ready out of the total, and says where the others are", () => {
    const states = new Map<string, GuestState>([
      ["a", "ready"],
      ["b", "booting"],
      ["c", "booting"],
      ["d", "created"],
    ]);
    expect(progressLine(states, 4)).toBe("ready 1/4 (booting 2, not started 1)");
    // --count 6: two not in the folder yet.
    expect(progressLine(states, 6)).toBe("ready 1/6 (booting 2, not started 1, not made yet 2)");
    expect(progressLine(new Map([["a", "ready"]]), 1)).toBe("ready 1/1");
    expect(progressLine(new Map([["a", "stopped"]]), 1)).toBe("ready 0/1 (stopped 1)");
  });
});

async function umlfleet(args: string[], stop?: AbortSignal) {
  let out = "";
  let err = "";
  const io: Io = { out: (t) => (out += t), err: (t) => (err += t), env: {}, ...(stop ? { stop } : {}) };
  return { status: await main(["wait", ...args], io), out, err };
}

describe("umlfleet wait: arguments and what an empty folder gives", () => {
  const dir = ["--state-dir", "/nonexistent/umlfleet-wait-test"];

  it("a bad option, value or name is a usage error naming it (exit 2)", async () => {
    for (const [args, says] of [
      [["--timeout-ms", "soon"], '--timeout-ms must be a positive whole number of milliseconds (got "soon")'],
      [["--timeout-ms", "0"], '(got "0")'],
      [["--count", "1.5"], '--count must be a positive whole number (got "1.5")'],
      [["--count"], "--count needs a value"],
      [["--follow"], 'unknown option "--follow"'],
      [["../etc"], '"../etc" is not an instance name'],
      [["--count", "2", "web"], "give NAMEs or --count, not both"],
    ] as const) {
      const r = await umlfleet([...dir, ...args]);
      expect(r.status, args.join(" ")).toBe(2);
      expect(r.err, args.join(" ")).toContain(says);
      expect(r.out).toBe("");
    }
  });

  it("nothing to wait for is done at once; a named guest never made times out naming it (exit 1)", async () => {
    const none = await umlfleet(dir);
    expect(none).toMatchObject({ status: 0, out: "ready 0/0\n" });
    const r = await umlfleet([...dir, "--timeout-ms", "300", "web", "db"]);
    expect(r.status).toBe(1);
    expect(r.out).toBe("ready 0/2 (not made yet 2)\n");
    expect(r.err).toBe("umlfleet wait: timed out after 300 ms: web not made yet, db not made yet\n");
    const counted = await umlfleet([...dir, "--timeout-ms", "300", "--count", "3"]);
    expect(counted.status).toBe(1);
    expect(counted.err).toContain("3 more not made yet (--count 3)");
  });
});
