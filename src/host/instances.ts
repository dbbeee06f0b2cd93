import {
  closeSync,
  existsSync,
  realpathSync,
  linkSync,
  mkdirSync,
  rmSync,
  statSync,
  unlinkSync,
  accessSync,
  constants,
} from "node:fs";
import { join } from "node:path";
import { BootError, UmlfleetError } from "../errors";
import type { NicSpec, SpecOf } from "../spec";
import {
  nicArg,
  nicDevice,
  nicDriverFor,
  READY_MARKER,
  umlArgv,
  ubdArg,
  ubdDevice,
  type BootDisk,
  type BootNic,
  type NicDriver,
} from "../uml/argv";
import { deterministicMac } from "../uml/mac";
import { MconsoleClient } from "../uml/mconsole";
import { planInstanceChange, type ChangePlan } from "./change-plan";
import type { Disks } from "./disks";
import { execOverChannel, type ExecResult } from "./guest-channel";
import type { Networks } from "./networks";
import {
  identify,
  isAlive,
  killAllNaming,
  killGroup,
  run,
  signalGroup,
  waitFor,
  type ProcessIdentity,
} from "./process";
import { kernelFiles, readSandboxPid, removeTree, SANDBOX_BIN, sandboxArgv, type Bind } from "./sandbox";
import { directLauncher, guestFds, type Launcher } from "./launcher";
import { DEFAULT_CONSOLE_LOG_KIB, LogFollower, rotateForBoot, tailOf } from "./console-log";
import { checkShares, openShare } from "./shares";
import { checkSharesAgainstCaptures } from "./capture";
import {
  checkSources,
  nicCommands,
  SETUP_SHARE,
  stageSetup,
  startupExitIn,
  startupExitInLog,
} from "./guest-setup";
import { readJson, STATE_SCHEMA_VERSION, withLock, writeJson, writeJsonAsync, type StateDir } from "./state";

type Spec = SpecOf["instance"];

export interface InstanceRecord {
  schemaVersion: number;
  /** The spec in effect (hot-plugged changes included). */
  spec: Spec;
  /** The sandbox's process-group leader (bwrap, outside the namespaces) while the instance runs. */
  process?: ProcessIdentity;
  /**
   * The sandbox's pid 1 (host pid): killing it ends every process of the
   * guest (its pid namespace), and mconsole is spoken from inside its mount
   * namespace. Unset for guests started before umlfleet recorded it.
   */
  sandbox?: ProcessIdentity;
  startedAtMs?: number;
  /** True from a launch until its boot is complete (ready, memory ballooned). */
  booting?: boolean;
  bootCount: number;
  argv?: string[];
  /** The NIC driver of the kernel last booted. */
  nicDriver?: NicDriver;
  /** The exit status of the startup script in the last boot (guest-setup.ts). */
  startupExitCode?: number;
}

export interface InstanceStatus {
  name: string;
  state: "running" | "stopped";
  pid?: number;
  startedAtMs?: number;
  consoleLog: string;
  mconsoleSocket: string;
  /** Per serial line: the FIFO the guest reads (`in`) and the one it writes (`out`). */
  serialLines: { line: number; device: string; in: string; out: string }[];
  nics: { index: number; device: string; network: string; mac: string; ipv4?: string }[];
  disks: { index: number; device: string; disk: string; readOnly: boolean }[];
  memoryMiB: number;
  /** What the guest booted with: memoryMiB can grow live up to this. */
  maxMemoryMiB: number;
  bootCount: number;
  /** The startup script's exit status in this boot (none without a startup script). */
  startupExitCode?: number;
}

/** Where the hostfs root sits inside every sandbox; shares are its sub-folders. */
const HOSTFS_ROOT = "/umlfleet-shares";
/** UML's folder for pid and mconsole socket: vm/u/ (uml_dir=vm, umid=u). */
const UMID = "u";
/** A disk's link in vm/: a direct entry, so no folder the guest could replace lies on the host's path to it. */
const vmDiskEntry = (disk: string) => `disk-${disk}`;
/** UML has ubd0..ubd15; swap takes the last, so hot-plugged disks never collide with it. */
const SWAP_UBD_INDEX = 15;
// Fds of the UML process: 0 /dev/null, 1+2 console log, 3/4 control, 5.. serial pairs.
const FD_CONTROL_IN = 3;

