import {
  closeSync,
  promises as fsp,
  existsSync,
  fsyncSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmdirSync,
  rmSync,
  writeSync,
} from "node:fs";
import { homedir } from "node:os";
import { dirname, join } from "node:path";
import { UmlfleetError } from "../errors";
import { throwIfAborted } from "../deadline";
import { identify, isAlive, sleep, type ProcessIdentity } from "../process";

/** Version of the record files; bump with a migration when their shape changes. */
export const STATE_SCHEMA_VERSION = 1;

/**
 * The per-host state folder. Everything a later process needs to find and
 * re-adopt what an earlier one made is written here, atomically:
 *
 *   images/<sha256>.img         content-addressed base images, read-only
 *   bases/<name>.json           base records (spec, image)
 *   disks/<name>.img|.json      overlays, blank and swap disks
 *   networks/<name>.json        network records (switch pid)
 *   switches/<name>/            each switch's sockets; bound read-only into every sandbox
 *   instances/<name>/           instance.json, console.log, control and serial FIFOs;
 *   instances/<name>/vm/        the only part the guest's sandbox sees
 *   links/<name>.json           serial-link relay records
 *   locks/                      one lock folder per resource being changed
 */
export class StateDir {
  constructor(readonly root: string) {}

  static defaultRoot(env: NodeJS.ProcessEnv = process.env): string {
    if (env.UMLFLEET_STATE_DIR) return env.UMLFLEET_STATE_DIR;
    const base = env.XDG_STATE_HOME || join(homedir(), ".local", "state");
    return join(base, "umlfleet");
  }

  images = () => join(this.root, "images");
  image = (sha: string) => join(this.root, "images", `${sha}.img`);
  baseRecord = (name: string) => join(this.root, "bases", `${name}.json`);
  diskFile = (name: string) => join(this.root, "disks", `${name}.img`);
  diskRecord = (name: string) => join(this.root, "disks", `${name}.json`);
  networkRecord = (name: string) => join(this.root, "networks", `${name}.json`);
  switches = () => join(this.root, "switches");
  switchDir = (name: string) => join(this.root, "switches", name);
  instanceDir = (name: string) => join(this.root, "instances", name);
  instanceRecord = (name: string) => join(this.root, "instances", name, "instance.json");
  consoleLog = (name: string) => join(this.root, "instances", name, "console.log");
  fifoDir = (name: string) => join(this.root, "instances", name, "fifo");
  vmDir = (name: string) => join(this.root, "instances", name, "vm");
  linkRecord = (name: string) => join(this.root, "links", `${name}.json`);
  lockDir = (key: string) => join(this.root, "locks", key.replace(/\//g, "_"));

  /**
   * Remove the state folder when nothing is left in it (after the last
   * resource is removed), so destroying everything leaves the host as it was.
   * Only our own sub-folders are removed, and only when empty.
   */
  pruneIfEmpty(): void {
    const subs = ["images", "bases", "disks", "networks", "switches", "instances", "links", "locks"];
    const isEmpty = (d: string) => !existsSync(d) || readdirSync(d).length === 0;
    if (!subs.every((d) => isEmpty(join(this.root, d)))) return;
    for (const d of subs) rmSync(join(this.root, d), { recursive: true, force: true });
    // The sandboxes' seccomp filter (src/host/seccomp.ts, named by content) and the kernels'
    // delay-loop values (delay-calibration.ts): no guest is left to use them.
    for (const f of existsSync(this.root) ? readdirSync(this.root) : [])
      if (/^seccomp-[0-9a-f]{16}\.bpf$/.test(f) || f === CALIBRATION_FILE)
        rmSync(join(this.root, f), { force: true });
    try {
      rmdirSync(this.root);
    } catch {
      /* not empty: something else lives there; leave it */
    }
  }

  /** Names of the records in a folder (`bases`, `disks`, `networks`, `links`) or of instance folders. */
  list(kind: "bases" | "disks" | "networks" | "links" | "instances"): string[] {
    const dir = join(this.root, kind);
    if (!existsSync(dir)) return [];
    const entries = readdirSync(dir, { withFileTypes: true });
    if (kind === "instances")
      return entries
        .filter((e) => e.isDirectory())
        .map((e) => e.name)
        .sort();
    return entries
      .filter((e) => e.isFile() && e.name.endsWith(".json"))
      .map((e) => e.name.slice(0, -5))
      .sort();
  }
}

/** The kernels' delay-loop values kept from calibrating boots (delay-calibration.ts), in the folder's root. */
export const CALIBRATION_FILE = "calibration.json";

export function readJson<T>(file: string): T | undefined {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw e;
  }
  try {
    return JSON.parse(text) as T;
  } catch (e) {
    throw new UmlfleetError("UMLFLEET_STATE_CORRUPT", `cannot parse ${file}`, { file }, { cause: e });
  }
}

/**
 * Write a file atomically: temp file in the same folder, fsync, rename.
 * `durable: false` skips the fsync, for files that mean nothing after a host
 * crash (a lock's owner): readers still never see a partial file.
 */
export function writeFileAtomic(
  file: string,
  data: string | Buffer,
  mode = 0o600,
  { durable = true }: { durable?: boolean } = {},
): void {
  mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
  const tmp = `${file}.tmp-${process.pid}-${Math.random().toString(36).slice(2)}`;
  const fd = openSync(tmp, "wx", mode);
  try {
    try {
      writeSync(fd, typeof data === "string" ? Buffer.from(data) : data);
      if (durable) fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, file);
  } catch (e) {
    // A full or read-only folder: the old file stays whole, and no temp is left.
    rmSync(tmp, { force: true });
    throw stateWriteError(e, file);
  }
}

/**
 * A write into the state folder that failed for want of space or of write
 * access, as a typed error naming the file; any other error as it is.
 */
export function stateWriteError(e: unknown, file: string): Error {
  let code = (e as NodeJS.ErrnoException | undefined)?.code;
  let path = (e as NodeJS.ErrnoException | undefined)?.path ?? file;
  // A helper command (rm, mkfifo) that failed the same way: its message names the file.
  const tool = e instanceof UmlfleetError && e.code === "UMLFLEET_COMMAND_FAILED" ? e.message : "";
  const said = /'([^']+)': (Read-only file system|No space left on device)/.exec(tool);
  if (said) [code, path] = [said[2]!.startsWith("Read") ? "EROFS" : "ENOSPC", said[1]!];
  else if (e instanceof UmlfleetError) return e;
  if (!(e instanceof Error)) return new Error(String(e));
  if (!code || !["ENOSPC", "EDQUOT", "EROFS", "EACCES", "EPERM"].includes(code)) return e;
  return new UmlfleetError(
    "UMLFLEET_STATE_WRITE_FAILED",
    `cannot write ${path} in the state folder (${code}: ${e.message}); nothing was recorded for it. ` +
      "Free space or make the folder writable, then run the operation again",
    { file: path, errno: code },
    { cause: e },
  );
}

