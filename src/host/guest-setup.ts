import {
  closeSync,
  constants,
  copyFileSync,
  fstatSync,
  mkdirSync,
  openSync,
  readFileSync,
  readlinkSync,
  realpathSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { dirname, join } from "node:path";
import { UmlfleetError } from "../errors";
import { MAX_FILE_BYTES, MAX_FILES_BYTES } from "../feature-checks";
import { parseAddress } from "../net-address";
import type { InstanceSpec, NicSpec, ShareSpec } from "../spec";
import { packageRoot } from "../validation";
import { shellQuote } from "./console-log";
import { nests } from "./shares";

/**
 * An instance's own set-up, the way Netkit and Kathará labs give each machine
 * a folder copied into its root and a startup script: files, the startup
 * script, and what its NICs need beyond their ipv4 (IPv6 addresses, gateways,
 * routes). Before each boot the host writes them into a staging folder of
 * the instance (host-only: outside vm/, so no guest can change it); the
 * sandbox binds it read-only by fd (shares.ts openShare) below the hostfs
 * root; umlfleet's init mounts it and runs `setup.sh` from it
 * (src/host/guest/setup), which sets the addresses and routes, copies the
 * files into `/`, runs the startup script, and prints its exit status on the
 * console as `UMLFLEET-STARTUP-EXIT <n>` before the guest reports ready.
 */

/** The staging folder's name below the sandbox's hostfs root: no share can take it (share names start with a letter). */
export const SETUP_SHARE = "_setup";
/** The line setup.sh prints after the startup script, with its exit status. */
export const STARTUP_EXIT_MARKER = "UMLFLEET-STARTUP-EXIT";
const DEFAULT_FILE_MODE = 0o644;

/** Does this spec need a staging folder at boot? */
export function needsSetup(s: InstanceSpec): boolean {
  return (
    (s.files ?? []).length > 0 ||
    s.startup !== undefined ||
    s.login !== undefined ||
    (s.nics ?? []).some((n) => n.ipv6 !== undefined || n.gateway !== undefined || (n.routes ?? []).length > 0)
  );
}

/**
 * The guest commands that configure one NIC beyond what the kernel command
 * line sets (its MTU again, when it has one): its IPv6 address (duplicate address detection off, so the
 * address is usable at once, not seconds later), its gateway and its routes;
 * with `withIpv4`, also bring it up with its ipv4 (a NIC hot-plugged into a
 * running guest). Every value was checked against its pattern and parsed
 * (feature-checks.ts), and is quoted anyway. A failed command is reported on
 * the console and the rest go on.
 */
export function nicCommands(dev: string, nic: NicSpec, withIpv4 = false): string[] {
  const q = shellQuote;
  const lines: string[] = [`ip link set ${q(dev)}${nic.mtu !== undefined ? ` mtu ${nic.mtu}` : ""} up`];
  if (withIpv4 && nic.ipv4) lines.push(`ip addr add ${q(nic.ipv4)} dev ${q(dev)}`);
  if (nic.ipv6) {
    lines.push(`echo 0 >/proc/sys/net/ipv6/conf/${dev}/accept_dad`);
    lines.push(`ip -6 addr add ${q(nic.ipv6)} dev ${q(dev)}`);
  }
  const family = (addr: string) => (parseAddress(addr)?.family === 6 ? "-6" : "-4");
  if (nic.gateway)
    lines.push(`ip ${family(nic.gateway)} route add default via ${q(nic.gateway)} dev ${q(dev)}`);
  for (const r of nic.routes ?? [])
    lines.push(`ip ${family(r.via)} route add ${q(r.to)} via ${q(r.via)} dev ${q(dev)}`);
  return lines.map((l) => `${l} || echo ${q(`umlfleet: failed: ${l}`)}`);
}

/** A file `source` checked on the host: the real file it names now. */
export interface CheckedSource {
  index: number;
  field: string;
  realPath: string;
}

/**
 * Check every file `source` before anything is made: an existing regular
 * file of at most MAX_FILE_BYTES, not in the state folder (other guests'
 * disks and logs) and not in a read-write share of any instance (a guest
 * could swap it for a link to a host secret, which the host would then copy
 * into this guest). Throws naming the field.
 */
export function checkSources(
  s: InstanceSpec,
  stateRoot: string,
  shares: readonly { instance: string; shares: readonly ShareSpec[] }[],
): CheckedSource[] {
  const state = realOrSelf(stateRoot);
  const writable = shares.flatMap((o) =>
    o.shares
      .filter((sh) => !(sh.readOnly ?? true))
      .map((sh) => ({ instance: o.instance, path: realOrSelf(sh.hostPath) })),
  );
  return (s.files ?? []).flatMap((f, index) => {
    if (f.source === undefined) return [];
    const field = `/files/${index}/source`;
    const fail = (
      why: string,
      code: "UMLFLEET_NOT_FOUND" | "UMLFLEET_INVALID_SPEC" = "UMLFLEET_INVALID_SPEC",
    ) => new UmlfleetError(code, `${field}: ${JSON.stringify(f.source)} ${why}`, { field, value: f.source });
    const st = statSync(f.source, { throwIfNoEntry: false });
    if (!st?.isFile()) throw fail("is not an existing file", "UMLFLEET_NOT_FOUND");
    if (st.size > MAX_FILE_BYTES) throw fail(`is ${st.size} bytes; at most ${MAX_FILE_BYTES}`);
    const realPath = realpathSync(f.source);
    if (nests(realPath, state)) throw fail(`lies in umlfleet's state folder ${state}, where guests write`);
    const share = writable.find((w) => nests(realPath, w.path) || realPath === w.path);
    if (share)
      throw fail(
        `lies in instance ${share.instance}'s read-write share ${share.path}, which its guest can change`,
      );
    return [{ index, field, realPath }];
  });
}

/**
 * Write the staging folder for a boot (removing the last one), or remove it
 * when the spec needs none. Returns its path, or undefined. `devices` are the
 * guest's NIC names in order. Sources are read through an fd that is checked
 * to be the checked file (a link swapped in since fails closed).
 */
export function stageSetup(
  dir: string,
  s: InstanceSpec,
  devices: readonly string[],
  sources: readonly CheckedSource[],
): string | undefined {
  rmSync(dir, { recursive: true, force: true });
  if (!needsSetup(s)) return undefined;
  mkdirSync(dir, { mode: 0o700 });
  copyFileSync(join(packageRoot(), "src", "host", "guest", "setup"), join(dir, "setup.sh"));
  const net = (s.nics ?? []).flatMap((n, i) =>
    n.ipv6 !== undefined || n.gateway !== undefined || (n.routes ?? []).length > 0
      ? nicCommands(devices[i]!, n)
      : [],
  );
  if (net.length) writeFileSync(join(dir, "net.sh"), `${net.join("\n")}\n`);
  const files = s.files ?? [];
  if (files.length) {
    const byMode = new Map<number, string[]>();
    let total = 0;
    files.forEach((f, i) => {
      const body =
        f.content !== undefined
          ? Buffer.from(f.content, "utf8")
          : readSource(sources.find((c) => c.index === i)!);
      total += body.length;
      if (total > MAX_FILES_BYTES)
        throw new UmlfleetError(
          "UMLFLEET_INVALID_SPEC",
          `/files: more than ${MAX_FILES_BYTES} bytes in all`,
          {
            field: "/files",
          },
        );
      const target = join(dir, "files", f.path);
      mkdirSync(dirname(target), { recursive: true, mode: 0o755 });
      writeFileSync(target, body, { mode: 0o644 });
      const mode = f.mode ?? DEFAULT_FILE_MODE;
      byMode.set(mode, [...(byMode.get(mode) ?? []), f.path]);
    });
    // One chmod per mode, not per file: every command forks, slowly, in a guest.
    const modes = [...byMode].map(
      ([mode, paths]) => `${mode.toString(8).padStart(4, "0")} ${paths.join(" ")}`,
    );
    writeFileSync(join(dir, "files.modes"), `${modes.join("\n")}\n`);
  }
  if (s.startup !== undefined) writeFileSync(join(dir, "startup"), s.startup);
  if (s.login) stageLogin(dir, s.login);
  return dir;
}

/**
 * The login for setup.sh, as files it reads (never as words of a script):
 * the account name, its authorized_keys, its password hash. Each value
 * passed its schema pattern (no ':' or line break in any). The hash is in a
 * host-only folder, read by the guest from a read-only mount, and printed
 * nowhere.
 */
function stageLogin(dir: string, login: NonNullable<InstanceSpec["login"]>): void {
  copyFileSync(join(packageRoot(), "src", "host", "guest", "login"), join(dir, "login.sh"));
  writeFileSync(join(dir, "login.user"), `${login.user ?? "root"}\n`, { mode: 0o600 });
  if (login.sshPublicKeys?.length)
    writeFileSync(join(dir, "login.keys"), `${login.sshPublicKeys.join("\n")}\n`, { mode: 0o600 });
  if (login.passwordHash !== undefined)
    writeFileSync(join(dir, "login.hash"), `${login.passwordHash}\n`, { mode: 0o600 });
}

function readSource(c: CheckedSource): Buffer {
  let fd: number;
  try {
    fd = openSync(c.realPath, constants.O_RDONLY | constants.O_NOFOLLOW);
  } catch (e) {
    throw changed(c, (e as NodeJS.ErrnoException).code ?? String(e));
  }
  try {
    const opened = readlinkSync(`/proc/self/fd/${fd}`);
    if (opened !== c.realPath) throw changed(c, opened);
    const st = fstatSync(fd);
    if (!st.isFile() || st.size > MAX_FILE_BYTES)
      throw changed(c, `a ${st.size}-byte ${st.isFile() ? "file" : "non-file"}`);
    return readFileSync(fd);
  } finally {
    closeSync(fd);
  }
}

const changed = (c: CheckedSource, now: string) =>
  new UmlfleetError(
    "UMLFLEET_CONFLICT",
    `${c.field}: ${c.realPath} changed while it was being read (now ${now}); nothing was copied`,
    { field: c.field, value: c.realPath },
  );

/** The startup script's exit status in console text: the last marker line, if any. */
export function startupExitIn(text: string): number | undefined {
  const all = [...text.matchAll(new RegExp(`^${STARTUP_EXIT_MARKER} (\\d+)\\r?$`, "gm"))];
  return all.length ? Number(all[all.length - 1]![1]) : undefined;
}

/** The startup exit status recorded in a console log (host-only), for a boot adopted half-way. */
export function startupExitInLog(consoleLog: string): number | undefined {
  try {
    return startupExitIn(readFileSync(consoleLog, "utf8"));
  } catch {
    return undefined;
  }
}

function realOrSelf(p: string): string {
  try {
    return realpathSync(p);
  } catch {
    return p;
  }
}
