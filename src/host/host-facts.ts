import { dirname, join } from "node:path";
import { packageRoot } from "../validation";
import { run } from "../process";

/**
 * What a machine has of what umlfleet needs, as plain records: `umlfleet
 * doctor` prints them, and a target host's facts (over SSH, later) are the
 * same probes run there. So each probe is one argv (no host-side shell
 * strings; values travel as positional parameters) judged by its exit status
 * and output alone, and a `Runner` decides where it runs.
 */
export interface HostFact {
  /** Stable identifier, e.g. "vde_switch", "user-namespaces". */
  id: string;
  /** What was looked for, for a person. */
  what: string;
  /**
   * "host": needed wherever guests run. "toolchain": needed where `pulumi`
   * runs the program. "capacity": what the host offers (cores, memory, free
   * space), never missing.
   */
  scope: "host" | "toolchain" | "capacity";
  ok: boolean;
  /** What was found (a path, a version), or why the probe failed. */
  detail: string;
  /** The Debian package that provides it, if one does. */
  package?: string;
  /** The command that installs or enables it: set when `ok` is false. */
  fix?: string;
  /** Only some specs need it (a host link): missing, it is reported but does not fail doctor. */
  optional?: boolean;
}

export interface ProbeResult {
  /** null: the probe could not be started, or was killed. */
  exitCode: number | null;
  stdout: string;
  stderr: string;
}

/** Runs one probe's argv somewhere and reports how it ended; never throws. */
export type Runner = (argv: readonly string[]) => Promise<ProbeResult>;

/** Runs probes on this machine, with this process's environment (its PATH). */
export function localRunner(env: NodeJS.ProcessEnv = process.env, timeoutMs = 20_000): Runner {
  return async (argv) => {
    try {
      const r = await run(argv[0]!, argv.slice(1), { allowFailure: true, timeoutMs, env });
      return { exitCode: r.timedOut ? null : r.exitCode, stdout: r.stdout, stderr: r.stderr };
    } catch (e) {
      return { exitCode: null, stdout: "", stderr: e instanceof Error ? e.message : String(e) };
    }
  };
}

interface Probe {
  id: string;
  what: string;
  scope: HostFact["scope"];
  package?: string;
  /** Present when it exits 0; the detail is its first line of output (else of errors). */
  argv: string[];
  /** Default: install `package`. `pulumiDir`: the folder of the pulumi on PATH, "" without one. */
  fix?: (r: ProbeResult, pulumiDir: string) => string;
  optional?: boolean;
}

/** `sh -c SCRIPT sh ARGS...`: the script is fixed text, values are "$1"... */
const sh = (script: string, ...args: string[]) => ["sh", "-c", script, "sh", ...args];
const onPath = (name: string) => sh('command -v "$1"', name);
const executable = (path: string) => sh('test -x "$1" && test -f "$1" && echo "$1"', path);
const firstLine = (s: string) => s.trim().split("\n")[0] ?? "";
const ended = (r: ProbeResult) =>
  firstLine(r.stderr) || firstLine(r.stdout) || (r.exitCode === null ? "could not run" : "not found");
const BWRAP = "/usr/bin/bwrap";

/**
 * A plugin the CLI looks for beside the `pulumi` it runs (symlinks resolved)
 * or on PATH (shared/PULUMI.md; sdk/go/common/workspace/plugins.go).
 */
const besidePulumi = (name: string) =>
  sh(
    'p=$(command -v pulumi) && d=$(dirname "$(readlink -f "$p")") && test -x "$d/$1" && { echo "$d/$1"; exit 0; }; command -v "$1"',
    name,
  );

function aptInstall(pkg: string): string {
  const sudo = process.getuid?.() === 0 ? "" : "sudo ";
  return `${sudo}apt-get install -y ${pkg}`;
}

/** scripts/install-pulumi.sh of this umlfleet (shipped in the package as in a checkout). */
function installPulumi(binDir: string): string {
  return `${join(packageRoot(), "scripts", "install-pulumi.sh")} ${binDir}`;
}

/**
 * What a Host resource reports besides the needs (never missing: `ok` with
 * what was found): cores, memory, /dev/net/tun, free space where the state
 * folder is (or would be).
 */
