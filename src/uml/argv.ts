/**
 * Turns a fully resolved boot plan into linux.uml's argv. Pure: no IO.
 * Every value here was schema-checked or made by the runtime itself; each
 * argument is one argv entry, never a shell string.
 */

export interface BootDisk {
  /** ubd index: 0 is the root disk. */
  index: number;
  file: string;
  /** For COW overlays: the base image path recorded in the COW header. */
  backing?: string;
  readOnly: boolean;
}

/**
 * How a NIC reaches its switch. "eth": legacy `ethN=vde,<dir>,<mac>`, the
 * one that carries traffic on Debian's 6.1 kernel (measured: its vector
 * `transport=vde` device boots but fails to come up, SIOCSIFFLAGS EINVAL).
 * "vec": vector `vecN:transport=vde,...`, for kernels from 6.16, which dropped
 * the legacy drivers.
 */
export type NicDriver = "eth" | "vec";

export interface BootNic {
  index: number;
  driver: NicDriver;
  /** A directory holding the switch's `ctl` socket (vde_switch -s). */
  switchDir: string;
  mac: string;
  ipv4?: string;
  /** Set by umlfleet's init before the address (umlfleet.mtu=<dev>:<bytes>). */
  mtu?: number;
  /** A point-to-point socket (vdeplug ptp://) to plug into instead of the switch: an impaired NIC's wirefilter. */
  ptp?: string;
}

export interface BootShare {
  name: string;
  guestPath: string;
  readOnly: boolean;
}

/** File descriptor numbers as the UML process will see them. */
export interface BootFds {
  /** Console output (con0): the console log. */
  console: number;
  /** Console input (con0), a FIFO `umlfleet console` writes; none: con0 reads nothing. */
  consoleIn?: number;
  /** The control channel (con1 = guest /dev/tty1): guest reads `in`, writes `out`. */
  control: { in: number; out: number };
  /** Serial lines sslN = guest /dev/ttySN. */
  serial: { line: number; in: number; out: number }[];
}

export interface BootPlan {
  kernel: string;
  /** The mem= the guest boots with (its ceiling). */
  memoryMiB: number;
  umid: string;
  umlDir: string;
  disks: BootDisk[];
  swapDiskIndex?: number;
  nics: BootNic[];
  shares: BootShare[];
  /** The sandbox path that hostfs mounts are confined below. */
  hostfsRoot: string;
  hostname: string;
  fds: BootFds;
  /** Use umlfleet's init (readiness "marker"); otherwise the image's own. */
  umlfleetInit: boolean;
  kernelArgs: string[];
  /** The hostfs sub-folder holding the instance's staged set-up (files, startup, routes), if any. */
  setup?: string;
}

/** Path of umlfleet's init inside every base it builds. */
export const GUEST_INIT = "/umlfleet/init";
/** The line umlfleet's init prints on the console when the guest is ready. */
export const READY_MARKER = "UMLFLEET-READY";

/** ubd index -> guest device (0 -> /dev/ubda). */
export const ubdDevice = (index: number) => `/dev/ubd${String.fromCharCode(97 + index)}`;

export function ubdArg(d: BootDisk): string {
  const flags = d.readOnly && !d.backing ? "r" : "";
  return `ubd${d.index}${flags}=${d.backing ? `${d.file},${d.backing}` : d.file}`;
}

export const nicDevice = (n: Pick<BootNic, "driver" | "index">) => `${n.driver}${n.index}`;

export function nicArg(n: BootNic): string {
  const vnl = n.ptp ? `ptp://${n.ptp}` : `vde://${n.switchDir}`;
  return n.driver === "vec"
    ? `vec${n.index}:transport=vde,vnl=${vnl},mac=${n.mac}`
    : `eth${n.index}=vde,${n.ptp ? vnl : n.switchDir},${n.mac}`;
}

/** The NIC driver for a kernel version ("6.1.176" -> "eth"). */
export function nicDriverFor(kernelVersion: string): NicDriver {
  const [major = 0, minor = 0] = kernelVersion.split(".").map(Number);
  return major > 6 || (major === 6 && minor >= 16) ? "vec" : "eth";
}

export function umlArgv(p: BootPlan): string[] {
  const argv = [
    p.kernel,
    // User words first: where the kernel lets a later word win, ours do.
    ...p.kernelArgs,
    `mem=${p.memoryMiB}M`,
    `umid=${p.umid}`,
    `uml_dir=${p.umlDir}`,
    ...p.disks.map(ubdArg),
    "root=/dev/ubda",
    "rw",
    // Lines not given a channel do not exist ("none"): the guest cannot open
    // them, so they cost no IRQ slot (a "null" line opened costs one for good).
    "con=none",
    p.fds.consoleIn === undefined
      ? `con0=null,fd:${p.fds.console}`
      : `con0=fd:${p.fds.consoleIn},fd:${p.fds.console}`,
    `con1=fd:${p.fds.control.in},fd:${p.fds.control.out}`,
    "ssl=none",
    ...p.fds.serial.map((s) => `ssl${s.line}=fd:${s.in},fd:${s.out}`),
    ...p.nics.map(nicArg),
    `hostfs=${p.hostfsRoot}`,
  ];
  if (p.umlfleetInit) {
    argv.push(
      `init=${GUEST_INIT}`,
      `umlfleet.hostname=${p.hostname}`,
      `umlfleet.serial=${p.fds.serial.length}`,
    );
    for (const n of p.nics) {
      if (n.mtu !== undefined) argv.push(`umlfleet.mtu=${nicDevice(n)}:${n.mtu}`);
      if (n.ipv4) argv.push(`umlfleet.ip=${nicDevice(n)}:${n.ipv4}`);
    }
    for (const s of p.shares)
      argv.push(`umlfleet.share=${s.name}:${s.guestPath}:${s.readOnly ? "ro" : "rw"}`);
    if (p.swapDiskIndex !== undefined) argv.push(`umlfleet.swap=${ubdDevice(p.swapDiskIndex)}`);
    if (p.setup !== undefined) argv.push(`umlfleet.setup=${p.setup}`);
  }
  return argv;
}
