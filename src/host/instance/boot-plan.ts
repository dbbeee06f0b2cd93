import { statSync } from "node:fs";
import { withPresetLpj } from "../delay-calibration";
import { run } from "../../process";
import { nicDriverFor, umlArgv, type BootDisk, type BootNic, type NicDriver } from "../../uml/argv";
import { SETUP_SHARE } from "../guest-setup";
import { guestFds } from "../launcher";
import { SANDBOX_BIN, sandboxArgv, type Bind } from "../sandbox";
import { FD_CONTROL_IN, HOSTFS_ROOT, SWAP_UBD_INDEX, UMID, type Spec } from "./types";

/** Everything a boot needs, resolved on the host: no IO happens past this point in planBoot. */
export interface BootInput {
  spec: Spec;
  vmDir: string;
  /** Disks as linked into vm/ (`file`), with their bases (`backing`). */
  disks: BootDisk[];
  nics: BootNic[];
  /** The instance's links folder (impaired NICs' plugs, impairment.ts): bound at every boot, for re-plugs. */
  linksDir?: string;
  /** Checked shares, in order; each is handed over as an open fd. */
  shares: { name: string; guestPath: string; readOnly: boolean }[];
  /** The FIFO of a channel's end: control, ttyS0, ... */
  fifo: (channel: string, end: "in" | "out") => string;
  /** Read-only binds the kernel binary needs (sandbox.ts kernelFiles). */
  kernelFiles: Bind[];
  /** A staged set-up folder (guest-setup.ts) is handed over as an fd after the shares. */
  setup?: boolean;
  /** The host uid and gid the kernel runs as (host-users.ts), when runAs names one. */
  runAs?: { uid: number; gid: number };
  /** The fd bwrap reads the seccomp filter from (seccomp.ts), when the host applies one. */
  seccompFd?: number;
  /** The kernel's delay-loop calibration kept from an earlier boot (delay-calibration.ts). */
  lpj?: number;
}

export interface BootPlan {
  /** `bwrap <sandbox> -- <kernel> <words>`: one argv entry per word, never a shell string. */
  argv: string[];
  /** FIFOs the launcher opens read-write as fds 3, 4, ... (control, then each serial line's in/out). */
  fifos: string[];
  /** Where bwrap writes its report, and where each share's fd (then the set-up folder's) must land. */
  fds: { info: number; shares: number[] };
}

/**
 * The guest's argv and sandbox from a resolved spec: a pure function (unit-
 * tested), so what a boot runs is decided in one place.
 */
export function planBoot(b: BootInput): BootPlan {
  const s = b.spec;
  // The guest's fds from 3: control in/out, then each serial line's in/out
  // (FIFOs, opened read-write), then bwrap's info fd, then the shares.
  const fifos = [b.fifo("control", "in"), b.fifo("control", "out")];
  const serial = Array.from({ length: s.serialLines }, (_, line) => {
    const inFd = FD_CONTROL_IN + fifos.length;
    fifos.push(b.fifo(`ttyS${line}`, "in"), b.fifo(`ttyS${line}`, "out"));
    return { line, in: inFd, out: inFd + 1 };
  });
  // The console's input (umlfleet console), after the serial lines.
  const consoleIn = FD_CONTROL_IN + fifos.length;
  fifos.push(b.fifo("console", "in"));
  const bound = [...b.shares, ...(b.setup ? [{ name: SETUP_SHARE, readOnly: true }] : [])];
  const fds = guestFds(fifos.length, bound.length);
  const uml = umlArgv({
    kernel: s.kernel,
    memoryMiB: s.maxMemoryMiB ?? s.memoryMiB,
    umid: UMID,
    umlDir: b.vmDir,
    disks: b.disks,
    ...(s.swapDisk ? { swapDiskIndex: SWAP_UBD_INDEX } : {}),
    nics: b.nics,
    shares: b.shares,
    hostfsRoot: HOSTFS_ROOT,
    hostname: s.hostname ?? s.name,
    fds: { console: 1, consoleIn, control: { in: FD_CONTROL_IN, out: FD_CONTROL_IN + 1 }, serial },
    umlfleetInit: s.readiness === "marker",
    kernelArgs: withPresetLpj(s.kernelArgs ?? [], b.lpj),
    ...(b.setup ? { setup: SETUP_SHARE } : {}),
  });
  const sandbox = sandboxArgv(
    {
      kernel: s.kernel,
      vmDir: b.vmDir,
      readOnlyPaths: [...new Set(b.disks.flatMap((d) => (d.backing ? [d.backing] : [])))],
      readWritePaths: [...new Set(b.nics.map((n) => n.switchDir)), ...(b.linksDir ? [b.linksDir] : [])],
      shares: bound.map((sh, i) => ({ name: sh.name, fd: fds.pass[i]!, readOnly: sh.readOnly })),
      hostfsRoot: HOSTFS_ROOT,
      infoFd: fds.info,
      ...(b.runAs ? { runAs: b.runAs } : {}),
      ...(b.seccompFd !== undefined ? { seccompFd: b.seccompFd } : {}),
    },
    b.kernelFiles,
  );
  return { argv: [SANDBOX_BIN, ...sandbox, ...uml], fifos, fds: { info: fds.info, shares: fds.pass } };
}

/** Per kernel binary (path, mtime, size): its version, asked once. */
const versionCache = new Map<string, Promise<string>>();

/** The NIC driver for a kernel, from `<kernel> --version`, cached per binary. */
export async function kernelNicDriver(kernel: string): Promise<NicDriver> {
  const st = statSync(kernel);
  const key = `${kernel}\0${st.mtimeMs}\0${st.size}`;
  // The promise is cached: 32 guests booting at once ask once, not 32 times.
  let v = versionCache.get(key);
  if (!v) {
    v = run(kernel, ["--version"], { timeoutMs: 10_000, allowFailure: true, env: {} }).then(
      (r) => /(\d+\.\d+(\.\d+)?)/.exec(r.stdout)?.[1] ?? "0",
    );
    versionCache.set(key, v);
  }
  return nicDriverFor(await v);
}
