import { Duplex, type Readable, type Writable } from "node:stream";

/**
 * One connection made of two streams (the agent's stdin and stdout under
 * `ssh host umlfleet-agent dial-stdio`), shaped enough like a net.Socket for
 * node's http.Server and http.request: they call these socket methods, which
 * mean nothing for a pipe. The connection ends when `input` ends.
 */
export class StreamSocket extends Duplex {
  readonly remoteAddress = "stdio";
  readonly remotePort = 0;
  readonly localAddress = "stdio";
  readonly localPort = 0;
  readonly encrypted = false;

  constructor(
    private readonly input: Readable,
    private readonly output: Writable,
  ) {
    super({ allowHalfOpen: false });
    input.on("data", (chunk: Buffer) => {
      if (!this.push(chunk)) input.pause();
    });
    input.on("end", () => this.push(null));
    input.on("error", (e) => this.destroy(e));
    output.on("error", (e) => this.destroy(e));
  }

  override _read(): void {
    this.input.resume();
  }

  override _write(chunk: Buffer, encoding: BufferEncoding, done: (e?: Error | null) => void): void {
    this.output.write(chunk, encoding, done);
  }

  override _final(done: (e?: Error | null) => void): void {
    this.output.end(done);
  }

  override _destroy(e: Error | null, done: (e?: Error | null) => void): void {
    this.input.destroy();
    this.output.destroy();
    done(e);
  }

  setTimeout(_ms: number, cb?: () => void): this {
    if (cb) this.once("timeout", cb);
    return this;
  }
  setNoDelay(): this {
    return this;
  }
  setKeepAlive(): this {
    return this;
  }
  ref(): this {
    return this;
  }
  unref(): this {
    return this;
  }
}