/** `durable: false`: no fsync (see writeFileAtomic), for a record a durable write follows or that means nothing after a host crash. */
export function writeJson(file: string, value: unknown, opts: { durable?: boolean } = {}): void {
  writeFileAtomic(file, `${JSON.stringify(value, null, 2)}\n`, 0o600, opts);
}

/**
 * writeFileAtomic off the event loop: the write and the fsync run in libuv's
 * thread pool. For the boot path, where 32 guests booting at once would
 * otherwise queue their fsyncs (10-50 ms each on ext3) on the one thread that
 * also watches every guest's console.
 */
export async function writeFileAtomicAsync(file: string, data: string | Buffer, mode = 0o600): Promise<void> {
  await fsp.mkdir(dirname(file), { recursive: true, mode: 0o700 });
  const tmp = `${file}.tmp-${process.pid}-${Math.random().toString(36).slice(2)}`;
  const fh = await fsp.open(tmp, "wx", mode);
  try {
    try {
      await fh.writeFile(data);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await fsp.rename(tmp, file);
  } catch (e) {
    await fsp.rm(tmp, { force: true });
    throw stateWriteError(e, file);
  }
}

export function writeJsonAsync(file: string, value: unknown): Promise<void> {
  return writeFileAtomicAsync(file, `${JSON.stringify(value, null, 2)}\n`);
}

/**
 * A lock shared by every process using the state folder: a folder created with
 * mkdir (atomic), holding its owner's identity. A lock whose owner died is
 * taken over. Waits up to `timeoutMs` (default 120 s), then throws
 * UMLFLEET_LOCK_TIMEOUT; stops waiting when `signal` aborts (its error).
 */
export async function withLock<T>(
  state: StateDir,
  key: string,
  fn: () => Promise<T>,
  timeoutMs = 120_000,
  signal?: AbortSignal,
): Promise<T> {
  const dir = state.lockDir(key);
  const ownerFile = join(dir, "owner.json");
  const me = identify(process.pid)!;
  const deadline = performance.now() + timeoutMs;
  let delay = 5;
  for (;;) {
    try {
      mkdirSync(dirname(dir), { recursive: true, mode: 0o700 });
      mkdirSync(dir);
      try {
        // No fsync: a lock means nothing after a host crash (its owner is gone too).
        writeFileAtomic(ownerFile, `${JSON.stringify(me)}\n`, 0o600, { durable: false });
      } catch (e) {
        // A full or read-only folder: a lock without its owner would hold everyone off.
        rmSync(dir, { recursive: true, force: true });
        throw e;
      }
      break;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e;
      const owner = readJsonQuiet<ProcessIdentity>(ownerFile);
      // The owner may be between mkdir and writing owner.json: only a recorded, dead owner is stale.
      if (owner && !isAlive(owner)) {
        rmSync(dir, { recursive: true, force: true });
        continue;
      }
      throwIfAborted(signal, `waiting for lock ${key}`);
      if (performance.now() > deadline) {
        throw new UmlfleetError("UMLFLEET_LOCK_TIMEOUT", `lock ${key} still held after ${timeoutMs} ms`, {
          key,
          owner,
        });
      }
      await sleep(delay);
      delay = Math.min(delay * 2, 100);
    }
  }
  try {
    return await fn();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function readJsonQuiet<T>(file: string): T | undefined {
  try {
    return readJson<T>(file);
  } catch {
    return undefined;
  }
}
