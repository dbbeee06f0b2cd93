import { execFileSync, spawn } from "node:child_process";
import { existsSync, readdirSync, readFileSync, realpathSync, statSync } from "node:fs";
import { join } from "node:path";
import { identify, run, type ProcessIdentity } from "../process";
import { shellQuote } from "./console-log";
import { SECCOMP_FD } from "./seccomp";

/**
 * bubblewrap confinement for one UML process. hostfs= is not a boundary
 * (shared/UML.md: `-o /../../../etc` escapes it), so the boundary is a private
 * mount namespace whose root is an empty tmpfs holding only: the kernel and its
 * libraries (read-only), the instance's own vm/ folder (at its host path, so
 * socket and COW paths mean the same inside and out), the bases its overlays
 * need (read-only), the switch folders of its networks, and its declared
 * shares under `hostfsRoot`, bound from fds the host opened and checked.
 * The process has no capabilities and its own pid, IPC and UTS namespaces.
 *
 * Whatever the UML process can see, root in the guest can change through
 * hostfs: its vm/ folder, its switch folders, its read-write shares. The host
 * therefore never walks a path through a folder the guest can write (docs/security.md):
 * it only makes and removes direct entries of such folders, with calls that
 * do not follow a link in the last component, removes such trees only with
 * `rm -r` (which does not follow links, even raced), binds shares by fd, and
 * speaks mconsole from inside the guest's own mount namespace.
 */
export interface SandboxPlan {
  kernel: string;
  /** Read-write, bound at the same path. */
  vmDir: string;
  /** Read-only files bound at the same path (base images). */
  readOnlyPaths: string[];
  /**
   * Read-write folders bound at the same path: the switch folders of the
   * guest's networks. libvdeplug binds the client's data socket next to the
   * switch's ctl and sends the switch that path; vde_switch makes each port's
   * socket in its own folder and the client connects to it by that path. So a
   * running guest can be given NICs only on networks it booted with.
   */
  readWritePaths: string[];
  /** Shares as fds the guest's process holds (open directories, checked by shares.ts). */
  shares: { name: string; fd: number; readOnly: boolean }[];
  hostfsRoot: string;
  /** bwrap writes `{"child-pid": <the sandbox's pid 1>}` here (an fd the launcher opens). */
  infoFd: number;
  /** The host uid and gid the kernel runs as (an instance's runAs): setpriv drops to them in the sandbox. */
  runAs?: { uid: number; gid: number };
  /** bwrap loads the seccomp filter (seccomp.ts) from this fd, after its own set-up. */
  seccompFd?: number;
}

/** Switches uid and gid inside the sandbox, then execs the kernel (the sandbox's pid 1 stays the kernel). */
export const SETPRIV_BIN = "/usr/bin/setpriv";

export const SANDBOX_BIN = "/usr/bin/bwrap";

/** A host path bound read-only into the sandbox at `sandbox`. */
export interface Bind {
  host: string;
  sandbox: string;
}

