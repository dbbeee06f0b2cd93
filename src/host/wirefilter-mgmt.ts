import { connect, type Socket } from "node:net";
import { UmlfleetError } from "../errors";
import type { ImpairmentSpec } from "../spec";

/**
 * wirefilter's management socket (-M), spoken from here: Debian's `unixcmd`
 * needs a rules file, and a line protocol is a few lines of code. The session
 * opens with a banner and the prompt `VDEwf$ `; each command line is answered
 * by an optional data block (`0000 DATA END WITH '.'`, lines, `.`), then a
 * status line `<4 digits> <text>` (1000 is success), then the prompt again.
 */
export const WF_PROMPT = "VDEwf$ ";
const DATA_START = "0000 DATA END WITH '.'";

export interface WirefilterReply {
  code: number;
  text: string;
  /** The data block's lines (showinfo, help), without the framing. */
  data: string[];
}

/** One reply from the text between two prompts; undefined while it is incomplete. */
export function parseReply(chunk: string): WirefilterReply | undefined {
  const lines = chunk.split("\n").map((l) => l.replace(/\r$/, ""));
  const data: string[] = [];
  let inData = false;
  for (const line of lines) {
    if (inData) {
      if (line === ".") inData = false;
      else data.push(line);
      continue;
    }
    if (line === DATA_START) {
      inData = true;
      continue;
    }
    const m = /^(\d{4}) (.*)$/.exec(line);
    if (m) return { code: Number(m[1]), text: m[2]!, data };
  }
  return undefined;
}

/**
 * The commands that set a wirefilter to an impairment. wirefilter runs between
 * the switch (its left side, L) and the guest (R): the guest's frames go R->L.
 * Every setting names both directions, so applying a spec fully replaces the
 * one before (down's loss included).
 */
export function impairmentCommands(imp: ImpairmentSpec | undefined): string[] {
  const i = imp ?? {};
  const jitter = i.jitterMs ? `+${i.jitterMs}` : "";
  const down = i.down === true;
  return [
    `loss LR${down ? 100 : 0}`,
    `loss RL${down ? 100 : (i.lossPercent ?? 0)}`,
    "delay LR0",
    `delay RL${i.delayMs ?? 0}${jitter}`,
    "dup LR0",
    `dup RL${i.duplicatePercent ?? 0}`,
    "bandwidth LR0",
    // kbit/s (1000 bits) to bytes/s; 0 is no limit.
    `bandwidth RL${(i.rateKbit ?? 0) * 125}`,
  ];
}

/** A session on one management socket: commands one at a time, each answered before the next. */
export class WirefilterMgmt {
  private buf = "";
  private waiter?: () => void;
  private closed?: Error;

  private constructor(
    private readonly sock: Socket,
    private readonly timeoutMs: number,
  ) {
    sock.setEncoding("utf8");
    sock.on("data", (d: string) => {
      this.buf += d;
      this.waiter?.();
    });
    const end = (e?: Error) => {
      this.closed = e ?? new Error("closed");
      this.waiter?.();
    };
    sock.on("error", end);
    sock.on("close", () => end());
  }

  /** Connect and read the banner up to the first prompt. */
  static async open(path: string, timeoutMs = 5_000): Promise<WirefilterMgmt> {
    const sock = connect(path);
    const m = new WirefilterMgmt(sock, timeoutMs);
    try {
      await new Promise<void>((resolve, reject) => {
        sock.once("connect", resolve);
        sock.once("error", reject);
      });
      await m.untilPrompt(`connecting to ${path}`);
    } catch (e) {
      sock.destroy();
      throw mgmtError(`wirefilter management socket ${path}: ${(e as Error).message}`);
    }
    return m;
  }

  /** Send one command; a status other than 1000 throws, naming the command and the answer. */
  async send(command: string): Promise<WirefilterReply> {
    if (/[\r\n]/.test(command))
      throw mgmtError(`wirefilter command ${JSON.stringify(command)} has a line break`);
    this.sock.write(`${command}\n`);
    const text = await this.untilPrompt(command);
    const reply = parseReply(text);
    if (!reply)
      throw mgmtError(`wirefilter: no status for ${JSON.stringify(command)}: ${JSON.stringify(text)}`);
    if (reply.code !== 1000)
      throw mgmtError(`wirefilter refused ${JSON.stringify(command)}: ${reply.code} ${reply.text}`);
    return reply;
  }

  close(): void {
    this.sock.destroy();
  }

  /** Everything up to the next prompt (which is consumed). */
  private async untilPrompt(what: string): Promise<string> {
    const deadline = Date.now() + this.timeoutMs;
    for (;;) {
      const at = this.buf.indexOf(WF_PROMPT);
      if (at >= 0) {
        const text = this.buf.slice(0, at);
        this.buf = this.buf.slice(at + WF_PROMPT.length);
        return text;
      }
      if (this.closed) throw new Error(`connection ended before the prompt (${what})`);
      const left = deadline - Date.now();
      if (left <= 0)
        throw mgmtError(`wirefilter did not answer ${JSON.stringify(what)} within ${this.timeoutMs} ms`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiter = () => {
          clearTimeout(t);
          resolve();
        };
      });
      this.waiter = undefined;
    }
  }
}

/** Set a running wirefilter to an impairment (every setting, both directions). */
export async function applyImpairment(mgmtSocket: string, imp: ImpairmentSpec | undefined): Promise<void> {
  const m = await WirefilterMgmt.open(mgmtSocket);
  try {
    for (const c of impairmentCommands(imp)) await m.send(c);
  } finally {
    m.close();
  }
}

/** The `showinfo` table as "Loss" -> "L->R 0+0U   R->L 10+0U". */
export async function showInfo(mgmtSocket: string): Promise<Record<string, string>> {
  const m = await WirefilterMgmt.open(mgmtSocket);
  try {
    const r = await m.send("showinfo");
    const out: Record<string, string> = {};
    for (const line of r.data) {
      const mm = /^(\S+)\s+(L->R.*)$/.exec(line);
      if (mm) out[mm[1]!] = mm[2]!.trim();
    }
    return out;
  } finally {
    m.close();
  }
}

const mgmtError = (message: string) => new UmlfleetError("UMLFLEET_COMMAND_FAILED", message, {});
