import { handOver, type HostIds } from "../host-users";
import { existsSync, linkSync, mkdirSync, rmSync, unlinkSync } from "node:fs";
import { join } from "node:path";
import { planInstanceChange, type ChangePlan } from "../../change-plan";
import { UmlfleetError } from "../../errors";
import { isAlive } from "../../process";
import { type BootDisk, type NicDriver } from "../../uml/argv";
import { MconsoleClient } from "../../uml/mconsole";
import { tailOf } from "../console-log";
import type { Disks } from "../disks";
import { execOverChannel, type ExecResult } from "../guest-channel";
import type { Networks } from "../networks";
import type { Bind } from "../sandbox";
import { checkShares } from "../shares";
import { DelayCalibration } from "../delay-calibration";
import { checkSharesAgainstCaptures } from "../capture";
import { checkSources } from "../guest-setup";
import { claimed, refuseForeign, withOwners } from "../owners";
import { readJson, STATE_SCHEMA_VERSION, withLock, writeJson, writeJsonAsync, type StateDir } from "../state";
import { bootGuest, finishBoot } from "./boot";
import { kernelNicDriver } from "./boot-plan";
import { makeFifos } from "./fifos";
import { applyLive } from "./hotplug";
import { inspect, statusOf, type InstanceInspection } from "./status";
import { stopGuest } from "./stop";
import {
  SWAP_UBD_INDEX,
  UMID,
  vmDiskEntry,
  type InstanceRecord,
  type InstanceStatus,
  type Spec,
  type StartOptions,
  type StopOptions,
} from "./types";

/** Locks wait this long for another operation on the same instance (then UMLFLEET_LOCK_TIMEOUT). */
const LOCK_WAIT_MS = 120_000;

/**
 * UML instances: boot detached in a sandbox, re-adopt, stop, hot-plug, exec.
 * The lifecycle steps live beside this file (boot.ts, stop.ts, hotplug.ts);
 * this class holds the records, the locks and what those steps share.
 */
export class Instances {
  /** Per kernel binary: what its sandbox binds (ldd is slow). */
  readonly kernelFileCache = new Map<string, Bind[]>();
  /** Delay-loop values kept from calibrating boots, passed as lpj= to later ones. */
  readonly calibration: DelayCalibration;

  constructor(
    readonly state: StateDir,
    readonly disks: Disks,
    readonly networks: Networks,
  ) {
    this.calibration = new DelayCalibration(state.root);
  }

  get(name: string): InstanceRecord | undefined {
    return readJson<InstanceRecord>(this.state.instanceRecord(name));
  }

  require(name: string): InstanceRecord {
    const r = this.get(name);
    if (!r)
      throw new UmlfleetError("UMLFLEET_NOT_FOUND", `instance ${JSON.stringify(name)} does not exist`, {
        name,
      });
    return r;
  }

  list(): string[] {
    return this.state.list("instances").filter((n) => existsSync(this.state.instanceRecord(n)));
  }

  isRunning(r: InstanceRecord | undefined): boolean {
    return !!r && isAlive(r.process);
  }

  mconsoleSocket(name: string): string {
    return join(this.state.vmDir(name), UMID, "mconsole");
  }

  /**
   * The guest's mconsole, spoken from inside its own sandbox (mconsole.ts:
   * the socket lies where the guest can replace it). Without a live sandbox
   * there is no guest to speak to: UMLFLEET_NOT_RUNNING, and nothing is sent
   * to whatever the socket's path may name by now.
   */
  mconsole(name: string, timeoutMs = 5_000, r: InstanceRecord | undefined = this.get(name)): MconsoleClient {
    if (!r?.sandbox || !isAlive(r.sandbox) || !isAlive(r.process))
      throw new UmlfleetError(
        "UMLFLEET_NOT_RUNNING",
        `instance ${name} has no running sandbox to reach its mconsole in`,
        {
          name,
        },
      );
    return new MconsoleClient(this.mconsoleSocket(name), timeoutMs, r.sandbox.pid);
  }

  fifo(name: string, channel: string, end: "in" | "out"): string {
    return join(this.state.fifoDir(name), `${channel}.${end}`);
  }

  /** Where bwrap reports the sandbox's pid 1 (a host-only file: the instance folder is outside the sandbox). */
  sandboxInfoFile(name: string): string {
    return join(this.state.instanceDir(name), "sandbox.json");
  }

