import { spawn } from "node:child_process";
import {
  closeSync,
  constants,
  existsSync,
  lstatSync,
  openSync,
  readdirSync,
  readlinkSync,
  readSync,
  realpathSync,
  statSync,
} from "node:fs";
import { basename, dirname, join } from "node:path";
import { UmlfleetError } from "../errors";
import { under } from "../feature-checks";
import { isPcap } from "../pcap";
import { packageRoot } from "../validation";
import type { CaptureSpec, ShareSpec } from "../spec";
import { identify, isAlive, killGroup, waitFor, type ProcessIdentity } from "../process";

/**
 * Capture of a network to a pcap file on the host, without root. The
 * switch forwards like a hub while captured, and a writer process
 * (capture-writer.ts) plugs vde_plug into it and writes each frame once,
 * as a pcap record, to a file the host opened here.
 *
 * Chosen over vde_switch's pdump plugin, measured on vde2 2.3.2: pdump
 * records a frame once on the way in and again for every port it leaves by
 * (10 broadcast frames on a 3-port switch gave 30 records), writes a header
 * claiming a 96-byte snapshot length while records are whole, and writes
 * from inside the switch, which would then need a host folder bound into
 * its sandbox. The writer costs a Node process per captured network.
 */
export const DEFAULT_CAPTURE_MIB = 64;
/** The compiled writer (also when this module runs from source, under a test runner). */
const WRITER = join(packageRoot(), "dist", "src", "host", "capture-writer.js");

/** A capture checked on the host: the real file it will write. */
export interface CheckedCapture {
  /** The real path of the pcap file (its folder resolved). */
  file: string;
  maxBytes: number;
}

/**
 * Check a capture before anything is made: its folder exists and, with links
 * resolved, still lies under an allowed capture folder (`roots`), not in or
 * over the state folder and not in or over any share (a guest could swap the
 * file for a link, or read another network's traffic), and no other network
 * captures to it. An existing file there must be a regular file. Throws
 * naming /capture/path.
 */
export function checkCapture(
  network: string,
  spec: CaptureSpec,
  ctx: {
    stateRoot: string;
    roots: readonly string[];
    shares: readonly { instance: string; shares: readonly ShareSpec[] }[];
    others: readonly { network: string; capture?: CaptureSpec }[];
  },
): CheckedCapture {
  const field = "/capture/path";
  const fail = (
    why: string,
    code: "UMLFLEET_INVALID_SPEC" | "UMLFLEET_NOT_FOUND" | "UMLFLEET_CONFLICT" = "UMLFLEET_INVALID_SPEC",
  ) =>
    new UmlfleetError(code, `network/${network}${field}: ${JSON.stringify(spec.path)} ${why}`, {
      field,
      value: spec.path,
    });
  const folder = dirname(spec.path);
  if (!statSync(folder, { throwIfNoEntry: false })?.isDirectory())
    throw fail(`needs an existing folder (${folder})`, "UMLFLEET_NOT_FOUND");
  const dir = realpathSync(folder);
  const file = join(dir, basename(spec.path));
  const roots = ctx.roots.map(realOrSelf);
  if (!roots.some((r) => under(file, r)))
    throw fail(
      `lies, with links resolved, in ${dir}: outside the allowed capture folders (${roots.join(", ")})`,
    );
  const state = realOrSelf(ctx.stateRoot);
  if (under(file, state)) throw fail(`lies in umlfleet's state folder ${state}, where guests write`);
  for (const o of ctx.shares)
    for (const sh of o.shares) {
      const p = realOrSelf(sh.hostPath);
      if (under(file, p))
        throw fail(`lies in instance ${o.instance}'s share ${p}: its guest could change or read it`);
    }
  const other = ctx.others.find((o) => o.network !== network && o.capture && sameFile(o.capture.path, file));
  if (other) throw fail(`is network ${other.network}'s capture`, "UMLFLEET_CONFLICT");
  const st = lstatSync(file, { throwIfNoEntry: false });
  if (st && !st.isFile()) throw fail("exists and is not a regular file");
  return { file, maxBytes: (spec.maxSizeMiB ?? DEFAULT_CAPTURE_MIB) * 1024 * 1024 };
}

/** Refuse shares that hold a network's capture file (the mirror of checkCapture). */
export function checkSharesAgainstCaptures(
  instance: string,
  shares: readonly ShareSpec[],
  captures: readonly { network: string; capture?: CaptureSpec }[],
): void {
  shares.forEach((sh, i) => {
    const p = realOrSelf(sh.hostPath);
    for (const c of captures) {
      if (!c.capture) continue;
      const file = join(realOrSelf(dirname(c.capture.path)), basename(c.capture.path));
      if (under(file, p))
        throw new UmlfleetError(
          "UMLFLEET_CONFLICT",
          `instance ${instance} /shares/${i}/hostPath: ${JSON.stringify(sh.hostPath)} holds network ${c.network}'s capture ${file}`,
          { field: `/shares/${i}/hostPath`, value: sh.hostPath },
        );
    }
  });
}

