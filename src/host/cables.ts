import { spawn } from "node:child_process";
import { createSocket } from "node:dgram";
import { lookup } from "node:dns/promises";
import {
  existsSync,
  mkdirSync,
  openSync,
  closeSync,
  readFileSync,
  readdirSync,
  renameSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { homedir } from "node:os";
import { isIP } from "node:net";
import { join } from "node:path";
import { UmlfleetError } from "../errors";
import { identify, isAlive, killAllNaming, killGroup, run, sleep, type ProcessIdentity } from "../process";
import { shellQuote } from "./console-log";
import { findOnPath } from "./sandbox";
import { readJson, STATE_SCHEMA_VERSION, writeJson, type StateDir } from "./state";

/**
 * Cables between the switches of one network on two hosts (docs/hosts.md).
 *
 * An SSH cable (the default): on host A, `dpipe vde_plug <switch A> = ssh -i
 * <cable key> B`, detached (it outlives `pulumi up`), with B's host key
 * pinned; on host B, the cable's public key in the user's authorized_keys,
 * restricted to one command: `vde_plug <switch B>`. The private key is made on
 * A and never leaves it.
 *
 * A UDP cable (`kind: "udp"`): each host runs `vde_plug <its switch>
 * udp://<its address>:<its port>-><far address>:<far port>`, one frame per
 * datagram: no encryption, no authentication, no per-frame process hop
 * through ssh. Each end reserves its port first (`reserve`: a free port, kept
 * while the cable exists, so repairs do not move it), then both are started.
 *
 * A cable end is recorded like a switch (`<stateDir>/cables/<name>/`) and
 * re-adopted by any later agent; it is up while its processes run.
 */
export type CableSpec = SshCableSpec | UdpCableSpec;

export interface SshCableSpec {
  /** The cable's name, unique on this host. */
  name: string;
  /** The network (switch) on this host it plugs into. */
  network: string;
  kind?: "ssh";
  /** Where its far end is: B as this host reaches it. */
  peer: { host: string; port: number; user: string; hostKey: string };
}

export interface UdpCableSpec {
  name: string;
  network: string;
  kind: "udp";
  /** The far end's address (as this host reaches it) and its reserved UDP port. */
  peer: { host: string; port: number };
}

/** Where a UDP end listens: the address this host sends to its peer from, and the port. */
export interface UdpEndpoint {
  address: string;
  port: number;
}

export interface CableInfo {
  name: string;
  network: string;
  kind: "ssh" | "udp";
  up: boolean;
  pid?: number;
  /** SSH cables: the key the far end lets in. */
  publicKey?: string;
  /** UDP cables: this end's address and port. */
  local?: UdpEndpoint;
}

interface CableRecord {
  schemaVersion: number;
  /** Absent while a UDP end is only reserved. */
  spec?: CableSpec;
  process?: ProcessIdentity;
  publicKey?: string;
  local?: UdpEndpoint;
}

export const CABLE_NAME = /^[a-z][a-z0-9-]{0,63}$/;
const MARK = "umlfleet-cable";

export class Cables {
  constructor(
    private readonly state: StateDir,
    private readonly switchDir: (network: string) => string | undefined,
  ) {}

  private dir = (name: string) => join(this.state.root, "cables", name);
  private record = (name: string) => readJson<CableRecord>(join(this.dir(name), "cable.json"));

  /** The cable's key pair on this host (made once); its public half. */
  async prepare(name: string): Promise<string> {
    const dir = this.dir(name);
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const key = join(dir, "key");
    if (!existsSync(`${key}.pub`)) {
      rmSync(key, { force: true });
      await run("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", `${MARK}-${name}`, "-f", key], {
        timeoutMs: 30_000,
      });
    }
    return readFileSync(`${key}.pub`, "utf8").trim().split(/\s+/).slice(0, 2).join(" ");
  }

  /**
   * A UDP end's address and port, toward `peerHost`: the port kept from
   * before when this end runs or the port is still free, else a free one.
   * The address is the one this host's routes send from toward the peer, so
   * the end listens on that address only.
   */
  async reserve(name: string, peerHost: string): Promise<UdpEndpoint> {
    const r = this.record(name);
    if (r?.local && r.spec?.kind === "udp" && isUp(r)) return r.local;
    const local = await freeUdpEndpoint(peerHost, r?.local?.port);
    mkdirSync(this.dir(name), { recursive: true, mode: 0o700 });
    writeJson(join(this.dir(name), "cable.json"), {
      ...(r ?? { schemaVersion: STATE_SCHEMA_VERSION }),
      local,
    });
    return local;
  }

  info(name: string): CableInfo | undefined {
    const r = this.record(name);
    if (!r?.spec) return undefined;
    const up = isUp(r);
    return {
      name,
      network: r.spec.network,
      kind: r.spec.kind ?? "ssh",
      up,
      ...(up ? { pid: r.process!.pid } : {}),
      ...(r.publicKey ? { publicKey: r.publicKey } : {}),
      ...(r.spec.kind === "udp" && r.local ? { local: r.local } : {}),
    };
  }

  /** Plug the cable in (again, when it is down or its spec changed). */
  async ensure(spec: CableSpec): Promise<CableInfo> {
    const dir = this.dir(spec.name);
    const old = this.record(spec.name);
    if (old?.spec && isUp(old) && JSON.stringify(old.spec) === JSON.stringify(spec))
      return this.info(spec.name)!;
    if (old) await this.unplug(spec.name, old);
    const switchDir = this.switchDir(spec.network);
    if (!switchDir)
      throw new UmlfleetError(
        "UMLFLEET_NOT_FOUND",
        `cable ${spec.name}: network ${JSON.stringify(spec.network)} does not exist`,
        {
          field: "network",
          value: spec.network,
        },
      );
    const r: CableRecord = {
      schemaVersion: STATE_SCHEMA_VERSION,
      spec,
      ...(spec.kind === "udp" ? await this.udpEnd(spec, switchDir) : await this.sshEnd(spec, switchDir)),
    };
    writeJson(join(dir, "cable.json"), r);
    if (spec.kind !== "udp") {
      // ssh touches the marker once it is in (LocalCommand, after authentication); a refused
      // key or host key, or no answer within its ConnectTimeout, ends it before.
      const connected = join(dir, "connected");
      let sshSeen = false;
      for (let t = Date.now(); Date.now() - t < 20_000; await sleep(20)) {
        if (existsSync(connected) || !isAlive(r.process)) break;
        // dpipe forks its ssh a moment after it starts, and outlives it.
        if (isUp(r)) sshSeen = true;
        else if (sshSeen) break;
      }
    }
    // What fails after that fails at once (the far end's vde_plug finds no switch, a UDP port
    // taken ends vde_plug): a moment to tell.
    await sleep(spec.kind === "udp" ? 300 : 200);
    const info = this.info(spec.name)!;
    if (!info.up) {
      // Nothing of it runs on (dpipe and its vde_plug outlive a refused ssh).
      await this.unplug(spec.name, r);
      const tail = readFileSync(join(dir, "cable.log"), "utf8").trim().split("\n").slice(-3).join(" | ");
      throw new UmlfleetError(
        "UMLFLEET_COMMAND_FAILED",
        `cable ${spec.name} to ${spec.kind === "udp" ? "udp:" : `${spec.peer.user}@`}${spec.peer.host}:${spec.peer.port} did not stay up: ${tail || "no message"}`,
        {
          name: spec.name,
        },
      );
    }
    return info;
  }

  private async sshEnd(spec: SshCableSpec, switchDir: string): Promise<Omit<CableRecord, "schemaVersion">> {
    const dir = this.dir(spec.name);
    const publicKey = await this.prepare(spec.name);
    rmSync(join(dir, "connected"), { force: true });
    const { host, port, user, hostKey } = spec.peer;
    writeFileSync(join(dir, "known_hosts"), `${port === 22 ? host : `[${host}]:${port}`} ${hostKey}\n`, {
      mode: 0o600,
    });
    // dpipe stops reading options at its first command; vde_plug reads them
    // anywhere on its line, so ssh's options must not be on vde_plug's side.
    const argv = [
      findOnPath("dpipe"),
      findOnPath("vde_plug"),
      `vde://${switchDir}`,
      "=",
      findOnPath("ssh"),
      "-T",
      "-i",
      join(dir, "key"),
      "-o",
      "IdentitiesOnly=yes",
      "-o",
      "BatchMode=yes",
      "-o",
      "StrictHostKeyChecking=yes",
      "-o",
      `UserKnownHostsFile=${join(dir, "known_hosts")}`,
      "-o",
      "ServerAliveInterval=5",
      "-o",
      "ServerAliveCountMax=3",
      "-o",
      "ConnectTimeout=15",
      "-o",
      "PermitLocalCommand=yes",
      "-o",
      // ssh expands %-tokens in it: a literal % doubled.
      `LocalCommand=touch ${shellQuote(join(dir, "connected")).replace(/%/g, "%%")}`,
      "-p",
      String(port),
      "-l",
      user,
      "--",
      host,
    ];
    // Not detached: dpipe makes its own process group (it fails as a session
    // leader, "cannot create pgrp"), which is what outlives the agent.
    return { process: this.start(spec.name, argv, false), publicKey };
  }

  private async udpEnd(spec: UdpCableSpec, switchDir: string): Promise<Omit<CableRecord, "schemaVersion">> {
    const local = await this.reserve(spec.name, spec.peer.host);
    // vdeplug4 splits each side at its last ':', so IPv6 addresses go bare.
    const url = `udp://${local.address}:${local.port}->${spec.peer.host}:${spec.peer.port}`;
    // vdeplug4 connects its UDP socket at its first send. A frame sent before the far end
    // listens brings back an ICMP port unreachable: the socket's error then ends vde_plug at
    // its next receive (status 0; measured: the far end's first frames then killed the cable).
    // So it runs again whenever it ends so; it ends with 1 when it cannot open (no switch, the
    // port taken), and the loop with it. Its own session: the process group is what `unplug` kills.
    const loop = 'while "$0" "$@"; do sleep 0.1; done';
    const argv = ["/bin/sh", "-c", loop, findOnPath("vde_plug"), `vde://${switchDir}`, url];
    return { process: this.start(spec.name, argv, true), local };
  }

  private start(name: string, argv: string[], detached: boolean): ProcessIdentity {
    const log = openSync(join(this.dir(name), "cable.log"), "a", 0o600);
    const child = spawn(argv[0]!, argv.slice(1), {
      detached,
      stdio: ["ignore", log, log],
      env: { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: process.env.HOME ?? homedir() },
    });
    closeSync(log);
    child.unref();
    const proc = child.pid ? identify(child.pid) : null;
    if (!proc)
      throw new UmlfleetError("UMLFLEET_COMMAND_FAILED", `cable ${name}: ${argv[0]} did not start`, {});
    return proc;
  }

  async remove(name: string): Promise<void> {
    const r = this.record(name);
    if (r) await this.unplug(name, r);
    rmSync(this.dir(name), { recursive: true, force: true });
  }

  /**
   * End a cable's processes: its process group, and (SSH) its ssh even when
   * dpipe died alone (its children live on, still carrying frames: measured).
   * The ssh names the cable's key; once it is gone, vde_plug reads EOF and ends.
   */
  private async unplug(name: string, r: CableRecord): Promise<void> {
    if (r.process) await killGroup(r.process).catch(() => undefined);
    await killAllNaming(this.dir(name));
  }

  list(): string[] {
    const d = join(this.state.root, "cables");
    return existsSync(d) ? readdirSync(d) : [];
  }
}