  /**
   * Define and boot an instance. A no-op when it runs with this spec; boots it
   * when it exists stopped with this spec; sees a boot to its end that a
   * killed process left under way. A failed first boot removes every file it
   * made and leaves no process.
   */
  async create(spec: Spec, opts: StartOptions = {}): Promise<InstanceStatus> {
    return this.locked(spec.name, opts.signal, async () => {
      const existing = this.get(spec.name);
      refuseForeign("instance", spec.name, existing, opts.owner, "create", this.state.root);
      const owners = claimed(existing, opts.owner);
      if (existing) {
        if (JSON.stringify(existing.spec) !== JSON.stringify(spec)) {
          throw new UmlfleetError(
            "UMLFLEET_CONFLICT",
            `instance ${JSON.stringify(spec.name)} exists with another spec; use update`,
            {
              name: spec.name,
            },
          );
        }
        const adopted = withOwners(existing, owners);
        await writeJsonAsync(this.state.instanceRecord(spec.name), adopted);
        if (!this.isRunning(adopted)) await bootGuest(this, adopted, opts, false);
        else await finishBoot(this, adopted, opts);
        return this.status(spec.name);
      }
      const record = withOwners<InstanceRecord>(
        { schemaVersion: STATE_SCHEMA_VERSION, spec, bootCount: 0 },
        owners,
      );
      // Every reference checked before anything is written.
      await this.checkAndRecord(spec, async () => {
        mkdirSync(this.state.instanceDir(spec.name), { recursive: true, mode: 0o700 });
        // No fsync before the launch (it cost 0-20 ms of every boot): the boot writes the record durably once the guest runs.
        writeJson(this.state.instanceRecord(spec.name), record, { durable: false });
        await this.makeFifos(spec);
      });
      try {
        await bootGuest(this, record, opts, true);
      } catch (e) {
        rmSync(this.state.instanceDir(spec.name), { recursive: true, force: true });
        throw e;
      }
      return this.status(spec.name);
    });
  }

  async start(name: string, opts: StartOptions = {}): Promise<InstanceStatus> {
    return this.locked(name, opts.signal, async () => {
      const r = this.require(name);
      if (!this.isRunning(r)) await bootGuest(this, r, opts, false);
      else await finishBoot(this, r, opts);
      return this.status(name);
    });
  }

  async stop(name: string, opts: StopOptions = {}): Promise<void> {
    return this.locked(name, opts.signal, async () => stopGuest(this, this.require(name), opts));
  }

  async restart(name: string, opts: StartOptions & StopOptions = {}): Promise<InstanceStatus> {
    return this.locked(name, opts.signal, async () => {
      await stopGuest(this, this.require(name), opts);
      await bootGuest(this, this.require(name), opts, false);
      return this.status(name);
    });
  }

  /** Stop (if running) and delete the instance's folder. Its disks are left alone. */
  async remove(name: string, opts: StopOptions = {}): Promise<void> {
    return this.locked(name, opts.signal, async () => {
      const r = this.get(name);
      refuseForeign("instance", name, r, opts.owner, "remove", this.state.root);
      if (r) await stopGuest(this, r, opts);
      rmSync(this.state.instanceDir(name), { recursive: true, force: true });
    });
  }

  status(name: string): InstanceStatus {
    return statusOf(this, this.require(name));
  }

  /**
   * status() plus what only the running guest can tell: uptime, the kernel's
   * version, and each disk's files as UML's mconsole reports them (`config ubdN`).
   */
  inspect(name: string): Promise<InstanceInspection> {
    return inspect(this, name);
  }

  /** The last `lines` lines of the console log (this boot's: each boot starts its own). */
  consoleTail(name: string, lines = 40): string {
    return tailOf(this.state.consoleLog(name), lines);
  }

  /**
   * Run a shell script in the guest (umlfleet's init only) and return its exit
   * code and output. Default deadline 30 s: UMLFLEET_EXEC_TIMEOUT after it.
   */
  async exec(
    name: string,
    script: string,
    opts: { timeoutMs?: number; signal?: AbortSignal } = {},
  ): Promise<ExecResult> {
    const r = this.require(name);
    if (!this.isRunning(r))
      throw new UmlfleetError("UMLFLEET_NOT_RUNNING", `instance ${name} is not running`, { name });
    const timeoutMs = opts.timeoutMs ?? 30_000;
    return withLock(
      this.state,
      `exec-${name}`,
      () =>
        execOverChannel(
          this.fifo(name, "control", "in"),
          this.fifo(name, "control", "out"),
          script,
          timeoutMs,
          name,
        ),
      timeoutMs + 60_000,
      opts.signal,
    );
  }

  /** What applying `next` to the instance would do, field by field. */
  plan(name: string, next: Spec): ChangePlan {
    return planInstanceChange(this.require(name).spec, next);
  }

  /**
   * Apply a changed spec: hot-plug what can be (disks, NICs, more memory),
   * restart for the rest. Refuses a change that needs a new instance
   * (UMLFLEET_CONFLICT): the caller replaces it.
   */
  async update(next: Spec, opts: StartOptions & StopOptions = {}): Promise<ChangePlan> {
    return this.locked(next.name, opts.signal, async () => {
      const r = this.require(next.name);
      refuseForeign("instance", next.name, r, opts.owner, "change", this.state.root);
      const plan = planInstanceChange(r.spec, next);
      if (plan.kind === "replace") {
        const fields = plan.changes.filter((c) => c.kind === "replace").map((c) => c.field);
        throw new UmlfleetError(
          "UMLFLEET_CONFLICT",
          `instance ${next.name}: ${fields.join(", ")} need a new instance`,
          {
            plan,
          },
        );
      }
      await this.resolve(next);
      const running = this.isRunning(r);
      if (!running || plan.kind === "restart") {
        if (running) await stopGuest(this, r, opts);
        const updated: InstanceRecord = { ...this.require(next.name), spec: next };
        await this.checkAndRecord(next, async () => {
          await this.makeFifos(next);
          writeJson(this.state.instanceRecord(next.name), updated);
        });
        if (running) await bootGuest(this, updated, opts, false);
        return plan;
      }
      await applyLive(this, r, next, opts.signal);
      return plan;
    });
  }

