import {
  closeSync,
  constants,
  fstatSync,
  openSync,
  readSync,
  renameSync,
  statSync,
  watch,
  type FSWatcher,
} from "node:fs";

/**
 * A guest's console log, capped. The guest writes its console into a pipe;
 * a relay on the host (coreutils `split`, which writes every read at once)
 * cuts the stream into chunks of half the cap, each replacing the last:
 * `console.log` holds the newest output, `console.log.1` the half before it.
 * So the log never holds more than the cap, however much a guest writes
 * (measured before: 4 MiB a second, without end), and what it keeps is the
 * newest output. The relay lives as long as the guest's end of the pipe, and
 * names the log in its command line, so reaping an instance's processes
 * finds it.
 */
export const DEFAULT_CONSOLE_LOG_KIB = 2048;

/** The relay's argv (for `>(exec ...)`): split's filter starts each chunk. */
export function consoleRelayCommand(logFile: string, capBytes: number): string[] {
  const half = Math.max(1, Math.floor(capBytes / 2));
  const q = shellQuote(logFile);
  // `[` is the shell's own: a boot's first chunk (its log rotated away before
  // the launch) costs no mv process, one fork and exec less per guest.
  const filter = `[ ! -e ${q} ] || mv -f -- ${q} ${shellQuote(`${logFile}.1`)} 2>/dev/null; exec cat >${q}`;
  // The prefix only names chunks for the filter's $FILE (unused); split
  // lengthens its suffixes itself when the default ones run out.
  return ["split", "-b", String(half), `--filter=${filter}`, "-", `${logFile}.chunk-`];
}

/** Before a boot: the previous boot's log becomes `.1`, so this boot's log starts empty. */
export function rotateForBoot(logFile: string): void {
  try {
    renameSync(logFile, `${logFile}.1`);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== "ENOENT") throw e;
  }
}

/**
 * Follows a console log across the relay's rotations: each poll returns the
 * text appended since the last one (plus a short tail of the previous read,
 * so a marker split across reads is still seen). When the relay starts a new
 * chunk, the rest of the old one is read first.
 */
export class LogFollower {
  private fd: number | undefined;
  private ino = -1;
  private pos = 0;
  private carry = "";

  constructor(private readonly file: string) {}

  poll(): string {
    let text = this.carry;
    for (let hops = 0; hops < 4; hops++) {
      if (this.fd === undefined && !this.open()) break;
      text += this.drain();
      const now = statSync(this.file, { throwIfNoEntry: false });
      if (!now || now.ino === this.ino) break;
      // Rotated: what was left of the old chunk is read; go on with the new one.
      this.close();
    }
    this.carry = text.slice(-256);
    return text;
  }

  close(): void {
    if (this.fd !== undefined) closeSync(this.fd);
    this.fd = undefined;
  }

  private open(): boolean {
    try {
      this.fd = openSync(this.file, constants.O_RDONLY | constants.O_NOFOLLOW);
    } catch {
      return false;
    }
    this.ino = fstatSync(this.fd).ino;
    this.pos = 0;
    return true;
  }

  private drain(): string {
    const size = fstatSync(this.fd!).size;
    if (size <= this.pos) return "";
    const buf = Buffer.alloc(size - this.pos);
    const n = readSync(this.fd!, buf, 0, buf.length, this.pos);
    this.pos += n;
    return buf.subarray(0, n).toString("utf8");
  }
}

/** The last `lines` lines of a log (reading at most its last 64 KiB). */
export function tailOf(file: string, lines: number): string {
  let fd: number;
  try {
    fd = openSync(file, constants.O_RDONLY | constants.O_NOFOLLOW);
  } catch {
    return "";
  }
  try {
    const size = fstatSync(fd).size;
    const start = Math.max(0, size - 64 * 1024);
    const buf = Buffer.alloc(size - start);
    readSync(fd, buf, 0, buf.length, start);
    return buf
      .toString("utf8")
      .split("\n")
      .slice(-lines - 1)
      .join("\n")
      .trimEnd();
  } finally {
    closeSync(fd);
  }
}

/** One shell word, single-quoted. */
export const shellQuote = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

/**
 * A pause that ends early when something in `dir` changes (inotify through
 * fs.watch): the boot wait checks the console as soon as the guest writes
 * to it instead of on its next 20 ms tick (10 ms of a boot's time on
 * average, measured), and no sooner than `minGapMs` after the last check,
 * so a chatty console costs a bounded number of checks. Without inotify it
 * is a plain sleep.
 */
export function changePause(
  dir: string,
  minGapMs = 2,
): { pause: (ms: number) => Promise<void>; close(): void } {
  let changed = false;
  let wake: (() => void) | undefined;
  let watcher: FSWatcher | undefined;
  try {
    watcher = watch(dir, { persistent: false }, () => {
      changed = true;
      wake?.();
    });
    watcher.on("error", () => watcher?.close());
  } catch {
    watcher = undefined;
  }
  const pause = async (ms: number) => {
    const gap = new Promise<void>((r) => setTimeout(r, minGapMs));
    if (!changed)
      await new Promise<void>((resolve) => {
        const timer = setTimeout(done, ms);
        function done() {
          clearTimeout(timer);
          wake = undefined;
          resolve();
        }
        wake = done;
      });
    changed = false;
    await gap;
  };
  return { pause, close: () => watcher?.close() };
}
