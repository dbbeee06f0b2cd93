/** Where progress goes: a write, and whether (and how wide) it is a terminal. */
export interface ProgressStream {
  write(text: string): void;
  isTTY?: boolean;
  columns?: number;
}

/** Erase the terminal line the cursor is on (ECMA-48 EL 2) after a carriage return. */
const CLEAR_LINE = "\r\x1b[2K";

/**
 * One line of progress ("ready 12/32"). On a terminal it is a single line
 * rewritten in place (\r, cut to the terminal's width so it never wraps) and
 * cleared by done(); elsewhere (a pipe, a log file) every change is a plain
 * line of its own, and an unchanged state writes nothing.
 */
export class Progress {
  private last: string | undefined;
  private shown = false;

  constructor(private readonly stream: ProgressStream) {}

  update(line: string): void {
    if (line === this.last) return;
    this.last = line;
    if (!this.stream.isTTY) {
      this.stream.write(`${line}\n`);
      return;
    }
    // A terminal that reports no size (0: a pty nobody sized) is taken as 80 columns.
    const width = Math.max(1, (this.stream.columns || 80) - 1);
    this.stream.write(`${CLEAR_LINE}${line.length > width ? line.slice(0, width) : line}`);
    this.shown = true;
  }

  /**
   * Ends the progress: a terminal's line is cleared, then `final` (if any) is
   * printed as a plain line; a pipe gets `final` unless it was the last line.
   */
  done(final?: string): void {
    if (this.shown) this.stream.write(CLEAR_LINE);
    this.shown = false;
    if (final !== undefined && (this.stream.isTTY || final !== this.last)) this.stream.write(`${final}\n`);
    this.last = final;
  }
}