export interface StartOptions {
  timeoutMs?: number;
  /** Starts the guest's process. Default: spawned by this process; instance groups start theirs in batches. */
  launcher?: Launcher;
}
export interface StopOptions {
  /** Total budget for the graceful steps before SIGKILL. Default 30 s. */
  timeoutMs?: number;
}

/** UML instances: boot detached in a sandbox, re-adopt, stop, hot-plug, exec. */
export class Instances {
  private readonly kernelFileCache = new Map<string, Bind[]>();
  private readonly versionCache = new Map<string, Promise<string>>();

  constructor(
    private readonly state: StateDir,
    private readonly disks: Disks,
    private readonly networks: Networks,
  ) {}

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

  /**
   * Define and boot an instance. A no-op when it runs with this spec; boots it
   * when it exists stopped with this spec. A failed first boot removes every
   * file it made and leaves no process.
   */
  async create(spec: Spec, opts: StartOptions = {}): Promise<InstanceStatus> {
    return withLock(this.state, `instance-${spec.name}`, async () => {
      const existing = this.get(spec.name);
      if (existing) {
        if (JSON.stringify(existing.spec) !== JSON.stringify(spec)) {
          throw new UmlfleetError(
            "UMLFLEET_CONFLICT",
            `instance ${JSON.stringify(spec.name)} exists with another spec; use update`,
            { name: spec.name },
          );
        }
        if (!this.isRunning(existing)) await this.boot(existing, opts, false);
        else await this.finishBoot(existing, opts);
        return this.status(spec.name);
      }
      const record: InstanceRecord = { schemaVersion: STATE_SCHEMA_VERSION, spec, bootCount: 0 };
      // Every reference checked before anything is written.
      await this.checkAndRecord(spec, async () => {
        mkdirSync(this.state.instanceDir(spec.name), { recursive: true, mode: 0o700 });
        await this.makeFifos(spec);
        await writeJsonAsync(this.state.instanceRecord(spec.name), record);
      });
      try {
        await this.boot(record, opts, true);
      } catch (e) {
        rmSync(this.state.instanceDir(spec.name), { recursive: true, force: true });
        throw e;
      }
      return this.status(spec.name);
    });
  }

  async start(name: string, opts: StartOptions = {}): Promise<InstanceStatus> {
    return withLock(this.state, `instance-${name}`, async () => {
      const r = this.require(name);
      if (!this.isRunning(r)) await this.boot(r, opts, false);
      else await this.finishBoot(r, opts);
      return this.status(name);
    });
  }

  async stop(name: string, opts: StopOptions = {}): Promise<void> {
    return withLock(this.state, `instance-${name}`, async () => this.stopLocked(this.require(name), opts));
  }

  async restart(name: string, opts: StartOptions & StopOptions = {}): Promise<InstanceStatus> {
    return withLock(this.state, `instance-${name}`, async () => {
      const r = this.require(name);
      await this.stopLocked(r, opts);
      await this.boot(this.require(name), opts, false);
      return this.status(name);
    });
  }

  /** Stop (if running) and delete the instance's folder. Its disks are left alone. */
  async remove(name: string, opts: StopOptions = {}): Promise<void> {
    return withLock(this.state, `instance-${name}`, async () => {
      const r = this.get(name);
      if (r) await this.stopLocked(r, opts);
      rmSync(this.state.instanceDir(name), { recursive: true, force: true });
    });
  }

  status(name: string): InstanceStatus {
    const r = this.require(name);
    const running = this.isRunning(r);
    const s = r.spec;
    return {
      name,
      state: running ? "running" : "stopped",
      pid: running ? r.process!.pid : undefined,
      startedAtMs: running ? r.startedAtMs : undefined,
      consoleLog: this.state.consoleLog(name),
      mconsoleSocket: this.mconsoleSocket(name),
      serialLines: Array.from({ length: s.serialLines }, (_, line) => ({
        line,
        device: `/dev/ttyS${line}`,
        in: this.fifo(name, `ttyS${line}`, "in"),
        out: this.fifo(name, `ttyS${line}`, "out"),
      })),
      nics: (s.nics ?? []).map((n, index) => ({
        index,
        device: nicDevice({ driver: r.nicDriver ?? "eth", index }),
        network: n.network,
        mac: nicMac(s.name, index, n),
        ...(n.ipv4 ? { ipv4: n.ipv4 } : {}),
      })),
      disks: this.diskList(s).map((d) => ({
        index: d.index,
        device: ubdDevice(d.index),
        disk: d.disk,
        readOnly: d.readOnly,
      })),
      memoryMiB: s.memoryMiB,
      maxMemoryMiB: s.maxMemoryMiB ?? s.memoryMiB,
      bootCount: r.bootCount,
      ...(running && r.startupExitCode !== undefined ? { startupExitCode: r.startupExitCode } : {}),
    };
  }

