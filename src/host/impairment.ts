import { existsSync, mkdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import { UmlfleetError } from "../errors";
import { identify, isAlive, killGroup, run, signalGroup, waitFor, type ProcessIdentity } from "../process";
import type { ImpairmentSpec } from "../spec";
import { handOver, type HostIds } from "./host-users";
import { SECCOMP_FD } from "./seccomp";
import {
  binaryFiles,
  findOnPath,
  plugFiles,
  readSandboxPid,
  SANDBOX_BIN,
  SETPRIV_BIN,
  spawnSandboxed,
  switchSandboxArgv,
} from "./sandbox";
import { applyImpairment } from "./wirefilter-mgmt";

/**
 * Link impairment: an impaired NIC is plugged into a wirefilter (vde2)
 * instead of its switch. The wirefilter's one side is the switch, the other a
 * point-to-point socket (vdeplug's ptp://) in the instance's links folder,
 * which the guest's sandbox binds read-write at every boot (so a running
 * guest can be re-plugged through a wirefilter without a restart). Each
 * wirefilter runs as pid 1 of its own sandbox like a switch (sandbox.ts),
 * seeing only the switch folder, the links folder and its management folder;
 * the host speaks its management socket (wirefilter-mgmt.ts) in that last
 * folder, which no guest can reach.
 */
export interface WirefilterRecord {
  /** The sandbox's outer process group (bwrap). */
  process: ProcessIdentity;
  /** wirefilter itself, pid 1 of its sandbox. */
  sandbox: ProcessIdentity;
}

/** The folder of an instance's NIC-side sockets: guest-writable, removed only with rm -r. */
export const linksDir = (instanceDir: string) => join(instanceDir, "links");
/** NIC `index`'s point-to-point socket (the wirefilter binds it; the guest's NIC connects). */
export const nicPlug = (instanceDir: string, index: number) => join(linksDir(instanceDir), `nic${index}.ptp`);
const wfDir = (instanceDir: string) => join(instanceDir, "wf");
const mgmtDir = (instanceDir: string, index: number) => join(wfDir(instanceDir), `nic${index}`);
/** NIC `index`'s wirefilter management socket. */
export const mgmtSocket = (instanceDir: string, index: number) => join(mgmtDir(instanceDir, index), "mgmt");

/** Start NIC `index`'s wirefilter between `switchDir` and the NIC's plug, set to `imp`. */
export async function startWirefilter(
  instanceDir: string,
  index: number,
  switchDir: string,
  imp: ImpairmentSpec | undefined,
  opts: {
    signal?: AbortSignal;
    /** A runAs guest's uid and gid: the wirefilter runs as them. */
    ids?: HostIds;
    /** The compiled seccomp filter (seccomp.ts seccompFile), when the host applies one. */
    seccomp?: string;
  } = {},
): Promise<WirefilterRecord> {
  const { signal, ids, seccomp } = opts;
  let bin: string;
  try {
    bin = findOnPath("wirefilter");
  } catch {
    throw new UmlfleetError("UMLFLEET_SWITCH_FAILED", "wirefilter is not on PATH (apt-get install vde2)", {
      field: `/nics/${index}/impairment`,
    });
  }
  const links = linksDir(instanceDir);
  const mgmt = mgmtDir(instanceDir, index);
  mkdirSync(links, { recursive: true, mode: 0o700 });
  mkdirSync(wfDir(instanceDir), { recursive: true, mode: 0o700 });
  rmSync(mgmt, { recursive: true, force: true }); // host-only: no guest writes it
  mkdirSync(mgmt, { mode: 0o700 });
  // A guest run as another uid (runAs) connects to the NIC's socket only if
  // that uid made it (vdeplug makes ptp sockets 0700): the wirefilter runs as it.
  handOver([mgmt], ids);
  // A direct entry of the links folder: unlink acts on the name, never follows it.
  rmSync(nicPlug(instanceDir, index), { force: true });
  const info = join(wfDir(instanceDir), `nic${index}.json`);
  const stdin = join(wfDir(instanceDir), `nic${index}.stdin`);
  rmSync(info, { force: true });
  rmSync(stdin, { force: true });
  await run("mkfifo", ["-m", "600", stdin], { timeoutMs: 60_000, signal });
  // -v splits at the first ':': the switch folder must come first, the ptp URL second.
  const argv = [
    SANDBOX_BIN,
    ...switchSandboxArgv(switchDir, [...plugFiles(bin), ...(ids ? binaryFiles(SETPRIV_BIN) : [])], 3, {
      extraDirs: [links, mgmt],
      ...(ids ? { runAs: ids } : {}),
      ...(seccomp ? { seccompFd: SECCOMP_FD } : {}),
    }),
    ...(ids
      ? [SETPRIV_BIN, `--reuid=${ids.uid}`, `--regid=${ids.gid}`, "--clear-groups", "--inh-caps=-all", "--"]
      : []),
    bin,
    "-v",
    `${switchDir}:ptp://${nicPlug(instanceDir, index)}`,
    "-M",
    mgmtSocket(instanceDir, index),
  ];
  const log = join(wfDir(instanceDir), `nic${index}.log`);
  const outer = spawnSandboxed(argv, { stdin, log, info, ...(seccomp ? { seccomp } : {}) });
  const wf = await waitFor(
    () => {
      if (outer && !isAlive(outer)) return null;
      if (!existsSync(mgmtSocket(instanceDir, index))) return undefined;
      const pid = readSandboxPid(info);
      return pid ? identify(pid) : undefined;
    },
    10_000,
    25,
    signal,
  );
  if (!outer || !wf) {
    if (outer) await killGroup(outer);
    throw new UmlfleetError(
      "UMLFLEET_SWITCH_FAILED",
      `/nics/${index}/impairment: the NIC's wirefilter did not come up (log: ${log})`,
      { field: `/nics/${index}/impairment` },
    );
  }
  const rec = { process: outer, sandbox: wf };
  try {
    await applyImpairment(mgmtSocket(instanceDir, index), imp);
  } catch (e) {
    await stopWirefilter(rec);
    throw e;
  }
  return rec;
}

/** Set a running wirefilter to `imp` (every setting; none clears them). */
export function setImpairment(instanceDir: string, index: number, imp: ImpairmentSpec | undefined) {
  return applyImpairment(mgmtSocket(instanceDir, index), imp);
}

export function wirefilterRuns(r: WirefilterRecord | undefined): boolean {
  return !!r && isAlive(r.sandbox);
}

/** SIGTERM lets wirefilter remove its sockets; then its sandbox goes for good. */
export async function stopWirefilter(r: WirefilterRecord): Promise<void> {
  if (isAlive(r.sandbox)) {
    signalGroup(r.sandbox, "SIGTERM");
    if (!(await waitFor(() => !isAlive(r.sandbox), 3_000))) await killGroup(r.sandbox);
  }
  await killGroup(r.process);
}

/** Stop every wirefilter of an instance and remove its management files (host-only). */
export async function stopWirefilters(
  instanceDir: string,
  wirefilters: Record<string, WirefilterRecord> | undefined,
): Promise<void> {
  for (const w of Object.values(wirefilters ?? {})) await stopWirefilter(w);
  rmSync(wfDir(instanceDir), { recursive: true, force: true });
}