export function sandboxArgv(plan: SandboxPlan, kernelFiles: Bind[]): string[] {
  const ro = (p: string) => ["--ro-bind", p, p];
  const args = [
    // runAs: no user namespace, whose map would hold only our own uid and
    // refuse setpriv the switch; the runAs uid is then the host's own.
    ...(plan.runAs
      ? ["--unshare-ipc", "--unshare-pid", "--unshare-uts", "--unshare-cgroup-try"]
      : ["--unshare-all"]),
    // UML is pid 1 of its namespace: when it dies, however it dies, the
    // kernel kills every other process in it (UML's helpers, the guest's own
    // processes), so nothing of a killed guest lingers holding its disks and
    // its console pipe. (bwrap's own pid 1 would wait for them all: measured.)
    "--as-pid-1",
    // The host's network namespace: uml_mconsole receives UML's replies on a
    // socket only its own namespace can reach (with a private one, commands ran
    // but every reply was lost: measured). The guest gets no host network from
    // this; it reaches only the switches bound below.
    "--share-net",
    "--cap-drop",
    "ALL",
    // Only to become runAs: setpriv's setuid to a non-root uid clears every capability before the kernel runs.
    ...(plan.runAs ? ["--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID"] : []),
    "--clearenv",
    "--setenv",
    "TMPDIR",
    "/tmp",
    "--setenv",
    "PATH",
    "/usr/bin",
    "--dev",
    "/dev",
    "--proc",
    "/proc",
    // Read-only: the guest's root reaches this /proc through hostfs, and
    // through a writable /proc/1/mem it rewrote its kernel process's memory on
    // the host (measured: argv changed as the host saw it), which is running
    // host code. UML only reads /proc (cpuinfo, <pid>/stat).
    "--remount-ro",
    "/proc",
    // Guest RAM is a file in $TMPDIR that must allow exec: a private tmpfs
    // (writable by the runAs uid too: nothing else of the host is in it).
    ...(plan.runAs ? ["--perms", "1777"] : []),
    "--tmpfs",
    "/tmp",
    // bwrap makes a bound path's missing folders with the host folders'
    // modes (/root 0700): the runAs uid could not reach the kernel under it.
    ...(plan.runAs
      ? openAncestors([
          plan.kernel,
          ...kernelFiles.map((b) => b.sandbox),
          plan.vmDir,
          ...plan.readOnlyPaths,
          ...plan.readWritePaths,
          plan.hostfsRoot,
        ])
      : []),
    ...ro(plan.kernel),
    ...kernelFiles.flatMap((b) => ["--ro-bind", b.host, b.sandbox]),
    "--bind",
    plan.vmDir,
    plan.vmDir,
    ...plan.readOnlyPaths.flatMap(ro),
    ...plan.readWritePaths.flatMap((p) => ["--bind", p, p]),
    "--dir",
    plan.hostfsRoot,
    "--info-fd",
    String(plan.infoFd),
    ...(plan.seccompFd !== undefined ? ["--seccomp", String(plan.seccompFd)] : []),
  ];
  for (const s of plan.shares) {
    args.push(s.readOnly ? "--ro-bind-fd" : "--bind-fd", String(s.fd), `${plan.hostfsRoot}/${s.name}`);
  }
  args.push("--chdir", "/", "--");
  if (plan.runAs) {
    const { uid, gid } = plan.runAs;
    args.push(SETPRIV_BIN, `--reuid=${uid}`, `--regid=${gid}`, "--clear-groups", "--inh-caps=-all", "--");
  }
  return args;
}

/** `--perms 0755 --dir` for every folder above a bound path, outermost first (sandbox folders: mount points only). */
function openAncestors(bound: readonly string[]): string[] {
  const dirs = new Set<string>();
  for (const p of bound) {
    const parts = p.split("/").filter(Boolean);
    for (let i = 1; i < parts.length; i++) dirs.add(`/${parts.slice(0, i).join("/")}`);
  }
  return [...dirs]
    .sort((a, b) => a.split("/").length - b.split("/").length || (a < b ? -1 : 1))
    .flatMap((d) => ["--perms", "0755", "--dir", d]);
}

/**
 * Debian's UML kernel links libvdeplug (vdeplug4) statically, and libvdeplug
 * dlopen()s the "vde" transport plugin from /lib/<arch>/vdeplug at run time
 * (on the host /lib is /usr/lib; in the sandbox it must be bound at /lib), and
 * needs /usr/bin/vde_plug with its libraries. Without them vde_open fails with
 * ENOENT and the 6.1 kernel then panics ("Segfault with no mm"), or the NIC
 * comes up and carries nothing. Found by bisecting the sandbox's binds (measured).
 * uml_mconsole is there for the host: it runs inside the guest's mount
 * namespace (mconsole.ts), so a link the guest plants cannot send it elsewhere.
 */
const SANDBOX_HELPERS = ["/usr/bin/vde_plug", "/usr/bin/uml_mconsole", SETPRIV_BIN];

export function vdePlugins(): Bind[] {
  for (const root of ["/usr/lib", "/lib"]) {
    if (!existsSync(root)) continue;
    for (const arch of readdirSync(root)) {
      const host = join(root, arch, "vdeplug");
      if (existsSync(join(host, "libvdeplug_vde.so")))
        return [{ host: realpathSync(host), sandbox: join("/lib", arch, "vdeplug") }];
    }
  }
  return [];
}

/**
 * What a kernel binary needs in its sandbox, read-only: its shared libraries,
 * the vdeplug plugin folder, vde_plug, and their libraries (from ldd, symlinks
 * and their targets alike). Cached per kernel binary: ldd is three blocking
 * process runs (~60-100 ms) and the plugin lookup scans /usr/lib.
 */
