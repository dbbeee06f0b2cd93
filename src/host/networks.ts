import { existsSync, mkdirSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { refuseIfInUse, UmlfleetError } from "../errors";
import type { NetworkSpec } from "../spec";
import { identify, isAlive, killGroup, run, signalGroup, waitFor, type ProcessIdentity } from "./process";
import { readJson, STATE_SCHEMA_VERSION, writeJson, type StateDir } from "./state";

export interface NetworkRecord {
  schemaVersion: number;
  spec: NetworkSpec;
  /** The switch folder (vde_switch -s); NICs connect to `<switchDir>/ctl`. */
  switchDir: string;
  switch?: ProcessIdentity;
}

export interface NetworkStatus {
  name: string;
  running: boolean;
  pid?: number;
  switchDir: string;
}

/** One vde_switch per network, running detached; any later process re-adopts it by its record. */
export class Networks {
  constructor(private readonly state: StateDir) {}

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
    return isAlive(r.switch) && existsSync(join(r.switchDir, "ctl"));
  }

  status(name: string): NetworkStatus | undefined {
    const r = this.get(name);
    if (!r) return undefined;
    const running = this.isRunning(r);
    return { name, running, pid: running ? r.switch?.pid : undefined, switchDir: r.switchDir };
  }

  /** Start the switch if it is not running (also repairs a switch that died). */
  async ensure(spec: NetworkSpec): Promise<NetworkRecord> {
    const existing = this.get(spec.name);
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
      if (this.isRunning(existing)) return existing;
    }
    const switchDir = this.state.switchDir(spec.name);
    const pidFile = `${switchDir}.pid`;
    rmSync(switchDir, { recursive: true, force: true });
    rmSync(pidFile, { force: true });
    mkdirSync(this.state.switches(), { recursive: true, mode: 0o700 });
    const args = ["-d", "-s", switchDir, "-p", pidFile, "-m", "600", "-n", String(spec.ports ?? 64)];
    if (spec.hub) args.push("-x");
    // -d: vde_switch daemonizes (setsid) and writes its pid file; we keep no child.
    await run("vde_switch", args, { timeoutMs: 10_000 });
    const sw = await waitFor(() => {
      if (!existsSync(join(switchDir, "ctl")) || !existsSync(pidFile)) return undefined;
      const pid = Number(readFileSync(pidFile, "utf8").trim());
      return pid > 0 ? identify(pid) : undefined;
    }, 10_000);
    rmSync(pidFile, { force: true });
    if (!sw) {
      rmSync(switchDir, { recursive: true, force: true });
      throw new UmlfleetError("UMLFLEET_SWITCH_FAILED", `vde_switch for ${spec.name} did not come up`, {
        args,
      });
    }
    const record: NetworkRecord = { schemaVersion: STATE_SCHEMA_VERSION, spec, switchDir, switch: sw };
    writeJson(this.state.networkRecord(spec.name), record);
    return record;
  }

  async remove(name: string, usedBy: string[]): Promise<void> {
    const r = this.get(name);
    if (!r) return;
    refuseIfInUse("network", name, usedBy, "instances");
    await this.stopSwitch(r);
    rmSync(r.switchDir, { recursive: true, force: true });
    rmSync(this.state.networkRecord(name), { force: true });
  }

  private async stopSwitch(r: NetworkRecord): Promise<void> {
    if (!r.switch || !isAlive(r.switch)) return;
    signalGroup(r.switch, "SIGTERM");
    if (!(await waitFor(() => !isAlive(r.switch), 3_000))) await killGroup(r.switch);
  }
}
