import { existsSync, readFileSync, statSync } from "node:fs";
import { sleep } from "../process";

/**
 * Print what a console log gains until `stopped()` says so, across the
 * relay's rotations: when `file` becomes `file.1` and a new `file` starts,
 * the rest of the old one is printed, then the new one (console-log.ts).
 * Starts at the log's end: what it held before is the caller's to print.
 */
export async function followLog(
  file: string,
  write: (text: string) => void,
  stopped: () => boolean,
  pollMs = 200,
): Promise<void> {
  let offset = existsSync(file) ? statSync(file).size : 0;
  let ino = existsSync(file) ? statSync(file).ino : 0;
  while (!stopped()) {
    await sleep(pollMs);
    if (!existsSync(file)) continue;
    const st = statSync(file);
    if (st.ino !== ino) {
      const old = existsSync(`${file}.1`) ? readFileSync(`${file}.1`) : Buffer.alloc(0);
      if (old.length > offset) write(old.subarray(offset).toString("utf8"));
      ino = st.ino;
      offset = 0;
    }
    if (st.size > offset) {
      write(readFileSync(file).subarray(offset).toString("utf8"));
      offset = st.size;
    }
  }
}