  // ---- what the lifecycle steps share -------------------------------------------

  /** ubd0 (root), ubd1.. (disks), ubd15 (swap), each with the spec field that names it. */
  diskList(s: Spec): { index: number; disk: string; readOnly: boolean; field: string }[] {
    return [
      { index: 0, disk: s.rootDisk, readOnly: false, field: "/rootDisk" },
      ...(s.disks ?? []).map((d, i) => ({
        index: i + 1,
        disk: d.disk,
        readOnly: d.readOnly ?? false,
        field: `/disks/${i}/disk`,
      })),
      ...(s.swapDisk
        ? [{ index: SWAP_UBD_INDEX, disk: s.swapDisk, readOnly: false, field: "/swapDisk" }]
        : []),
    ];
  }

  /** Check every reference of a spec (disks, bases, networks, shares). Throws naming the field. */
  async resolve(s: Spec) {
    const disks = this.diskList(s).map((d) => {
      const rec = this.disks.require(d.disk, d.field);
      if (d.field === "/swapDisk" && rec.spec.kind !== "swap")
        throw new UmlfleetError(
          "UMLFLEET_INVALID_SPEC",
          `/swapDisk: disk ${d.disk} is a ${rec.spec.kind} disk, not swap`,
          {
            field: "/swapDisk",
            value: d.disk,
          },
        );
      return { ...d, rec };
    });
    for (const d of disks) await this.disks.verifyOverlay(d.rec, d.field);
    const nics = (s.nics ?? []).map((n, i) => ({
      nic: n,
      rec: this.networks.require(n.network, `/nics/${i}/network`),
    }));
    const allShares = this.list().map((n) => ({ instance: n, shares: this.get(n)?.spec.shares ?? [] }));
    const shares = checkShares(s.name, s.shares ?? [], allShares, this.state.root);
    checkSharesAgainstCaptures(s.name, s.shares ?? [], this.networks.captures());
    // Files copied in from the host: never from where a guest writes (guest-setup.ts).
    const sources = checkSources(s, this.state.root, [
      ...allShares,
      { instance: s.name, shares: s.shares ?? [] },
    ]);
    return { disks, nics, shares, sources };
  }

  makeFifos(s: Spec): Promise<void> {
    return makeFifos(this.state.fifoDir(s.name), s);
  }

  /**
   * Hard-link a disk file into the sandbox-visible vm/ folder (same inode, so
   * no copy), as a direct entry of vm/: the guest can replace entries of vm/
   * but not vm/ itself (a mount point in its sandbox), and unlink() and link()
   * act on the last component without following it.
   */
  bootDisk(
    vm: string,
    d: { index: number; disk: string; readOnly: boolean; rec: { path: string; backingPath?: string } },
    ids?: HostIds,
  ): BootDisk {
    const target = join(vm, vmDiskEntry(d.disk));
    try {
      unlinkSync(target);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "ENOENT") throw e;
    }
    linkSync(d.rec.path, target);
    // A guest run as another uid opens its disk as that uid (the link is the disk's inode).
    handOver([target], ids);
    return {
      index: d.index,
      file: target,
      ...(d.rec.backingPath ? { backing: d.rec.backingPath } : {}),
      readOnly: d.readOnly,
    };
  }

  /** The NIC driver for a kernel, from `<kernel> --version`, cached per binary. */
  nicDriver(kernel: string): Promise<NicDriver> {
    return kernelNicDriver(kernel);
  }

  /** A script in the guest while the caller holds the instance's lock (hot-plug steps). */
  execUnlocked(name: string, script: string): Promise<ExecResult> {
    return withLock(this.state, `exec-${name}`, () =>
      execOverChannel(
        this.fifo(name, "control", "in"),
        this.fifo(name, "control", "out"),
        script,
        30_000,
        name,
      ),
    );
  }

  private locked<T>(name: string, signal: AbortSignal | undefined, fn: () => Promise<T>): Promise<T> {
    return withLock(this.state, `instance-${name}`, fn, LOCK_WAIT_MS, signal);
  }

  /**
   * Check a spec and write its record as one step against other instances'
   * shares: two instances whose shares nest, made at once, would each miss
   * the other's record. Both take this lock, so the second sees the first.
   */
  private async checkAndRecord(s: Spec, write: () => Promise<void>): Promise<void> {
    const step = async () => {
      await this.resolve(s);
      await write();
    };
    if ((s.shares ?? []).length === 0) return step();
    return withLock(this.state, "shares", step);
  }
}