  /**
   * status() plus what only the running guest can tell: uptime, the kernel's
   * version, and each disk's files as UML's mconsole reports them (`config ubdN`).
   */
  async inspect(
    name: string,
  ): Promise<
    InstanceStatus & { uptimeSec?: number; kernelVersion?: string; devices: Record<string, string> }
  > {
    const st = this.status(name);
    const devices: Record<string, string> = {};
    if (st.state !== "running") return { ...st, devices };
    const mc = this.mconsole(name);
    for (const d of st.disks) devices[`ubd${d.index}`] = await mc.send(`config ubd${d.index}`);
    return {
      ...st,
      devices,
      kernelVersion: await mc.send("version"),
      uptimeSec: st.startedAtMs ? Math.round((Date.now() - st.startedAtMs) / 1000) : undefined,
    };
  }

  /** The last `lines` lines of the console log (this boot's: each boot starts its own). */
  consoleTail(name: string, lines = 40): string {
    return tailOf(this.state.consoleLog(name), lines);
  }

  /**
   * Run a shell script in the guest (umlfleet's init only) and return its exit
   * code and output. Default deadline 30 s: UMLFLEET_EXEC_TIMEOUT after it.
   */
  async exec(name: string, script: string, opts: { timeoutMs?: number } = {}): Promise<ExecResult> {
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
    return withLock(this.state, `instance-${next.name}`, async () => {
      const r = this.require(next.name);
      const plan = planInstanceChange(r.spec, next);
      if (plan.kind === "replace") {
        throw new UmlfleetError(
          "UMLFLEET_CONFLICT",
          `instance ${next.name}: ${plan.changes
            .filter((c) => c.kind === "replace")
            .map((c) => c.field)
            .join(", ")} need a new instance`,
          { plan },
        );
      }
      await this.resolve(next);
      const running = this.isRunning(r);
      if (!running || plan.kind === "restart") {
        if (running) await this.stopLocked(r, opts);
        const updated: InstanceRecord = { ...this.require(next.name), spec: next };
        await this.checkAndRecord(next, async () => {
          await this.makeFifos(next);
          writeJson(this.state.instanceRecord(next.name), updated);
        });
        if (running) await this.boot(updated, opts, false);
        return plan;
      }
      await this.applyLive(r, next);
      return plan;
    });
  }

  // ---- internals -------------------------------------------------------------