/** SSH: dpipe runs, and so does its ssh (dpipe outlives a dead ssh). UDP: the loop that runs its vde_plug. */
function isUp(r: CableRecord): boolean {
  const p = r.process;
  if (!p || !isAlive(p)) return false;
  if (r.spec?.kind === "udp") return true;
  return childrenOf(p.pid).some((c) => {
    try {
      return readFileSync(`/proc/${c}/cmdline`, "utf8").split("\0")[0]!.endsWith("/ssh");
    } catch {
      return false;
    }
  });
}

/**
 * A UDP port free on this host, and the address it sends from toward
 * `peerHost` (by this host's routes: a connected socket's own address).
 * `prefer` is tried first, so a repaired end keeps its port.
 */
async function freeUdpEndpoint(peerHost: string, prefer?: number): Promise<UdpEndpoint> {
  const peer = isIP(peerHost) ? peerHost : (await lookup(peerHost)).address;
  const type = isIP(peer) === 6 ? "udp6" : "udp4";
  const attempt = (port: number) =>
    new Promise<UdpEndpoint>((resolve, reject) => {
      const s = createSocket(type);
      s.once("error", (e) => {
        s.close();
        reject(e);
      });
      s.bind(port, () =>
        s.connect(9, peer, () => {
          const { address, port: bound } = s.address();
          s.close();
          resolve({ address, port: bound });
        }),
      );
    });
  if (prefer) {
    try {
      return await attempt(prefer);
    } catch {
      /* taken since: a new one */
    }
  }
  try {
    return await attempt(0);
  } catch (e) {
    throw new UmlfleetError(
      "UMLFLEET_COMMAND_FAILED",
      `no UDP port toward ${peerHost}: ${(e as Error).message}`,
      { peer: peerHost },
    );
  }
}

