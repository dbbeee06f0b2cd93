import { readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { CALIBRATION_FILE, writeFileAtomic } from "./state";

/** The kernel's line when it calibrated (not when a preset value skipped it). */
const CALIBRATED = /Calibrating delay loop\.\.\. [\d.]+ BogoMIPS \(lpj=(\d+)\)/;
/** The kernel's line as it starts init: after it, the guest writes the console too. */
export const INIT_STARTED = "as init process";

interface Entry {
  size: number;
  mtimeMs: number;
  cpu: string;
  lpj: number;
}

let cpuModel: string | undefined;
function hostCpu(): string {
  if (cpuModel === undefined) {
    let text = "";
    try {
      text = readFileSync("/proc/cpuinfo", "utf8");
    } catch {
      /* no /proc: the key still names the kernel binary */
    }
    cpuModel = /^model name\s*:\s*(.*)$/m.exec(text)?.[1]?.trim() ?? "unknown";
  }
  return cpuModel;
}

export const presetLpjEnabled = () => process.env.UMLFLEET_PRESET_LPJ !== "off";

/**
 * A UML kernel calibrates its delay loop at every boot: a busy loop of several
 * jiffies (about 90 ms of CPU on the lean kernel, docs/kernel.md), before
 * anything else can run. The value it finds (`lpj`, loops per jiffy) depends
 * only on the kernel binary and the host's CPU, so the runtime keeps the one a
 * calibrating boot printed and passes it as `lpj=N` to the later boots of that
 * kernel on this host: they skip the loop ("Calibrating delay loop (skipped)
 * preset value"). `lpj` only sizes the guest's udelay() busy loops.
 *
 * Kept in the state folder (`calibration.json`): per kernel path, the binary's
 * size and mtime and the host CPU's model, so a rebuilt kernel or another CPU
 * calibrates again. A calibration preempted by the host counts fewer loops,
 * never more: of several, the largest is kept. `UMLFLEET_PRESET_LPJ=off`
 * turns it off; a guest whose kernelArgs give `lpj=` keeps its own.
 */
export class DelayCalibration {
  constructor(private readonly stateRoot: string) {}

  private get file(): string {
    return join(this.stateRoot, CALIBRATION_FILE);
  }

  private read(): Record<string, Entry> {
    try {
      const v = JSON.parse(readFileSync(this.file, "utf8")) as unknown;
      return v && typeof v === "object" ? (v as Record<string, Entry>) : {};
    } catch {
      // Missing or damaged: a cache, so the next boot calibrates and writes it again.
      return {};
    }
  }

  private identity(kernel: string): Omit<Entry, "lpj"> | undefined {
    const st = statSync(kernel, { throwIfNoEntry: false });
    return st && { size: st.size, mtimeMs: st.mtimeMs, cpu: hostCpu() };
  }

  /** Was `e` kept for this same binary on this same CPU? */
  private static sameIdentity(e: Entry | undefined, id: Omit<Entry, "lpj"> | undefined): e is Entry {
    return !!e && !!id && e.size === id.size && e.mtimeMs === id.mtimeMs && e.cpu === id.cpu;
  }

  /** The kept value for this kernel on this host, if a boot calibrated it. */
  lpjFor(kernel: string): number | undefined {
    if (!presetLpjEnabled()) return undefined;
    const e = this.read()[kernel];
    if (!DelayCalibration.sameIdentity(e, this.identity(kernel))) return undefined;
    return Number.isSafeInteger(e.lpj) && e.lpj > 0 ? e.lpj : undefined;
  }

  /**
   * The value in a calibrating boot's console text, if this is one, read only
   * before the kernel starts init: from then on the guest's own programs
   * (an image's /etc/umlfleet/rc, a startup script, whatever root planted in
   * its overlay) write the console too, and a line they print must not set
   * what every later guest of this kernel gets.
   */
  static calibratedIn(consoleText: string): number | undefined {
    const init = consoleText.indexOf(INIT_STARTED);
    const m = CALIBRATED.exec(init < 0 ? consoleText : consoleText.slice(0, init));
    return m ? Number(m[1]) : undefined;
  }

  /** Keep what a boot of `kernel` calibrated (the largest seen for its identity). */
  learn(kernel: string, lpj: number): void {
    if (!presetLpjEnabled() || !(lpj > 0)) return;
    const id = this.identity(kernel);
    if (!id) return;
    const all = this.read();
    const old = all[kernel];
    if (DelayCalibration.sameIdentity(old, id) && old.lpj >= lpj) return;
    all[kernel] = { ...id, lpj };
    // Not durable: losing it to a host crash costs one calibration.
    writeFileAtomic(this.file, `${JSON.stringify(all, null, 2)}\n`, 0o600, { durable: false });
  }
}

/** The boot's kernel words with the kept `lpj=`, unless the spec's words set one. */
export function withPresetLpj(kernelArgs: readonly string[], lpj: number | undefined): string[] {
  if (lpj === undefined || kernelArgs.some((w) => w.startsWith("lpj="))) return [...kernelArgs];
  return [`lpj=${lpj}`, ...kernelArgs];
}