export function kernelFiles(kernel: string, cache: Map<string, Bind[]>): Bind[] {
  const st = statSync(kernel);
  const key = `${kernel}\0${st.mtimeMs}\0${st.size}`;
  const hit = cache.get(key);
  if (hit) return hit;
  const plugins = vdePlugins();
  const libs = new Set<string>();
  for (const file of [kernel, ...plugins.map((p) => join(p.host, "libvdeplug_vde.so"))]) {
    for (const lib of lddOf(file)) libs.add(lib);
  }
  for (const helper of SANDBOX_HELPERS.filter((f) => existsSync(f))) {
    libs.add(helper);
    for (const lib of lddOf(helper)) libs.add(lib);
  }
  const list = [...[...libs].sort().map((path) => ({ host: path, sandbox: path })), ...plugins];
  cache.set(key, list);
  return list;
}

function lddOf(file: string): string[] {
  let out = "";
  try {
    out = execFileSync("ldd", [file], { encoding: "utf8", timeout: 10_000 });
  } catch {
    // ldd exits non-zero for static binaries ("not a dynamic executable").
  }
  const libs = new Set<string>();
  for (const m of out.matchAll(/(\/[^\s()]+)/g)) {
    const p = m[1]!;
    libs.add(p);
    try {
      libs.add(realpathSync(p));
    } catch {
      /* a listed path that vanished: ldd would have failed too */
    }
  }
  return [...libs];
}

/** What a helper binary (vde_switch) needs in a sandbox: itself and its libraries. */
export function binaryFiles(binary: string): Bind[] {
  return [...new Set([binary, ...lddOf(binary)])].sort().map((path) => ({ host: path, sandbox: path }));
}

/**
 * bubblewrap for one vde_switch. Guests can write their switch's folder (for
 * libvdeplug's client sockets), and vde_switch acts on paths there as the
 * host user: for each port it binds a socket, then chmods and chowns it by
 * path (measured with strace). A guest that swapped that socket for a link
 * in between would have a host file chmod'ed. In this sandbox the switch sees
 * only its own folder and its libraries, so a link leads nowhere. Its own
 * namespaces, no network (unix sockets bound to paths need none), no
 * capabilities, and vde_switch as pid 1: it goes with its namespace.
 */
export function switchSandboxArgv(
  switchDir: string,
  files: Bind[],
  infoFd: number | undefined,
  opts: {
    hostLink?: boolean;
    guestUids?: boolean;
    extraDirs?: readonly string[];
    /** The program drops to this uid with setpriv (a runAs guest's wirefilter); it needs the caps to. */
    runAs?: { uid: number; gid: number };
    /** bwrap loads the seccomp filter (seccomp.ts) from this fd. */
    seccompFd?: number;
  } = {},
): string[] {
  // Guests run as other uids (runAs, root only): for each port vde_switch
  // checks the client's socket with access(2) and chowns the port's socket to
  // the client's uid (measured with strace). Root's switch therefore keeps
  // CAP_DAC_OVERRIDE, CAP_CHOWN and CAP_FOWNER, in no user namespace (whose
  // map would hold no guest uid): they reach only what its mount namespace
  // holds, its own folder (the libraries are read-only).
  const forUids = opts.guestUids ?? process.getuid?.() === 0;
  return [
    ...(forUids
      ? [
          "--unshare-ipc",
          "--unshare-pid",
          "--unshare-uts",
          "--unshare-cgroup-try",
          ...(opts.hostLink ? [] : ["--unshare-net"]),
        ]
      : ["--unshare-all"]),
    // A host-linked switch attaches to a persistent tap in the host's network
    // namespace (TUNSETIFF looks the tap up in the opener's namespace), through
    // /dev/net/tun. Attaching to a tap its user owns needs no capability
    // (drivers/net/tun.c tun_not_capable), so it keeps none; every other
    // switch keeps no network at all (docs/security.md).
    ...(opts.hostLink ? ["--share-net"] : []),
    "--as-pid-1",
    "--cap-drop",
    "ALL",
    ...(forUids
      ? ["--cap-add", "CAP_DAC_OVERRIDE", "--cap-add", "CAP_CHOWN", "--cap-add", "CAP_FOWNER"]
      : []),
    ...(opts.runAs ? ["--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID"] : []),
    "--clearenv",
    "--dev",
    "/dev",
    ...(opts.hostLink ? ["--dev-bind", "/dev/net/tun", "/dev/net/tun"] : []),
    // A program that drops to another uid must reach what is bound (see sandboxArgv).
    ...(opts.runAs
      ? openAncestors([...files.map((b) => b.sandbox), switchDir, ...(opts.extraDirs ?? [])])
      : []),
    ...files.flatMap((b) => ["--ro-bind", b.host, b.sandbox]),
    "--bind",
    switchDir,
    switchDir,
    // A wirefilter's other side (a guest's links folder) and its management folder (impairment.ts).
    ...(opts.extraDirs ?? []).flatMap((d) => ["--bind", d, d]),
    ...(infoFd !== undefined ? ["--info-fd", String(infoFd)] : []),
    ...(opts.seccompFd !== undefined ? ["--seccomp", String(opts.seccompFd)] : []),
    "--chdir",
    "/",
    "--",
  ];
}