function childrenOf(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, "utf8")
      .trim()
      .split(/\s+/)
      .filter(Boolean)
      .map(Number);
  } catch {
    return [];
  }
}

// ---- the far end: authorized_keys ----------------------------------------------------

/**
 * Let a cable's key in, for one command only: plugging into this host's
 * switch. The line is marked with the state folder and cable name, so it is
 * found and removed with the cable; other lines are kept as they are.
 */
export function allowCableEnd(
  stateRoot: string,
  name: string,
  publicKey: string,
  switchDir: string,
  vdePlug: string,
): void {
  const tag = `${MARK}:${stateRoot}/${name}`;
  const line = `restrict,command="exec ${vdePlug} vde://${switchDir}" ${publicKey} ${tag}`;
  editAuthorizedKeys((lines) => [...lines.filter((l) => !l.endsWith(` ${tag}`)), line]);
}

export function removeCableEnd(stateRoot: string, name: string): void {
  const tag = `${MARK}:${stateRoot}/${name}`;
  editAuthorizedKeys((lines) => lines.filter((l) => !l.endsWith(` ${tag}`)));
}

/** Cable ends of this state folder present in authorized_keys (for leak checks). */
export function cableEnds(stateRoot: string): string[] {
  return readAuthorized()
    .filter((l) => l.includes(` ${MARK}:${stateRoot}/`))
    .map((l) => l.slice(l.lastIndexOf("/") + 1));
}

const authorizedKeys = () => join(homedir(), ".ssh", "authorized_keys");

function readAuthorized(): string[] {
  try {
    return readFileSync(authorizedKeys(), "utf8")
      .split("\n")
      .filter((l) => l !== "");
  } catch {
    return [];
  }
}

function editAuthorizedKeys(edit: (lines: string[]) => string[]): void {
  const file = authorizedKeys();
  mkdirSync(join(homedir(), ".ssh"), { recursive: true, mode: 0o700 });
  const next = edit(readAuthorized());
  const tmp = `${file}.umlfleet-${process.pid}`;
  writeFileSync(tmp, next.map((l) => `${l}\n`).join(""), { mode: 0o600 });
  renameSync(tmp, file);
}