  private diskList(s: Spec): { index: number; disk: string; readOnly: boolean; field: string }[] {
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

  /** Check every reference of a spec (disks, bases, networks, shares, kernel). Throws naming the field. */
  private async resolve(s: Spec) {
    const disks = this.diskList(s).map((d) => {
      const rec = this.disks.require(d.disk, d.field);
      if (d.field === "/swapDisk" && rec.spec.kind !== "swap")
        throw new UmlfleetError(
          "UMLFLEET_INVALID_SPEC",
          `/swapDisk: disk ${d.disk} is a ${rec.spec.kind} disk, not swap`,
          { field: "/swapDisk", value: d.disk },
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
    const sources = checkSources(s, this.state.root, [
      ...allShares,
      { instance: s.name, shares: s.shares ?? [] },
    ]);
    return { disks, nics, shares, sources };
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

  private async makeFifos(s: Spec): Promise<void> {
    const dir = this.state.fifoDir(s.name);
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const names = ["control", ...Array.from({ length: s.serialLines }, (_, i) => `ttyS${i}`)];
    const missing = names
      .flatMap((n) => [`${n}.in`, `${n}.out`])
      .map((f) => join(dir, f))
      .filter((f) => !existsSync(f));
    if (missing.length > 0) await mkfifos(missing);
  }

  /**
   * Hard-link a disk file into the sandbox-visible vm/ folder (same inode, so
   * no copy), as a direct entry of vm/: the guest can replace entries of vm/
   * but not vm/ itself (a mount point in its sandbox), and unlink() and link()
   * act on the last component without following it.
   */
  private linkIntoVm(vm: string, disk: string, source: string): string {
    const target = join(vm, vmDiskEntry(disk));
    try {
      unlinkSync(target);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "ENOENT") throw e;
    }
    linkSync(source, target);
    return target;
  }

  private bootDisk(
    vm: string,
    d: { index: number; disk: string; readOnly: boolean; rec: { path: string; backingPath?: string } },
  ): BootDisk {
    return {
      index: d.index,
      file: this.linkIntoVm(vm, d.disk, d.rec.path),
      ...(d.rec.backingPath ? { backing: d.rec.backingPath } : {}),
      readOnly: d.readOnly,
    };
  }

  /** The kernel's version from `<kernel> --version`, cached per binary. */
  private async nicDriver(kernel: string): Promise<NicDriver> {
    const st = statSync(kernel);
    const key = `${kernel}\0${st.mtimeMs}\0${st.size}`;
    // The promise is cached: 32 guests booting at once ask once, not 32 times.
    let v = this.versionCache.get(key);
    if (!v) {
      v = run(kernel, ["--version"], { timeoutMs: 10_000, allowFailure: true, env: {} }).then(
        (r) => /(\d+\.\d+(\.\d+)?)/.exec(r.stdout)?.[1] ?? "0",
      );
      this.versionCache.set(key, v);
    }
    return nicDriverFor(await v);
  }

  private bootNic(name: string, index: number, nic: NicSpec, switchDir: string, driver: NicDriver): BootNic {
    return {
      index,
      driver,
      switchDir,
      mac: nicMac(name, index, nic),
      ...(nic.ipv4 ? { ipv4: nic.ipv4 } : {}),
    };
  }

  private async boot(r: InstanceRecord, opts: StartOptions, firstBoot: boolean): Promise<void> {
    const s = r.spec;
    const name = s.name;
    const started = performance.now();
    const consoleLog = this.state.consoleLog(name);
    const fail = (
      code: "UMLFLEET_BOOT_FAILED" | "UMLFLEET_BOOT_TIMEOUT",
      message: string,
      facts: Partial<ConstructorParameters<typeof BootError>[2]>,
    ) =>
      new BootError(code, `instance ${name}: ${message}`, {
        instance: name,
        argv: [],
        exitCode: null,
        signal: null,
        timedOut: false,
        durationMs: Math.round(performance.now() - started),
        consoleTail: "",
        ...facts,
      });
    try {
      accessSync(s.kernel, constants.X_OK);
    } catch {
      throw fail("UMLFLEET_BOOT_FAILED", `kernel ${s.kernel} (/kernel) is not an executable file`, {});
    }
    const { disks, nics, shares, sources } = await this.resolve(s);
    for (const n of nics) if (!this.networks.isRunning(n.rec)) await this.networks.ensure(n.rec.spec);

    const vm = this.state.vmDir(name);
    // Whatever is left of an earlier boot goes first: its processes (they
    // would hold its disks' locks; none can exist without the folder, so a
    // first boot skips the /proc scan), then vm/, which the guest could write.
    if (existsSync(vm)) {
      await this.reap(r);
      await removeTree(vm);
    }
    mkdirSync(vm, { recursive: true, mode: 0o700 });
    const bootDisks = disks.map((d) => this.bootDisk(vm, d));
    const driver = await this.nicDriver(s.kernel);
    const bootNics = nics.map((n, i) => this.bootNic(name, i, n.nic, n.rec.switchDir, driver));
    await this.makeFifos(s);
    rotateForBoot(consoleLog);
    // Files, startup script and routes, staged host-only and bound read-only (guest-setup.ts).
    const setupDir = stageSetup(
      join(this.state.instanceDir(name), "setup"),
      s,
      bootNics.map(nicDevice),
      sources,
    );

    // The guest's fds from 3: control in/out, then each serial line's in/out
    // (FIFOs, opened read-write), then bwrap's info fd, then the shares.
    const fifos = [this.fifo(name, "control", "in"), this.fifo(name, "control", "out")];
    const serial = Array.from({ length: s.serialLines }, (_, line) => {
      const inFd = FD_CONTROL_IN + fifos.length;
      fifos.push(this.fifo(name, `ttyS${line}`, "in"), this.fifo(name, `ttyS${line}`, "out"));
      return { line, in: inFd, out: inFd + 1 };
    });
    const shareFds: number[] = [];
    try {
      const bound = [...shares];
      if (setupDir) {
        const realPath = realpathSync(setupDir);
        bound.push({ name: SETUP_SHARE, hostPath: setupDir, realPath, readOnly: true, field: "setup" });
      }
      for (const sh of bound) shareFds.push(openShare(sh));
      const fds = guestFds(fifos.length, shareFds.length);
      const swapIndex = s.swapDisk ? SWAP_UBD_INDEX : undefined;
      const uml = umlArgv({
        kernel: s.kernel,
        memoryMiB: s.maxMemoryMiB ?? s.memoryMiB,
        umid: UMID,
        umlDir: vm,
        disks: bootDisks,
        ...(swapIndex !== undefined ? { swapDiskIndex: swapIndex } : {}),
        nics: bootNics,
        shares: shares.map((sh) => ({
          name: sh.name,
          guestPath: (s.shares ?? []).find((x) => x.name === sh.name)!.guestPath,
          readOnly: sh.readOnly,
        })),
        hostfsRoot: HOSTFS_ROOT,
        hostname: s.hostname ?? s.name,
        fds: { console: 1, control: { in: FD_CONTROL_IN, out: FD_CONTROL_IN + 1 }, serial },
        umlfleetInit: s.readiness === "marker",
        kernelArgs: s.kernelArgs ?? [],
        ...(setupDir ? { setup: SETUP_SHARE } : {}),
      });
      const sandbox = sandboxArgv(
        {
          kernel: s.kernel,
          vmDir: vm,
          readOnlyPaths: [...new Set(bootDisks.flatMap((d) => (d.backing ? [d.backing] : [])))],
          readWritePaths: [...new Set(bootNics.map((n) => n.switchDir))],
          shares: bound.map((sh, i) => ({ name: sh.name, fd: fds.pass[i]!, readOnly: sh.readOnly })),
          hostfsRoot: HOSTFS_ROOT,
          infoFd: fds.info,
        },
        kernelFiles(s.kernel, this.kernelFileCache),
      );
      const argv = [SANDBOX_BIN, ...sandbox, ...uml];
      const infoFile = this.sandboxInfoFile(name);
      rmSync(infoFile, { force: true });

      const launched = await (opts.launcher ?? directLauncher).launch({
        argv,
        consoleLog,
        consoleCapBytes: (s.consoleLogKiB ?? DEFAULT_CONSOLE_LOG_KIB) * 1024,
        fifos,
        infoFile,
        passFds: shareFds,
      });
      const proc: ProcessIdentity | null = launched.pid ? identify(launched.pid) : null;
      let record: InstanceRecord = {
        ...r,
        spec: s,
        ...(proc ? { process: proc } : {}),
        sandbox: undefined,
        startedAtMs: Date.now(),
        booting: true,
        bootCount: r.bootCount + 1,
        argv,
        nicDriver: driver,
      };
      await writeJsonAsync(this.state.instanceRecord(name), record);

      const timeoutMs = opts.timeoutMs ?? s.bootTimeoutMs;
      const log = new LogFollower(consoleLog);
      let tick = 0;
      let startupExitCode: number | undefined;
      const outcome = await waitFor<"ready" | "exited" | "panic">(
        async () => {
          const text = log.poll();
          startupExitCode = startupExitIn(text) ?? startupExitCode;
          if (/Kernel panic/.test(text)) return "panic";
          if (launched.exit() || (proc && !isAlive(proc)) || !proc) return "exited";
          if (!record.sandbox) {
            // bwrap reports its pid 1 once the namespaces exist.
            const sandboxPid = readSandboxPid(infoFile);
            const id = sandboxPid ? identify(sandboxPid) : null;
            if (!id) return undefined;
            record = { ...record, sandbox: id };
            await writeJsonAsync(this.state.instanceRecord(name), record);
          }
          if (s.readiness === "marker") return text.includes(READY_MARKER) ? "ready" : undefined;
          // mconsole readiness costs a process per try: ask every 10th tick.
          if (tick++ % 10 !== 0) return undefined;
          return this.mconsole(name, 1_000, record)
            .send("version")
            .then(
              () => "ready" as const,
              () => undefined,
            );
        },
        timeoutMs,
        20,
      ).finally(() => log.close());

      const startupFailed = s.startupMustSucceed === true && !!startupExitCode;
      if (outcome === "ready" && !startupFailed)
        return await this.completeBoot({ ...record, startupExitCode });
      // Give a dying process a moment so its exit status and last words are in.
      if (proc) await waitFor(() => launched.exit() || !isAlive(proc), 300, 20);
      const facts = {
        argv,
        exitCode: launched.exit()?.code ?? null,
        signal: launched.exit()?.signal ?? null,
        timedOut: outcome === undefined,
      };
      await this.reap(record);
      await this.cleanRuntimeFiles(name);
      const consoleTail = this.consoleTail(name, 40);
      if (!firstBoot)
        writeJson(this.state.instanceRecord(name), {
          ...record,
          process: undefined,
          sandbox: undefined,
          booting: undefined,
          startedAtMs: undefined,
        });
      if (outcome === undefined) {
        throw fail("UMLFLEET_BOOT_TIMEOUT", `not ready within ${timeoutMs} ms; killed`, {
          ...facts,
          consoleTail,
        });
      }
      throw fail(
        "UMLFLEET_BOOT_FAILED",
        (outcome === "ready"
          ? `the startup script exited ${startupExitCode} (startupMustSucceed)`
          : outcome === "panic"
            ? "kernel panic during boot"
            : `exited during boot (${launched.exit()?.code ?? launched.exit()?.signal ?? "status unknown"})`) +
          kernelHint(consoleTail),
        { ...facts, consoleTail },
      );
    } finally {
      // The sandbox has bound the shares by now (or never will): our copies go.
      for (const fd of shareFds) closeSync(fd);
    }
  }

  /** A ready guest gets what is set after boot (the memory balloon), then the boot is recorded complete. */
  private async completeBoot(r: InstanceRecord): Promise<void> {
    const s = r.spec;
    const heldBack = (s.maxMemoryMiB ?? s.memoryMiB) - s.memoryMiB;
    if (heldBack > 0) await this.mconsole(s.name, 5_000, r).send(`config mem=-${heldBack}M`);
    writeJson(this.state.instanceRecord(s.name), { ...r, booting: false });
  }

  /**
   * A running guest whose boot was never recorded complete: the process that
   * booted it died between the launch and the end of the boot (a provider
   * killed with the CLI). Adopting it as it is would leave it at its boot
   * memory (measured: 4 of 8 guests at maxMemoryMiB). So the boot is watched
   * to its end here: the sandbox's pid 1 from bwrap's report, readiness asked
   * of the guest itself (its control line, which umlfleet's init serves only
   * once set up, or mconsole), then what completes a boot. A guest that never
   * gets there is booted again.
   */
  private async finishBoot(r: InstanceRecord, opts: StartOptions): Promise<void> {
    if (!r.booting) return;
    if (!r.sandbox) {
      const pid = readSandboxPid(this.sandboxInfoFile(r.spec.name));
      const id = pid ? identify(pid) : null;
      if (id) r = { ...r, sandbox: id };
    }
    const name = r.spec.name;
    const ready = await waitFor<"ready" | "exited">(
      async () => {
        if (!this.isRunning(r)) return "exited";
        const asked =
          r.spec.readiness === "marker"
            ? execOverChannel(
                this.fifo(name, "control", "in"),
                this.fifo(name, "control", "out"),
                "true",
                2_000,
                name,
              )
            : this.mconsole(name, 2_000, r).send("version");
        return asked.then(
          () => "ready" as const,
          () => undefined,
        );
      },
      opts.timeoutMs ?? r.spec.bootTimeoutMs,
      200,
    );
    if (ready === "ready")
      return this.completeBoot({ ...r, startupExitCode: startupExitInLog(this.state.consoleLog(name)) });
    await this.stopLocked(r, { timeoutMs: 5_000 });
    await this.boot(this.require(name), opts, false);
  }

  /** Where bwrap reports the sandbox's pid 1 (a host-only file: the instance folder is outside the sandbox). */
  private sandboxInfoFile(name: string): string {
    return join(this.state.instanceDir(name), "sandbox.json");
  }

  /**
   * End every process of the guest: its sandbox's pid 1 (the kernel then
   * kills the whole pid namespace: UML, its helpers, the guest's processes),
   * the sandbox's outer process group, and whatever else names the instance's
   * folder (the console relay; guests started before the sandbox was recorded).
   */
  private async reap(r: InstanceRecord): Promise<void> {
    if (r.sandbox) await killGroup(r.sandbox);
    if (r.process) await killGroup(r.process);
    await killAllNaming(this.state.instanceDir(r.spec.name));
  }

  /** Graceful, then forceful: mconsole cad, halt, SIGTERM, SIGKILL. */
  private async stopLocked(r: InstanceRecord, opts: StopOptions): Promise<void> {
    const name = r.spec.name;
    const p = r.process;
    if (p && isAlive(p)) {
      const budget = opts.timeoutMs ?? 30_000;
      const gone = (ms: number) => waitFor(() => !isAlive(p), ms, 20);
      // Without a live sandbox there is no mconsole to ask (mconsole() refuses): signals only.
      const ask = (command: string) =>
        Promise.resolve()
          .then(() => this.mconsole(name, 2_000, r).send(command))
          .then(
            () => true,
            () => false,
          );
      let down = false;
      // umlfleet's init turns cad into an orderly shutdown (sync, unmount, poweroff).
      if (r.spec.readiness === "marker") down = (await ask("cad")) && !!(await gone(budget * 0.6));
      if (!down) down = (await ask("halt")) && !!(await gone(budget * 0.2));
      if (!down && signalGroup(p, "SIGTERM")) down = !!(await gone(budget * 0.1));
    }
    // Whatever is left of this guest: its pid namespace, its process group,
    // and every process naming its folder (UML's helpers outlive a main
    // process that died alone, holding its disks' locks).
    await this.reap(r);
    await this.cleanRuntimeFiles(name);
    if (existsSync(this.state.instanceRecord(name))) {
      writeJson(this.state.instanceRecord(name), {
        ...r,
        process: undefined,
        sandbox: undefined,
        booting: undefined,
        startedAtMs: undefined,
      });
    }
  }

  /** UML's pid/mconsole folder and bwrap's report only exist while a guest runs (its processes are gone here). */
  private async cleanRuntimeFiles(name: string): Promise<void> {
    await removeTree(join(this.state.vmDir(name), UMID));
    rmSync(this.sandboxInfoFile(name), { force: true });
  }

  private async applyLive(r: InstanceRecord, next: Spec): Promise<void> {
    const name = next.name;
    const mc = this.mconsole(name);
    const vm = this.state.vmDir(name);
    const before = r.spec;
    let current: Spec = before;
    const save = (s: Spec) => {
      current = s;
      writeJson(this.state.instanceRecord(name), { ...this.require(name), spec: s });
    };
    // Memory: the "mem" mconsole device is a balloon within the boot size.
    const delta = next.memoryMiB - current.memoryMiB;
    if (delta !== 0) {
      await mc.send(`config mem=${delta > 0 ? "+" : "-"}${Math.abs(delta)}M`);
      save({ ...current, memoryMiB: next.memoryMiB });
    }
    // Disks: detach from the end, then attach new ones at the end.
    const oldDisks = current.disks ?? [];
    const newDisks = next.disks ?? [];
    for (let i = oldDisks.length - 1; i >= newDisks.length; i--) {
      // UML refuses to remove a disk the guest holds open: unmount it first.
      if (next.readiness === "marker")
        await this.execUnlocked(name, `umount ${ubdDevice(i + 1)} 2>/dev/null; true`);
      await mc.send(`remove ubd${i + 1}`);
      rmSync(join(vm, vmDiskEntry(oldDisks[i]!.disk)), { force: true }); // unlink: never follows the name
      save({ ...current, disks: oldDisks.slice(0, i) });
    }
    for (let i = oldDisks.length; i < newDisks.length; i++) {
      const d = newDisks[i]!;
      const rec = this.disks.require(d.disk, `/disks/${i}/disk`);
      await this.disks.verifyOverlay(rec, `/disks/${i}/disk`);
      if (
        rec.backingPath &&
        !this.diskList(current).some((x) => this.disks.get(x.disk)?.backingPath === rec.backingPath)
      ) {
        throw new UmlfleetError(
          "UMLFLEET_RESTART_REQUIRED",
          `/disks/${i}/disk: overlay ${d.disk} needs its base in the sandbox; restart to attach it`,
          {
            field: `/disks/${i}/disk`,
          },
        );
      }
      const bd = this.bootDisk(vm, { index: i + 1, disk: d.disk, readOnly: d.readOnly ?? false, rec });
      await mc.send(`config ${ubdArg(bd)}`);
      save({ ...current, disks: [...(current.disks ?? []), d] });
    }
    // NICs: the same, vecN by position.
    const oldNics = current.nics ?? [];
    const newNics = next.nics ?? [];
    for (let i = oldNics.length - 1; i >= newNics.length; i--) {
      const dev = nicDevice({ driver: await this.nicDriver(current.kernel), index: i });
      // UML refuses to remove a NIC that is up ("Device is currently open").
      if (next.readiness === "marker") await this.execUnlocked(name, `ip link set ${dev} down; true`);
      await mc.send(`remove ${dev}`);
      save({ ...current, nics: oldNics.slice(0, i) });
    }
    for (let i = oldNics.length; i < newNics.length; i++) {
      const nic = newNics[i]!;
      const net = this.networks.require(nic.network, `/nics/${i}/network`);
      if (!this.networks.isRunning(net)) await this.networks.ensure(net.spec);
      const bn = this.bootNic(name, i, nic, net.switchDir, await this.nicDriver(next.kernel));
      await mc.send(`config ${nicArg(bn)}`);
      save({ ...current, nics: [...(current.nics ?? []), nic] });
      const configure = nicCommands(nicDevice(bn), nic, true);
      if (configure.length > 1 && next.readiness === "marker") {
        // Each command reports its own failure: any report fails the change.
        const res = await this.execUnlocked(name, configure.join("\n"));
        if (res.exitCode !== 0 || res.output.includes("umlfleet: failed:")) {
          throw new UmlfleetError(
            "UMLFLEET_COMMAND_FAILED",
            `configuring ${nicDevice(bn)} in ${name}: ${res.output}`,
            {
              field: `/nics/${i}`,
            },
          );
        }
      }
    }
    save(next);
  }

  private execUnlocked(name: string, script: string): Promise<ExecResult> {
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
}

/**
 * What a known kernel failure means for the user. UML 6.1 restores a guest
 * process's FP state with a fixed 2696-byte XSAVE buffer; hosts whose XSAVE
 * area is larger (AMX: 11008 bytes) refuse it, and the guest's init dies
 * (measured: Debian's 6.1.176 and an unpatched 6.1.192 on a Xeon with AMX).
 */
function kernelHint(consoleTail: string): string {
  if (!consoleTail.includes("ptrace set fp regs failed")) return "";
  return (
    "; this kernel cannot run guest processes on this CPU (its XSAVE area, with AMX, is larger than UML 6.1 " +
    "restores): boot umlfleet's built kernel, which is patched for it (a Kernel with `build: {}`, or " +
    "`scripts/build-kernel.sh` and UMLFLEET_KERNEL=<its path>; docs/kernel.md)"
  );
}

export function nicMac(instance: string, index: number, nic: NicSpec): string {
  return nic.mac ?? deterministicMac(instance, index, nic.network);
}

/**
 * Node has no mkfifo(3), so the coreutils tool makes FIFOs. Requests made in
 * the same turn of the event loop share one process: a group booting 32 guests
 * at once spawns one mkfifo, not 32 (each spawn costs tens of ms of blocked
 * event loop while guests compete for the CPU). If the shared run fails, each
 * request is retried alone so the error belongs to the instance that caused it.
 */
let fifoBatch: { paths: string[]; done: Promise<void> } | undefined;
function mkfifos(paths: string[]): Promise<void> {
  if (!fifoBatch) {
    const batch = { paths: [] as string[], done: Promise.resolve() };
    batch.done = new Promise<void>((resolve) => setImmediate(resolve)).then(async () => {
      fifoBatch = undefined;
      // Generous deadline: under load the tool starves.
      await run("mkfifo", ["-m", "600", ...batch.paths], { timeoutMs: 60_000 });
    });
    fifoBatch = batch;
  }
  const batch = fifoBatch;
  batch.paths.push(...paths);
  return batch.done.catch(async () => {
    const left = paths.filter((f) => !existsSync(f));
    if (left.length > 0) await run("mkfifo", ["-m", "600", ...left], { timeoutMs: 60_000 });
  });
}
