import { spawn } from "node:child_process";
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
import { join } from "node:path";
import { UmlfleetError } from "../errors";
import { identify, isAlive, killAllNaming, killGroup, run, sleep, type ProcessIdentity } from "../process";
import { findOnPath } from "./sandbox";
import { readJson, STATE_SCHEMA_VERSION, writeJson, type StateDir } from "./state";

/**
 * Cables between the switches of one network on two hosts (docs/hosts.md):
 * on host A, `dpipe vde_plug <switch A> = ssh -i <cable key> B`, detached
 * (it outlives `pulumi up`), with B's host key pinned; on host B, the
 * cable's public key in the user's authorized_keys, restricted to one
 * command: `vde_plug <switch B>`. The private key is made on A and never
 * leaves it. A cable is recorded like a switch (`<stateDir>/cables/<name>/`)
 * and re-adopted by any later agent; it is up while dpipe and its ssh run.
 */
export interface CableSpec {
  /** The cable's name, unique on this host. */
  name: string;
  /** The network (switch) on this host it plugs into. */
  network: string;
  /** Where its far end is: B as this host reaches it. */
  peer: { host: string; port: number; user: string; hostKey: string };
}

export interface CableInfo {
  name: string;
  network: string;
  up: boolean;
  pid?: number;
  publicKey: string;
}

interface CableRecord {
  schemaVersion: number;
  spec: CableSpec;
  process?: ProcessIdentity;
  publicKey: string;
}

export const CABLE_NAME = /^[a-z][a-z0-9-]{0,63}$/;
const MARK = "umlfleet-cable";

export class Cables {
  constructor(
    private readonly state: StateDir,
    private readonly switchDir: (network: string) => string | undefined,
  ) {}

  private dir = (name: string) => join(this.state.root, "cables", name);

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

  info(name: string): CableInfo | undefined {
    const r = readJson<CableRecord>(join(this.dir(name), "cable.json"));
    if (!r) return undefined;
    const up = isUp(r.process);
    return {
      name,
      network: r.spec.network,
      up,
      ...(up ? { pid: r.process!.pid } : {}),
      publicKey: r.publicKey,
    };
  }

  /** Plug the cable in (again, when it is down or its spec changed). */
  async ensure(spec: CableSpec): Promise<CableInfo> {
    const dir = this.dir(spec.name);
    const old = readJson<CableRecord>(join(dir, "cable.json"));
    if (old && isUp(old.process) && JSON.stringify(old.spec) === JSON.stringify(spec))
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
    const publicKey = await this.prepare(spec.name);
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
      "-p",
      String(port),
      "-l",
      user,
      "--",
      host,
    ];
    const log = openSync(join(dir, "cable.log"), "a", 0o600);
    // Not detached: dpipe makes its own process group (it fails as a session
    // leader, "cannot create pgrp"), which is what outlives the agent.
    const child = spawn(argv[0]!, argv.slice(1), {
      detached: false,
      stdio: ["ignore", log, log],
      env: { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: process.env.HOME ?? homedir() },
    });
    closeSync(log);
    child.unref();
    const proc = child.pid ? identify(child.pid) : null;
    if (!proc)
      throw new UmlfleetError("UMLFLEET_COMMAND_FAILED", `cable ${spec.name}: dpipe did not start`, {});
    writeJson(join(dir, "cable.json"), {
      schemaVersion: STATE_SCHEMA_VERSION,
      spec,
      process: proc,
      publicKey,
    });
    // A refused key or host key ends ssh at once: wait a moment to tell.
    await sleep(1_500);
    const info = this.info(spec.name)!;
    if (!info.up) {
      const tail = readFileSync(join(dir, "cable.log"), "utf8").trim().split("\n").slice(-3).join(" | ");
      throw new UmlfleetError(
        "UMLFLEET_COMMAND_FAILED",
        `cable ${spec.name} to ${user}@${host}:${port} did not stay up: ${tail}`,
        {
          name: spec.name,
        },
      );
    }
    return info;
  }

  async remove(name: string): Promise<void> {
    const r = readJson<CableRecord>(join(this.dir(name), "cable.json"));
    if (r) await this.unplug(name, r);
    rmSync(this.dir(name), { recursive: true, force: true });
  }

  /**
   * End a cable's processes: dpipe's group, and its ssh even when dpipe
   * died alone (its children live on, still carrying frames: measured). The
   * ssh names the cable's key; once it is gone, vde_plug reads EOF and ends.
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

/** dpipe runs, and so does its ssh (dpipe outlives a dead ssh). */
function isUp(p: ProcessIdentity | undefined): boolean {
  if (!p || !isAlive(p)) return false;
  return childrenOf(p.pid).some((c) => {
    try {
      return readFileSync(`/proc/${c}/cmdline`, "utf8").split("\0")[0]!.endsWith("/ssh");
    } catch {
      return false;
    }
  });
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
