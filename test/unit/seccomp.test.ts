import { existsSync, readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import {
  AUDIT_ARCH_X86_64,
  BPF_JMP_JEQ_K,
  BPF_JMP_JGE_K,
  BPF_JMP_JSET_K,
  BPF_LD_W_ABS,
  BPF_RET_K,
  deniedCalls,
  encodeProgram,
  ENOSYS,
  EPERM,
  seccompProgram,
  SECCOMP_RET_ALLOW,
  SECCOMP_RET_ERRNO,
  SECCOMP_RET_KILL_PROCESS,
  X86_64_NR,
  type Insn,
} from "../../src/host/seccomp";

/**
 * A classic BPF interpreter for what seccomp accepts of these opcodes, written
 * from linux/filter.h and seccomp(2), independent of the generator: the test
 * runs the decoded bytes, not the generator's objects.
 */
function decode(buf: Buffer): Insn[] {
  expect(buf.length % 8).toBe(0);
  return Array.from({ length: buf.length / 8 }, (_, i) => ({
    code: buf.readUInt16LE(i * 8),
    jt: buf.readUInt8(i * 8 + 2),
    jf: buf.readUInt8(i * 8 + 3),
    k: buf.readUInt32LE(i * 8 + 4),
  }));
}

function runFilter(prog: Insn[], data: { nr: number; arch: number; args?: number[] }): number {
  const mem = Buffer.alloc(64);
  mem.writeInt32LE(data.nr, 0);
  mem.writeUInt32LE(data.arch, 4);
  (data.args ?? []).forEach((a, i) => mem.writeBigUInt64LE(BigInt(a), 16 + i * 8));
  let acc = 0;
  for (let pc = 0, steps = 0; pc < prog.length; pc++, steps++) {
    if (steps > prog.length) throw new Error("loop");
    const { code, jt, jf, k } = prog[pc]!;
    switch (code) {
      case BPF_LD_W_ABS:
        if (k % 4 !== 0 || k + 4 > 64) throw new Error(`bad load offset ${k}`);
        acc = mem.readUInt32LE(k);
        break;
      case BPF_JMP_JEQ_K:
        pc += acc === k >>> 0 ? jt : jf;
        break;
      case BPF_JMP_JGE_K:
        pc += acc >>> 0 >= k >>> 0 ? jt : jf;
        break;
      case BPF_JMP_JSET_K:
        pc += (acc & k) !== 0 ? jt : jf;
        break;
      case BPF_RET_K:
        return k >>> 0;
      default:
        throw new Error(`opcode 0x${code.toString(16)} at ${pc}`);
    }
  }
  throw new Error("fell off the end (the kernel rejects such a program)");
}

const prog = decode(encodeProgram(seccompProgram()));
const x86 = (nr: number, args?: number[]) =>
  runFilter(prog, { nr, arch: AUDIT_ARCH_X86_64, ...(args ? { args } : {}) });

describe("seccomp filter", () => {
  it("starts with the arch check, killing any other architecture", () => {
    expect(prog[0]).toEqual({ code: BPF_LD_W_ABS, jt: 0, jf: 0, k: 4 });
    expect(prog[1]).toEqual({ code: BPF_JMP_JEQ_K, jt: 1, jf: 0, k: AUDIT_ARCH_X86_64 });
    expect(prog[2]).toEqual({ code: BPF_RET_K, jt: 0, jf: 0, k: SECCOMP_RET_KILL_PROCESS });
    const AUDIT_ARCH_I386 = 0x40000003;
    for (const nr of [0, 1, 59, X86_64_NR.mount])
      expect(runFilter(prog, { nr, arch: AUDIT_ARCH_I386 })).toBe(SECCOMP_RET_KILL_PROCESS);
  });

  it("ends every path in a return, fits the kernel's limits, every jump forward and in range", () => {
    expect(prog.length).toBeLessThan(4096);
    expect(prog.at(-1)!.code).toBe(BPF_RET_K);
    prog.forEach((insn, pc) => {
      if (insn.code === BPF_RET_K) return;
      if (insn.code === BPF_LD_W_ABS) return;
      expect(pc + 1 + insn.jt).toBeLessThan(prog.length);
      expect(pc + 1 + insn.jf).toBeLessThan(prog.length);
    });
  });

  it("denies each listed call with its errno and allows what UML and vde_switch need", () => {
    for (const d of deniedCalls()) expect(x86(d.nr), d.name).toBe(SECCOMP_RET_ERRNO | d.errno);
    expect(x86(X86_64_NR.mount)).toBe(SECCOMP_RET_ERRNO | EPERM);
    expect(x86(X86_64_NR.clone3)).toBe(SECCOMP_RET_ERRNO | ENOSYS);
    // read, write, open, mmap, mprotect, munmap, ptrace, wait4, kill, socket, bind, connect, exit_group, openat, arch_prctl, modify_ldt, execve
    for (const nr of [0, 1, 2, 9, 10, 11, 101, 61, 62, 41, 49, 42, 231, 257, 158, 154, 59])
      expect(x86(nr), String(nr)).toBe(SECCOMP_RET_ALLOW);
  });

  it("answers x32 calls (the x86_64 table with bit 30 set) and negative numbers ENOSYS, as the kernel does for an unknown number", () => {
    for (const nr of [0x40000000, 0x40000000 + 1, 0x40000000 + 59, 0x7fffffff, -1])
      expect(x86(nr), String(nr)).toBe(SECCOMP_RET_ERRNO | ENOSYS);
  });

  it("allows clone of threads and processes, denies clone into any new namespace", () => {
    const CLONE_VM = 0x100,
      CLONE_FILES = 0x400,
      SIGCHLD = 17;
    expect(x86(X86_64_NR.clone, [CLONE_VM | CLONE_FILES | SIGCHLD])).toBe(SECCOMP_RET_ALLOW);
    expect(x86(X86_64_NR.clone, [SIGCHLD])).toBe(SECCOMP_RET_ALLOW);
    for (const flag of [0x20000, 0x2000000, 0x4000000, 0x8000000, 0x10000000, 0x20000000, 0x40000000])
      expect(x86(X86_64_NR.clone, [SIGCHLD | flag]), flag.toString(16)).toBe(SECCOMP_RET_ERRNO | EPERM);
  });

  it.runIf(existsSync("/usr/include/x86_64-linux-gnu/asm/unistd_64.h"))(
    "uses the syscall numbers of the kernel headers",
    () => {
      const header = readFileSync("/usr/include/x86_64-linux-gnu/asm/unistd_64.h", "utf8");
      const numbers = new Map(
        [...header.matchAll(/^#define __NR_(\w+) (\d+)$/gm)].map((m) => [m[1]!, Number(m[2])]),
      );
      expect(numbers.size).toBeGreaterThan(300);
      for (const [name, nr] of Object.entries(X86_64_NR)) expect(numbers.get(name), name).toBe(nr);
    },
  );

  it("encodes struct sock_filter little-endian, 8 bytes each", () => {
    const bytes = encodeProgram([{ code: 0x15, jt: 2, jf: 3, k: 0xc000003e }]);
    expect([...bytes]).toEqual([0x15, 0x00, 0x02, 0x03, 0x3e, 0x00, 0x00, 0xc0]);
  });
});
