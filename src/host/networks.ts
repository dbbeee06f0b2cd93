import { existsSync, mkdirSync, readdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import { refuseIfInUse, UmlfleetError } from "../errors";
import type { NetworkSpec, ShareSpec } from "../spec";
import { captureRoots } from "../feature-checks";
import { checkCapture, startCapture, stopCapture } from "./capture";
import { checkHostLink, closeHostLink, openHostLink, type HostLinkRecord } from "./host-link";
import { identify, isAlive, killGroup, run, signalGroup, waitFor, type ProcessIdentity } from "../process";
import {
  binaryFiles,
  findOnPath,
  readSandboxPid,
  removeTree,
  SANDBOX_BIN,
  spawnSandboxed,
  switchSandboxArgv,
} from "./sandbox";
import { SECCOMP_FD, seccompFile } from "./seccomp";
import { claimed, refuseForeign, withOwners, type Owned } from "./owners";
import { readJson, STATE_SCHEMA_VERSION, writeJson, type StateDir } from "./state";

export interface NetworkRecord extends Owned {
  schemaVersion: number;
  spec: NetworkSpec;
  /** The switch folder (vde_switch -s); NICs connect to `<switchDir>/ctl`. */
  switchDir: string;
  /** vde_switch itself (pid 1 of its sandbox). */
  switch?: ProcessIdentity;
  /** Its sandbox's outer bwrap, outside the namespaces. */
  sandbox?: ProcessIdentity;
  /** The host's tap on this network, and what umlfleet made of it (host-link.ts). */
  hostLink?: HostLinkRecord;
  /** The capture writer (capture.ts), while the network is captured. */
  captureWriter?: ProcessIdentity;
}

export interface NetworksOptions {
  /** Folders capture files may be written in. Default: captureRoots(). */
  captureDirs?: readonly string[];
  /** Every instance's shares: a capture may not overlap them. */
  shares?: () => { instance: string; shares: readonly ShareSpec[] }[];
}

export interface NetworkStatus {
  name: string;
  running: boolean;
  pid?: number;
  switchDir: string;
}

/** One vde_switch per network, running detached; any later process re-adopts it by its record. */
export class Networks {
  constructor(
    private readonly state: StateDir,
    private readonly opts: NetworksOptions = {},
  ) {}

  get(name: string): NetworkRecord | undefined {
    return readJson<NetworkRecord>(this.state.networkRecord(name));
  }

  require(name: string, field: string): NetworkRecord {
    const r = this.get(name);
    if (!r) {
      throw new UmlfleetError(
        "UMLFLEET_NOT_FOUND",
        `${field}: network ${JSON.stringify(name)} does not exist`,
        {
          field,
          value: name,
        },
      );
    }
    return r;
  }

  isRunning(r: NetworkRecord): boolean {
    return this.switchRuns(r) && (!r.spec.capture || isAlive(r.captureWriter));
  }

  private switchRuns(r: NetworkRecord): boolean {
    return isAlive(r.switch) && existsSync(join(r.switchDir, "ctl"));
  }

  /** Every network's capture, for checks against shares. */
  captures(): { network: string; capture?: NetworkSpec["capture"] }[] {
    return this.state.list("networks").map((n) => ({ network: n, capture: this.get(n)?.spec.capture }));
  }

  status(name: string): NetworkStatus | undefined {
    const r = this.get(name);
    if (!r) return undefined;
    const running = this.isRunning(r);
    return { name, running, pid: running ? r.switch?.pid : undefined, switchDir: r.switchDir };
  }

  /** Start the switch if it is not running (also repairs a switch that died). Another stack's is refused. */
  async ensure(spec: NetworkSpec, signal?: AbortSignal, owner?: string): Promise<NetworkRecord> {
    const existing = this.get(spec.name);
    refuseForeign("network", spec.name, existing, owner, "create", this.state.root);
    const owners = claimed(existing, owner);
    if (existing) {
      if (JSON.stringify(existing.spec) !== JSON.stringify(spec)) {
        throw new UmlfleetError(
          "UMLFLEET_CONFLICT",
          `network ${JSON.stringify(spec.name)} exists with another spec`,
          {
            name: spec.name,
          },
        );
      }
      if (this.isRunning(existing)) {
        if (JSON.stringify(owners) === JSON.stringify(existing.owners)) return existing;
        const adopted = withOwners(existing, owners);
        writeJson(this.state.networkRecord(spec.name), adopted);
        return adopted;
      }
    }
    const switchDir = this.state.switchDir(spec.name);
    const runDir = this.runDir(spec.name);
    // Host link and capture are checked before anything is made or stopped.
    const others = this.state
      .list("networks")
      .filter((n) => n !== spec.name)
      .map((n) => ({ network: n, ...this.get(n)?.spec }));
    if (spec.hostInterface) await checkHostLink(spec.name, spec.hostInterface, others);
    const capture = spec.capture
      ? checkCapture(spec.name, spec.capture, {
          stateRoot: this.state.root,
          roots: this.opts.captureDirs ?? captureRoots(),
          shares: this.opts.shares?.() ?? [],
          others,
        })
      : undefined;
    const captureLog = join(runDir, "capture.log");
    if (existing && capture && this.switchRuns(existing)) {
      // Only the writer died: plug a new one in, appending; the guests stay connected.
      const captureWriter = await startCapture(
        spec.name,
        capture,
        switchDir,
        captureLog,
        true,
        seccompFile(this.state.root),
      );
      const repaired = withOwners({ ...existing, captureWriter }, owners);
      writeJson(this.state.networkRecord(spec.name), repaired);
      return repaired;
    }
    if (existing) await this.stopSwitch(existing);
    // Guests can write the switch folder: its entries go only with rm -r
    // (sandbox.ts). The folder itself is kept: running guests' sandboxes bind
    // it, and see the restarted switch's sockets in it (replugNics).
    if (existsSync(switchDir))
      for (const entry of readdirSync(switchDir)) await removeTree(join(switchDir, entry));
    rmSync(runDir, { recursive: true, force: true });
    mkdirSync(switchDir, { recursive: true, mode: 0o700 });
    mkdirSync(runDir, { recursive: true, mode: 0o700 });
    const stdin = join(runDir, "stdin");
    const info = join(runDir, "sandbox.json");
    await run("mkfifo", ["-m", "600", stdin], { timeoutMs: 60_000, signal });
    // A captured network forwards like a hub: the capture's port sees every frame.
    // As root, guests may run as other uids (runAs): they must reach the ctl
    // socket and make their own in the folder (sticky: none removes
    // another's). Only guests reach it: the state folder is its owner's alone.
    const args = ["-s", switchDir, "-m", "600", "-n", String(spec.ports ?? 64)];
    if (process.getuid?.() === 0) args.splice(2, 2, "-m", "666", "--dirmode", "1777");
    if (spec.hub || spec.capture) args.push("-x");
    let vdeSwitch: string;
    try {
      vdeSwitch = findOnPath("vde_switch");
    } catch {
      throw new UmlfleetError("UMLFLEET_SWITCH_FAILED", "vde_switch is not on PATH (apt-get install vde2)", {
        name: spec.name,
      });
    }
    const hostLink = spec.hostInterface
      ? await openHostLink(spec.hostInterface, existing?.hostLink)
      : undefined;
    if (hostLink) args.push("-t", hostLink.name);
    const seccomp = seccompFile(this.state.root);
    const argv = [
      SANDBOX_BIN,
      ...switchSandboxArgv(switchDir, binaryFiles(vdeSwitch), 3, {
        hostLink: !!hostLink,
        ...(seccomp ? { seccompFd: SECCOMP_FD } : {}),
      }),
      vdeSwitch,
      ...args,
    ];
    const outer = spawnSandboxed(argv, { stdin, log: join(runDir, "switch.log"), info, seccomp });
    const sw = await waitFor(
      () => {
        if (!existsSync(join(switchDir, "ctl"))) return undefined;
        const pid = readSandboxPid(info);
        return pid ? identify(pid) : undefined;
      },
      10_000,
      25,
      signal,
    );
    const undo = async (e: unknown) => {
      if (outer) await killGroup(outer);
      await removeTree(switchDir);
      // A first start undoes its host link; a restart's record still names it for remove().
      if (hostLink && !existing) await closeHostLink(hostLink);
      rmSync(runDir, { recursive: true, force: true });
      return e;
    };
    if (!sw || !outer) {
      throw await undo(
        new UmlfleetError("UMLFLEET_SWITCH_FAILED", `vde_switch for ${spec.name} did not come up`, {
          args,
        }),
      );
    }
    let captureWriter: ProcessIdentity | undefined;
    if (capture) {
      captureWriter = await startCapture(
        spec.name,
        capture,
        switchDir,
        captureLog,
        !!existing,
        seccomp,
      ).catch(async (e: unknown) => {
        throw await undo(e);
      });
    }
    const record: NetworkRecord = {
      schemaVersion: STATE_SCHEMA_VERSION,
      spec,
      switchDir,
      switch: sw,
      sandbox: outer,
      ...(hostLink ? { hostLink } : {}),
      ...(captureWriter ? { captureWriter } : {}),
      ...(owners ? { owners } : {}),
    };
    writeJson(this.state.networkRecord(spec.name), record);
    return record;
  }

  async remove(name: string, usedBy: string[], owner?: string): Promise<void> {
    const r = this.get(name);
    if (!r) return;
    refuseForeign("network", name, r, owner, "remove", this.state.root);
    refuseIfInUse("network", name, usedBy, "instances");
    await this.stopSwitch(r);
    if (r.hostLink) await closeHostLink(r.hostLink);
    await removeTree(r.switchDir);
    rmSync(this.runDir(name), { recursive: true, force: true });
    rmSync(this.state.networkRecord(name), { force: true });
  }

  /** Host-only files of a running switch (its console FIFO, bwrap's report, its log): outside every sandbox. */
  private runDir(name: string): string {
    return join(this.state.root, "networks", `${name}.run`);
  }

  /** SIGTERM lets vde_switch remove its sockets; then its namespace and sandbox go for good. */
  private async stopSwitch(r: NetworkRecord): Promise<void> {
    await stopCapture(r.captureWriter);
    if (r.switch && isAlive(r.switch)) {
      signalGroup(r.switch, "SIGTERM");
      if (!(await waitFor(() => !isAlive(r.switch), 3_000))) await killGroup(r.switch);
    }
    if (r.sandbox) await killGroup(r.sandbox);
  }
}
