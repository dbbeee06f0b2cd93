import { constants, openSync } from "node:fs";
import { Socket } from "node:net";
import { sleep } from "../process";
import type { Io } from "./verb";

export const ATTACH_HELP = [
  "  On a terminal: raw mode, every key goes to the guest; Ctrl-] detaches.",
  "  From a pipe: its lines are sent; once it ends, output is printed until quiet",
  "  for --wait-ms (default 2000), then it detaches. The guest keeps running.",
  "  --state-dir DIR  the state folder (default $UMLFLEET_STATE_DIR)",
  "  exit status: 0 detached, 1 no such instance or line, not running, 2 usage",
  "",
].join("\n");

/** Ctrl-]: detaches a terminal (as in telnet). */
export const DETACH_BYTE = 0x1d;

export interface AttachTarget {
  /** "the console of a", "serial line 0 of a". */
  label: string;
  /** The FIFO the guest reads (UML holds it open read-write). */
  input: string;
  /** Start passing the guest's output to `write`; returns what stops it. */
  output(write: (text: string) => void): () => void;
}

/** A FIFO end as a stream that can be closed at once (an fs stream's pending read would hold the process). */
export function fifoSocket(path: string, mode: "read" | "write"): Socket {
  // Non-blocking: opening the write end fails (ENXIO) rather than waits when no guest holds the FIFO.
  const fd = openSync(
    path,
    (mode === "read" ? constants.O_RDONLY : constants.O_WRONLY) | constants.O_NONBLOCK,
  );
  return new Socket({ fd, readable: mode === "read", writable: mode === "write" });
}

/**
 * Join the caller's terminal to a guest's line. On a terminal: raw mode, each
 * key to the guest, Ctrl-] detaches. From a pipe (a script, a test): what it
 * reads is sent, and once it ends the output is passed on until it has been
 * quiet for `quietMs`, then it detaches. The guest keeps running either way.
 */
export async function attach(io: Io, target: AttachTarget, quietMs: number): Promise<number> {
  const stdin = io.stdin;
  if (!stdin) {
    io.err("umlfleet: no input to attach\n");
    return 1;
  }
  let guestIn: Socket;
  try {
    guestIn = fifoSocket(target.input, "write");
  } catch (e) {
    io.err(
      `umlfleet: ${target.label} takes no input now (${(e as NodeJS.ErrnoException).code}): is it running?\n`,
    );
    return 1;
  }
  guestIn.on("error", () => undefined); // a guest that stopped: its end is gone; detach below
  let lastOutputMs = Date.now();
  const stopOutput = target.output((text) => {
    lastOutputMs = Date.now();
    io.out(text);
  });
  const tty = stdin.isTTY === true;
  io.err(
    tty
      ? `umlfleet: attached to ${target.label}; detach with Ctrl-]\r\n`
      : `umlfleet: attached to ${target.label}; detaches when the input ends\n`,
  );
  if (tty) stdin.setRawMode(true);
  return new Promise<number>((resolve) => {
    let done = false;
    const finish = (status: number) => {
      if (done) return;
      done = true;
      stopOutput();
      guestIn.destroy();
      if (tty) stdin.setRawMode(false);
      stdin.pause();
      stdin.removeListener("data", onData);
      if (tty) io.err("\r\numlfleet: detached\r\n");
      resolve(status);
    };
    const onData = (d: Buffer | string) => {
      const bytes = typeof d === "string" ? Buffer.from(d) : d;
      const at = tty ? bytes.indexOf(DETACH_BYTE) : -1;
      if (at >= 0) {
        if (at > 0) guestIn.write(bytes.subarray(0, at));
        finish(0);
        return;
      }
      guestIn.write(bytes);
    };
    stdin.on("data", onData);
    stdin.on("end", () => {
      void (async () => {
        const endedMs = Date.now();
        while (!done && Date.now() - Math.max(endedMs, lastOutputMs) < quietMs) await sleep(100);
        finish(0);
      })();
    });
    io.stop?.addEventListener("abort", () => finish(0));
    stdin.resume();
  });
}

/** `--wait-ms N` as the verbs take it: a positive whole number, or an error message. */
export function parseWaitMs(value: string | undefined): number | string {
  const n = Number(value);
  return value !== undefined && Number.isInteger(n) && n > 0
    ? n
    : `--wait-ms must be a positive whole number of milliseconds (got ${JSON.stringify(value)})`;
}