/**
 * What `vde_plug` needs in a sandbox of the switch's kind (capture.ts): itself,
 * the vdeplug plugin folder at /lib/<arch>/vdeplug, and their libraries.
 */
export function plugFiles(plug = "/usr/bin/vde_plug"): Bind[] {
  const plugins = vdePlugins();
  const libs = new Set<string>([plug, ...lddOf(plug)]);
  for (const p of plugins) for (const lib of lddOf(join(p.host, "libvdeplug_vde.so"))) libs.add(lib);
  return [...[...libs].sort().map((path) => ({ host: path, sandbox: path })), ...plugins];
}

/**
 * Remove a folder a guest can write (its vm/ folder, a switch folder). The
 * guest may have planted links, or may swap a folder for a link while the
 * removal runs; Node's recursive rm walks paths and would follow such a swap.
 * coreutils' `rm -r` walks by directory fds and never follows a link
 * (docs/security.md), and `--one-file-system` keeps it off anything mounted
 * below.
 */
export async function removeTree(path: string): Promise<void> {
  await run("rm", ["-rf", "--one-file-system", "--", path], { timeoutMs: 60_000 });
}

/** The sandbox's pid 1 from bwrap's --info-fd report, once it is written whole. */
export function readSandboxPid(infoFile: string): number | undefined {
  let text: string;
  try {
    text = readFileSync(infoFile, "utf8");
  } catch {
    return undefined;
  }
  try {
    const pid = (JSON.parse(text) as { "child-pid"?: unknown })["child-pid"];
    return typeof pid === "number" && pid > 1 ? pid : undefined;
  } catch {
    return undefined; // not yet complete
  }
}

/** The first `name` on PATH (as a shell finds it), with links resolved; throws when there is none. */
export function findOnPath(name: string, env: NodeJS.ProcessEnv = process.env): string {
  for (const dir of (env.PATH ?? "/usr/bin:/bin").split(":")) {
    if (!dir) continue;
    const p = join(dir, name);
    try {
      if (statSync(p).isFile()) return realpathSync(p);
    } catch {
      /* not here */
    }
  }
  throw new Error(`${name} is not on PATH`);
}

/**
 * Start a helper's sandbox (`argv` is bwrap's) detached from us, in the
 * foreground as its sandbox's pid 1 (a daemon would leave it), with a clean
 * environment. Its console reads a FIFO it holds open itself, so it never sees
 * EOF; its output is appended to `log`; bwrap reports its pid 1 on fd 3 into
 * `info`. Returns the outer process group's leader.
 */
export function spawnSandboxed(
  argv: readonly string[],
  files: { stdin: string; log: string; info: string; seccomp?: string },
): ProcessIdentity | null {
  const q = shellQuote;
  // The seccomp filter (seccomp.ts), when `argv` has bwrap read it from SECCOMP_FD.
  const filter = files.seccomp ? ` ${SECCOMP_FD}<${q(files.seccomp)}` : "";
  const line = `exec env -i ${argv.map(q).join(" ")} 0<>${q(files.stdin)} >>${q(files.log)} 2>&1 3>${q(files.info)}${filter}`;
  const child = spawn("bash", ["-c", line], {
    detached: true,
    stdio: "ignore",
    env: { PATH: process.env.PATH ?? "/usr/bin:/bin" },
  });
  child.unref();
  return child.pid ? identify(child.pid) : null;
}