function capacityProbes(stateDir: string | undefined): Probe[] {
  const fact = (id: string, what: string, argv: string[]): Probe => ({ id, what, scope: "capacity", argv });
  return [
    fact("cpu-cores", "processors this host offers", ["nproc"]),
    fact("memory", "memory (MemTotal, MiB)", sh("awk '/^MemTotal:/ { print int($2 / 1024) }' /proc/meminfo")),
    fact(
      "net-tun",
      "a usable /dev/net/tun (yes/no)",
      sh(
        "if test -c /dev/net/tun && test -r /dev/net/tun && test -w /dev/net/tun; then echo yes; else echo no; fi",
      ),
    ),
    ...(stateDir
      ? [
          fact(
            "state-disk-free",
            "free space in the state folder's file system (MiB)",
            // The folder may not exist yet: its nearest existing parent holds it.
            sh(
              'd=$1; while ! test -e "$d"; do d=$(dirname "$d"); done; df -Pk "$d" | awk \'NR == 2 { print int($4 / 1024) }\'',
              stateDir,
            ),
          ),
        ]
      : []),
  ];
}

function probes(): Probe[] {
  // The plugins go beside the pulumi on PATH; without one, in Pulumi's usual folder.
  const toolchainFix = (_r: ProbeResult, pulumiDir: string) =>
    pulumiDir
      ? installPulumi(pulumiDir)
      : `${installPulumi("~/.pulumi/bin")} && export PATH=~/.pulumi/bin:$PATH`;
  return [
    {
      // What an instance that names no kernel boots (src/validation.ts defaultKernel).
      id: "uml-kernel",
      what: "the default UML kernel ($UMLFLEET_KERNEL, else /usr/bin/linux.uml)",
      scope: "host",
      package: "user-mode-linux",
      argv: sh(
        'k=${UMLFLEET_KERNEL:-/usr/bin/linux.uml}; test -x "$k" && test -f "$k" && { echo "$k"; exit 0; }; test -z "$UMLFLEET_KERNEL" || echo "UMLFLEET_KERNEL=$k is not an executable file" >&2; exit 1',
      ),
      fix: (r) =>
        r.stderr.includes("UMLFLEET_KERNEL")
          ? "point UMLFLEET_KERNEL at a UML kernel (scripts/build-kernel.sh prints umlfleet's), or unset it"
          : aptInstall("user-mode-linux"),
    },
    {
      // Debian's 6.1 kernel mounts its root and then dies at the first guest
      // process on CPUs whose XSAVE area is larger than it restores (AMX;
      // docs/kernel.md). One boot tells: the host's / as a read-only hostfs
      // root, /bin/true as init; init exiting 0 is the success.
      id: "uml-kernel-runs-guests",
      what: "the default UML kernel runs a guest process on this CPU (one boot of /bin/true)",
      scope: "host",
      argv: sh(
        'k=${UMLFLEET_KERNEL:-/usr/bin/linux.uml}; test -x "$k" || { echo "no kernel at $k" >&2; exit 1; }; d=$(mktemp -d) || exit 1; trap \'rm -rf "$d"\' EXIT; out=$(TMPDIR="$d" timeout 15 "$k" mem=64M umid=probe uml_dir="$d" root=/dev/root rootfstype=hostfs rootflags=/ ro init=/bin/true con=null con0=null,fd:1 </dev/null 2>&1) 2>/dev/null; case "$out" in *"set fp regs failed"*) echo "$k cannot run guest processes on this CPU (its XSAVE area is larger than UML 6.1 restores, e.g. with AMX)" >&2; exit 1;; *"exitcode=0x00000000"*) echo "$k runs guest processes"; exit 0;; esac; echo "$k: the probe boot ended otherwise: $(printf %s "$out" | tail -n 1)" >&2; exit 1',
      ),
      fix: () =>
        "boot umlfleet's kernel, patched for it: export UMLFLEET_KERNEL=$(scripts/build-kernel.sh) (or a Kernel with `build: {}` in the program)",
    },
    {
      id: "uml_mconsole",
      what: "uml_mconsole (the mconsole client)",
      scope: "host",
      package: "uml-utilities",
      argv: onPath("uml_mconsole"),
    },
    {
      id: "vde_switch",
      what: "vde_switch (networks)",
      scope: "host",
      package: "vde2",
      argv: onPath("vde_switch"),
    },
    {
      id: "vde_plug",
      what: "vde_plug and the vde plugin UML's NICs load",
      scope: "host",
      package: "vde2",
      // The sandbox binds /usr/bin/vde_plug and <libdir>/vdeplug (src/host/sandbox.ts).
      argv: sh(
        'test -x /usr/bin/vde_plug || exit 1; for f in /usr/lib/*/vdeplug/libvdeplug_vde.so /lib/*/vdeplug/libvdeplug_vde.so; do test -f "$f" && { echo "/usr/bin/vde_plug, $f"; exit 0; }; done; echo "no libvdeplug_vde.so" >&2; exit 1',
      ),
    },
    {
      id: "bwrap",
      what: "bwrap (each guest's sandbox)",
      scope: "host",
      package: "bubblewrap",
      argv: executable(BWRAP),
    },
    {
      id: "user-namespaces",
      what: "an unprivileged user namespace (bwrap --unshare-user)",
      scope: "host",
      argv: sh(
        'test -x "$1" || { echo "needs bwrap" >&2; exit 1; }; "$1" --unshare-user --ro-bind / / /bin/true && echo yes',
        BWRAP,
      ),
      fix: () =>
        "allow user namespaces: sysctl -w kernel.unprivileged_userns_clone=1 user.max_user_namespaces=15000 (and install bubblewrap)",
    },
    {
      // UML maps guest RAM from a file in $TMPDIR, executable. The sandbox
      // gives each guest a private tmpfs at /tmp with TMPDIR=/tmp
      // (src/host/sandbox.ts), so that is where exec must work, whatever the
      // host's /tmp or /dev/shm mount options are.
      id: "guest-ram-exec",
      what: "an executable tmpfs for guest RAM in the sandbox (copies /bin/true there and runs it)",
      scope: "host",
      argv: sh(
        'test -x "$1" || { echo "needs bwrap" >&2; exit 1; }; "$1" --unshare-all --ro-bind / / --dev /dev --proc /proc --tmpfs /tmp --clearenv --setenv PATH /usr/bin:/bin --setenv TMPDIR /tmp -- /bin/sh -c \'cp /bin/true "$TMPDIR/exec-check" && "$TMPDIR/exec-check"\' && echo "tmpfs at /tmp allows exec"',
        BWRAP,
      ),
      fix: () =>
        "allow bwrap to mount an executable tmpfs (user namespaces enabled, no noexec policy on tmpfs mounts)",
    },
    {
      // A Network with hostInterface attaches its switch to a tap (src/host/host-link.ts):
      // umlfleet makes the tap with CAP_NET_ADMIN, else root makes one for the user once.
      id: "host-link",
      what: "host links (a Network with hostInterface): /dev/net/tun, and CAP_NET_ADMIN to make taps",
      scope: "host",
      optional: true,
      argv: sh(
        'test -r /dev/net/tun && test -w /dev/net/tun || { echo "/dev/net/tun is missing or not readable and writable by this user" >&2; exit 1; }; cap=$(sed -n "s/^CapEff:[[:space:]]*//p" /proc/self/status); if [ $(( 0x$cap >> 12 & 1 )) -eq 1 ]; then echo "CAP_NET_ADMIN: umlfleet makes the tap of each host link and removes it with its network"; exit 0; fi; echo "no CAP_NET_ADMIN: a host link needs a persistent tap this user owns, made once by root" >&2; exit 1',
      ),
      fix: (r) =>
        r.stderr.includes("/dev/net/tun")
          ? "load the tun module (sudo modprobe tun) and let users open /dev/net/tun (Debian's default mode is 0666)"
          : `for each host link, once as root: sudo ip tuntap add dev NAME mode tap user ${process.getuid?.() ?? "$(id -u)"} && sudo ip addr add CIDR dev NAME && sudo ip link set NAME up`,
    },
    {
      // RootFilesystem kind "debian" (src/host/distro.ts): mmdebstrap in unshare mode, from apt's mirror.
      id: "debian-bases",
      what: "Debian bases (RootFilesystem kind debian): mmdebstrap, uidmap and a subordinate id range unless root, an apt source",
      scope: "host",
      optional: true,
      argv: sh(
        'command -v mmdebstrap >/dev/null || { echo "mmdebstrap is not installed" >&2; exit 1; }; if [ "$(id -u)" != 0 ]; then command -v newuidmap >/dev/null || { echo "newuidmap (package uidmap) is not installed" >&2; exit 1; }; u=$(id -un); grep -q "^$u:" /etc/subuid && grep -q "^$u:" /etc/subgid || { echo "no subordinate uid and gid range for $u in /etc/subuid and /etc/subgid" >&2; exit 1; }; fi; cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources 2>/dev/null | grep -qE "^(deb[[:space:]]|URIs:)" || { echo "apt has no source to build from" >&2; exit 1; }; mmdebstrap --version',
      ),
      fix: (r) =>
        r.stderr.includes("subordinate")
          ? `sudo usermod --add-subuids 100000-165535 --add-subgids 100000-165535 ${process.env.USER ?? "$(id -un)"}`
          : r.stderr.includes("apt")
            ? "name a Debian mirror in /etc/apt/sources.list (deb http://deb.debian.org/debian bookworm main)"
            : "sudo apt-get install mmdebstrap uidmap",
    },
    {
      // `umlfleet graph --format svg` renders DOT through Graphviz (src/cli/graph.ts); DOT needs nothing.
      id: "graphviz",
      what: "pictures of labs (umlfleet graph --format svg): Graphviz's dot",
      scope: "host",
      package: "graphviz",
      optional: true,
      argv: sh('command -v dot >/dev/null || { echo "dot is not installed" >&2; exit 1; }; dot -V 2>&1'),
    },
    {
      // Instance runAs (src/host/host-users.ts): setpriv in the sandbox switches to another uid.
      id: "run-as",
      what: "guests as other host uids (Instance runAs): umlfleet running as root",
      scope: "host",
      optional: true,
      argv: sh(
        'if [ "$(id -u)" = 0 ]; then echo "root: each guest may run as a host uid of its own"; exit 0; fi; echo "runAs needs umlfleet to run as root (CAP_SETUID)" >&2; exit 1',
      ),
      fix: () => "run pulumi (umlfleet) as root, or leave runAs unset (guests then run as you)",
    },
    {
      id: "mke2fs",
      what: "mke2fs (ext4 root filesystems)",
      scope: "host",
      package: "e2fsprogs",
      argv: sh(
        'command -v "$1" || { for d in /usr/sbin /sbin; do test -x "$d/$1" && echo "$d/$1" >&2; done; exit 1; }',
        "mke2fs",
      ),
      // Debian puts it in /usr/sbin, which a normal user's PATH lacks.
      fix: (r) =>
        firstLine(r.stderr).startsWith("/")
          ? `add ${dirname(firstLine(r.stderr))} to PATH (export PATH="$PATH:${dirname(firstLine(r.stderr))}")`
          : aptInstall("e2fsprogs"),
    },
    {
      id: "busybox",
      what: "a static busybox /bin/busybox (the userland of built bases)",
      scope: "host",
      package: "busybox-static",
      // A dynamic busybox would not run inside a base that has no libc.
      argv: sh(
        'test -x /bin/busybox || exit 1; if ldd /bin/busybox >/dev/null 2>&1; then echo "/bin/busybox is dynamically linked" >&2; exit 1; fi; echo /bin/busybox',
      ),
    },
    {
      id: "node",
      what: "Node.js 20 or later",
      scope: "toolchain",
      argv: [
        "node",
        "-e",
        'const v = process.versions.node; console.log(v); process.exit(+v.split(".")[0] >= 20 ? 0 : 1)',
      ],
      fix: () => "install Node.js 20 or later (e.g. from NodeSource)",
    },
    {
      id: "pulumi",
      what: "the pulumi CLI",
      scope: "toolchain",
      argv: sh('p=$(command -v pulumi) || exit 1; v=$("$p" version) || exit 1; echo "$p $v"'),
      fix: toolchainFix,
    },
    {
      id: "pulumi-language-nodejs",
      what: "the Node.js language host, beside pulumi or on PATH",
      scope: "toolchain",
      argv: besidePulumi("pulumi-language-nodejs"),
      fix: toolchainFix,
    },
    {
      id: "pulumi-resource-pulumi-nodejs",
      what: "the dynamic-provider plugin, beside pulumi or on PATH",
      scope: "toolchain",
      argv: besidePulumi("pulumi-resource-pulumi-nodejs"),
      fix: toolchainFix,
    },
  ];
}