/**
 * Open the capture file and start its writer, detached. `append`: keep what
 * an earlier run of this network wrote (a switch started again after it
 * died); otherwise the file starts anew. A non-empty file that is not a
 * pcap is never overwritten. Resolves once the writer's port is on the switch.
 */
export async function startCapture(
  network: string,
  c: CheckedCapture,
  switchDir: string,
  logFile: string,
  append: boolean,
  /** The compiled seccomp filter (seccomp.ts seccompFile) for its vde_plug's sandbox, when the host applies one. */
  seccomp?: string,
): Promise<ProcessIdentity> {
  const field = "/capture/path";
  const head = Buffer.alloc(4);
  if (existsSync(c.file)) {
    const fd = openSync(c.file, constants.O_RDONLY | constants.O_NOFOLLOW);
    const n = readSync(fd, head, 0, 4, 0);
    closeSync(fd);
    if (n > 0 && !isPcap(head.subarray(0, n)))
      throw new UmlfleetError(
        "UMLFLEET_CONFLICT",
        `network/${network}${field}: ${c.file} holds something other than a pcap capture; not overwritten`,
        { field, value: c.file },
      );
  }
  const fd = openSync(
    c.file,
    constants.O_WRONLY |
      constants.O_CREAT |
      constants.O_APPEND |
      constants.O_NOFOLLOW |
      (append ? 0 : constants.O_TRUNC),
    0o600,
  );
  const log = openSync(logFile, "a", 0o600);
  // Opened here, passed as an fd: the writer never opens a path (capture-writer.ts).
  const filter = seccomp ? openSync(seccomp, constants.O_RDONLY | constants.O_NOFOLLOW) : undefined;
  let pid: number | undefined;
  try {
    // The kernel's path of what was opened must be the checked file: a folder
    // swapped for a link between the check and the open fails closed.
    const opened = readlinkSync(`/proc/self/fd/${fd}`);
    if (opened !== c.file)
      throw new UmlfleetError(
        "UMLFLEET_CONFLICT",
        `network/${network}${field}: ${c.file} changed while it was opened (now ${opened}); nothing was written`,
        { field, value: c.file },
      );
    const startedMs = Date.now() - 1_000;
    const child = spawn(
      process.execPath,
      [
        WRITER,
        switchDir,
        String(c.maxBytes),
        append ? "append" : "new",
        ...(filter !== undefined ? ["seccomp"] : []),
      ],
      {
        detached: true,
        stdio: ["ignore", log, log, fd, ...(filter !== undefined ? [filter] : [])],
        env: { PATH: process.env.PATH ?? "/usr/bin:/bin" },
      },
    );
    child.unref();
    pid = child.pid;
    const writer = pid ? identify(pid) : null;
    // The writer's port: a socket made in the switch folder since it started (a port's
    // name may be reused). Direct entries, looked at with lstat: nothing there is followed.
    const plugged = writer
      ? await waitFor(() => {
          if (!isAlive(writer)) return false;
          const fresh = readdirSync(switchDir).some(
            (e) =>
              e !== "ctl" &&
              (lstatSync(join(switchDir, e), { throwIfNoEntry: false })?.ctimeMs ?? 0) >= startedMs,
          );
          return fresh ? true : undefined;
        }, 15_000)
      : false;
    if (!writer || !plugged) {
      if (writer) await killGroup(writer);
      throw new UmlfleetError(
        "UMLFLEET_SWITCH_FAILED",
        `network ${network}: the capture writer did not plug in (log: ${logFile})`,
        {
          network,
        },
      );
    }
    return writer;
  } finally {
    closeSync(fd);
    closeSync(log);
    if (filter !== undefined) closeSync(filter);
  }
}

/**
 * Stop a capture writer and its sandboxed vde_plug (one process group): every
 * record is written as it comes, so nothing is lost but frames in flight.
 */
export async function stopCapture(writer: ProcessIdentity | undefined): Promise<void> {
  if (writer) await killGroup(writer);
}

function sameFile(path: string, file: string): boolean {
  return join(realOrSelf(dirname(path)), basename(path)) === file;
}

function realOrSelf(p: string): string {
  try {
    return realpathSync(p);
  } catch {
    return p;
  }
}
