import { closeSync, constants, createReadStream, openSync, writeSync, type ReadStream } from "node:fs";

/**
 * A terminal on a guest's serial line from the host, through the line's FIFO
 * pair (`in`: the guest reads it; `out`: the guest writes it), as a person at
 * a terminal would use it: wait for a prompt, answer it.
 */
export class SerialSession {
  private text = "";
  private seen = 0;
  private readonly reader: ReadStream;
  private readonly writer: number;

  constructor(port: { in: string; out: string }) {
    // UML holds both FIFOs open read-write, so neither open blocks.
    this.writer = openSync(port.in, constants.O_WRONLY | constants.O_NONBLOCK);
    this.reader = createReadStream(port.out, { encoding: "utf8" });
    this.reader.on("data", (d) => (this.text += String(d)));
  }

  /** Everything the guest wrote since the session began. */
  get transcript(): string {
    return this.text;
  }

  send(line: string): void {
    this.seen = this.text.length;
    writeSync(this.writer, `${line}\r`);
  }

  /** Wait (at most `timeoutMs`) until `pattern` appears after what was there at the last send. */
  async expect(pattern: RegExp, timeoutMs = 30_000): Promise<string> {
    const deadline = performance.now() + timeoutMs;
    for (;;) {
      const fresh = this.text.slice(this.seen);
      if (pattern.test(fresh)) return fresh;
      if (performance.now() > deadline)
        throw new Error(`no ${String(pattern)} on the serial line; it said:\n${this.text}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  close(): void {
    this.reader.destroy();
    closeSync(this.writer);
  }
}
