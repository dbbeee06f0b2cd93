import { createHash } from "node:crypto";
import { existsSync, renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";

/**
 * A seccomp filter for the bubblewrap sandboxes (a guest's kernel, a switch,
 * a NIC's wirefilter, a capture's vde_plug), as the classic BPF program `bwrap --seccomp FD`
 * loads. bwrap loads it last, after its own mounts and namespaces, just
 * before exec, so the sandboxed process and everything it forks inherit it.
 *
 * A guest's root cannot make host syscalls (UML runs its processes under
 * ptrace and emulates their calls, and PTRACE_SYSEMU skips seccomp for them);
 * the filter narrows what a bug in UML, vde_switch or a library could reach
 * from the host kernel: calls none of them makes (checked in UML's os-Linux
 * sources and by booting every integration test under it).
 *
 * The program: a syscall of any architecture but x86_64 kills the process (no
 * i386 entry to a different table); an x32 number (bit 30 set), or a negative
 * one, gets ENOSYS, as the kernel answers an unknown number: with EPERM
 * there, a killed boot could not be re-adopted and a guest's TCP stalled
 * (measured; likely UML's skipping of a traced call as number -1); then each denied call returns its errno; clone with a namespace
 * flag returns EPERM; everything else is allowed.
 */

/** A classic BPF instruction (struct sock_filter). */
export interface Insn {
  code: number;
  jt: number;
  jf: number;
  k: number;
}

export const AUDIT_ARCH_X86_64 = 0xc000003e;
/** x32 syscalls are x86_64 numbers with this bit set. */
export const X32_SYSCALL_BIT = 0x40000000;
export const SECCOMP_RET_KILL_PROCESS = 0x80000000;
export const SECCOMP_RET_ERRNO = 0x00050000;
export const SECCOMP_RET_ALLOW = 0x7fff0000;
export const EPERM = 1;
export const ENOSYS = 38;

/** Opcodes used here (linux/bpf_common.h). */
export const BPF_LD_W_ABS = 0x20;
export const BPF_JMP_JEQ_K = 0x15;
export const BPF_JMP_JGE_K = 0x35;
export const BPF_JMP_JSET_K = 0x45;
export const BPF_RET_K = 0x06;

/** Offsets in struct seccomp_data: nr, arch, then args[6] as u64 (low half first on x86_64). */
export const OFFSET_NR = 0;
export const OFFSET_ARCH = 4;
export const OFFSET_ARG0_LOW = 16;

/** CLONE_NEWNS | CLONE_NEWCGROUP | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNET. */
export const CLONE_NAMESPACE_FLAGS =
  0x00020000 | 0x02000000 | 0x04000000 | 0x08000000 | 0x10000000 | 0x20000000 | 0x40000000;

/** x86_64 numbers (asm/unistd_64.h; the unit test compares them with the header). */
export const X86_64_NR = {
  syslog: 103,
  personality: 135,
  uselib: 134,
  vhangup: 153,
  pivot_root: 155,
  _sysctl: 156,
  adjtimex: 159,
  chroot: 161,
  acct: 163,
  settimeofday: 164,
  mount: 165,
  umount2: 166,
  swapon: 167,
  swapoff: 168,
  reboot: 169,
  sethostname: 170,
  setdomainname: 171,
  iopl: 172,
  ioperm: 173,
  init_module: 175,
  delete_module: 176,
  quotactl: 179,
  lookup_dcookie: 212,
  clock_settime: 227,
  kexec_load: 246,
  add_key: 248,
  request_key: 249,
  keyctl: 250,
  unshare: 272,
  perf_event_open: 298,
  fanotify_init: 300,
  name_to_handle_at: 303,
  open_by_handle_at: 304,
  clock_adjtime: 305,
  setns: 308,
  process_vm_readv: 310,
  process_vm_writev: 311,
  kcmp: 312,
  finit_module: 313,
  kexec_file_load: 320,
  bpf: 321,
  userfaultfd: 323,
  io_uring_setup: 425,
  io_uring_enter: 426,
  io_uring_register: 427,
  open_tree: 428,
  move_mount: 429,
  fsopen: 430,
  fsconfig: 431,
  fsmount: 432,
  fspick: 433,
  clone3: 435,
  pidfd_getfd: 438,
  mount_setattr: 442,
  quotactl_fd: 443,
  clone: 56,
} as const;

export type Syscall = keyof typeof X86_64_NR;

/** What the filter denies, with the errno each gets and why (docs/security.md lists the same groups). */
export const DENIED: readonly { calls: Syscall[]; errno: number; why: string }[] = [
  {
    calls: ["mount", "umount2", "pivot_root", "chroot", "open_tree", "move_mount", "fsopen", "fsconfig"],
    errno: EPERM,
    why: "the sandbox's mounts are made by bwrap before the filter; nothing after may change them",
  },
  { calls: ["fsmount", "fspick", "mount_setattr"], errno: EPERM, why: "mount API" },
  {
    calls: ["unshare", "setns"],
    errno: EPERM,
    why: "no new or other namespaces (user namespaces are kernel attack surface)",
  },
  { calls: ["keyctl", "add_key", "request_key"], errno: EPERM, why: "the kernel keyring is not namespaced" },
  {
    calls: ["bpf", "perf_event_open", "userfaultfd", "io_uring_setup", "io_uring_enter", "io_uring_register"],
    errno: EPERM,
    why: "kernel attack surface UML and vde_switch never use",
  },
  {
    calls: [
      "kexec_load",
      "kexec_file_load",
      "init_module",
      "finit_module",
      "delete_module",
      "reboot",
      "swapon",
      "swapoff",
      "acct",
      "quotactl",
      "quotactl_fd",
      "syslog",
      "vhangup",
      "uselib",
      "_sysctl",
    ],
    errno: EPERM,
    why: "host administration",
  },
  {
    calls: [
      "settimeofday",
      "clock_settime",
      "clock_adjtime",
      "adjtimex",
      "sethostname",
      "setdomainname",
      "ioperm",
      "iopl",
    ],
    errno: EPERM,
    why: "host clock, names and I/O ports",
  },
  {
    calls: ["lookup_dcookie", "open_by_handle_at", "name_to_handle_at", "fanotify_init"],
    errno: EPERM,
    why: "file handles reach files outside the mount namespace",
  },
  {
    calls: ["process_vm_readv", "process_vm_writev", "kcmp", "pidfd_getfd", "personality"],
    errno: EPERM,
    why: "other processes' memory and fds; execution domains",
  },
  // glibc falls back to clone when clone3 is missing; clone's flags can be checked, clone3's (in memory) cannot.
  {
    calls: ["clone3"],
    errno: ENOSYS,
    why: "its flags are out of the filter's reach: callers fall back to clone",
  },
];

/** Every denied call, once, with its errno. */
export function deniedCalls(): { name: Syscall; nr: number; errno: number }[] {
  const seen = new Map<Syscall, number>();
  for (const g of DENIED) for (const c of g.calls) if (!seen.has(c)) seen.set(c, g.errno);
  return [...seen].map(([name, errno]) => ({ name, nr: X86_64_NR[name], errno }));
}

const stmt = (code: number, k: number): Insn => ({ code, jt: 0, jf: 0, k });

type Label = "allow" | "eperm" | "enosys" | "clone";
/** An instruction whose jumps name labels, resolved once the program is laid out. */
type Pending = Insn & { jtTo?: Label; jfTo?: Label };

/** The filter as instructions; jumps resolved to labels at the end, each checked to fit a byte. */
export function seccompProgram(): Insn[] {
  const prog: Pending[] = [
    stmt(BPF_LD_W_ABS, OFFSET_ARCH),
    { code: BPF_JMP_JEQ_K, jt: 1, jf: 0, k: AUDIT_ARCH_X86_64 },
    stmt(BPF_RET_K, SECCOMP_RET_KILL_PROCESS),
    stmt(BPF_LD_W_ABS, OFFSET_NR),
    { code: BPF_JMP_JGE_K, jt: 0, jf: 0, k: X32_SYSCALL_BIT, jtTo: "enosys" },
    { code: BPF_JMP_JEQ_K, jt: 0, jf: 0, k: X86_64_NR.clone, jtTo: "clone" },
    ...deniedCalls().map((d) => ({
      code: BPF_JMP_JEQ_K,
      jt: 0,
      jf: 0,
      k: d.nr,
      jtTo: d.errno === ENOSYS ? ("enosys" as const) : ("eperm" as const),
    })),
  ];
  const labels = new Map<Label, number>();
  const mark = (l: Label, ...insns: Pending[]) => {
    labels.set(l, prog.length);
    prog.push(...insns);
  };
  // Jumps go forward only: the clone check falls through to a second allow.
  mark("allow", stmt(BPF_RET_K, SECCOMP_RET_ALLOW));
  mark(
    "clone",
    stmt(BPF_LD_W_ABS, OFFSET_ARG0_LOW),
    {
      code: BPF_JMP_JSET_K,
      jt: 0,
      jf: 0,
      k: CLONE_NAMESPACE_FLAGS,
      jtTo: "eperm",
    },
    stmt(BPF_RET_K, SECCOMP_RET_ALLOW),
  );
  mark("eperm", stmt(BPF_RET_K, SECCOMP_RET_ERRNO | EPERM));
  mark("enosys", stmt(BPF_RET_K, SECCOMP_RET_ERRNO | ENOSYS));
  return prog.map(({ jtTo, jfTo, ...insn }, pc) => {
    const rel = (to: Label | undefined, fallback: number) => {
      if (!to) return fallback;
      const off = labels.get(to)! - pc - 1;
      if (off < 0 || off > 255) throw new Error(`seccomp: jump from ${pc} to ${to} does not fit a byte`);
      return off;
    };
    return { ...insn, jt: rel(jtTo, insn.jt), jf: rel(jfTo, insn.jf) };
  });
}

/** The program as bytes (struct sock_filter[], little-endian): what bwrap reads from its fd. */
export function encodeProgram(prog: Insn[]): Buffer {
  const buf = Buffer.alloc(prog.length * 8);
  prog.forEach((insn, i) => {
    buf.writeUInt16LE(insn.code, i * 8);
    buf.writeUInt8(insn.jt, i * 8 + 2);
    buf.writeUInt8(insn.jf, i * 8 + 3);
    buf.writeUInt32LE(insn.k >>> 0, i * 8 + 4);
  });
  return buf;
}

/** The fd a sandbox reads its filter from (the launching shell opens the file there; above any guest fd, below passed ones). */
export const SECCOMP_FD = 99;

/** Whether this host's sandboxes get the filter: x86_64 only (the numbers and arch check are x86_64's). */
export const seccompSupported = () => process.arch === "x64";

/**
 * The compiled filter as a file in the state folder (which no guest sees),
 * named by its content so a changed filter never meets a stale file; written
 * whole (temporary file, then rename). Undefined where it does not apply.
 */
export function seccompFile(stateRoot: string): string | undefined {
  if (!seccompSupported() || process.env.UMLFLEET_SECCOMP === "off") return undefined;
  const bytes = encodeProgram(seccompProgram());
  const file = join(
    stateRoot,
    `seccomp-${createHash("sha256").update(bytes).digest("hex").slice(0, 16)}.bpf`,
  );
  if (!existsSync(file)) {
    const tmp = `${file}.${process.pid}.tmp`;
    writeFileSync(tmp, bytes, { mode: 0o644 });
    renameSync(tmp, file);
  }
  return file;
}