/**
 * Every fact, in a fixed order. Probes run at once: each is a short process
 * (the slowest starts two sandboxes).
 */
export async function hostFacts(
  runner: Runner = localRunner(),
  only?: readonly string[],
  opts: { stateDir?: string; capacity?: boolean } = {},
): Promise<HostFact[]> {
  const pulumi = await runner(sh('p=$(command -v pulumi) && dirname "$(readlink -f "$p")"'));
  const pulumiDir = pulumi.exitCode === 0 ? firstLine(pulumi.stdout) : "";
  return Promise.all(
    [...probes(), ...(opts.capacity ? capacityProbes(opts.stateDir) : [])]
      .filter((p) => !only || only.includes(p.id))
      .map(async (p) => {
        const r = await runner(p.argv);
        const ok = r.exitCode === 0;
        const fact: HostFact = {
          id: p.id,
          what: p.what,
          scope: p.scope,
          ok,
          detail: ok ? firstLine(r.stdout) : ended(r),
        };
        if (p.package) fact.package = p.package;
        if (p.optional) fact.optional = true;
        if (!ok) fact.fix = p.fix ? p.fix(r, pulumiDir) : aptInstall(p.package ?? "");
        return fact;
      }),
  );
}

/**
 * Doctor's `uml-kernel-runs-guests` probe for one kernel: one boot of
 * /bin/true under it (an example that offers a second kernel asks this
 * before choosing Debian's, which dies on CPUs with AMX).
 */
export async function kernelRunsGuests(kernelPath: string): Promise<HostFact> {
  const [fact] = await hostFacts(localRunner({ ...process.env, UMLFLEET_KERNEL: kernelPath }), [
    "uml-kernel-runs-guests",
  ]);
  return fact!;
}
