import { accessSync, closeSync, constants, existsSync, mkdirSync, realpathSync, rmSync } from "node:fs";
import { join } from "node:path";
import { BootError } from "../../errors";
import { abortError, throwIfAborted } from "../../deadline";
import { identify, isAlive, waitFor, type ProcessIdentity } from "../../process";
import { READY_MARKER } from "../../uml/argv";
import { DelayCalibration, INIT_STARTED } from "../delay-calibration";
import { changePause, DEFAULT_CONSOLE_LOG_KIB, LogFollower, rotateForBoot } from "../console-log";
import { execOverChannel } from "../guest-channel";
import { handOver, handOverTree, resolveHostIds } from "../host-users";
import { SETUP_SHARE, stageSetup, startupExitIn, startupExitInLog } from "../guest-setup";
import { nicDevice } from "../../uml/argv";
import { directLauncher } from "../launcher";
import { kernelFiles, readSandboxPid, removeTree } from "../sandbox";
import { SECCOMP_FD, seccompFile } from "../seccomp";
import { openShare } from "../shares";
import { writeJson, writeJsonAsync } from "../state";
import { planBoot } from "./boot-plan";
import { linksDir, nicPlug, startWirefilter, stopWirefilters, type WirefilterRecord } from "../impairment";
import { traceBoot } from "./boot-trace";
import type { Instances } from "./instances";
import { cleanRuntimeFiles, reapGuest, stopGuest } from "./stop";
import { bootNic, type InstanceRecord, type StartOptions } from "./types";

type Outcome = "ready" | "exited" | "panic";

/**
 * Boot an instance's guest and wait until it is ready: umlfleet's init prints
 * its marker (or, for images with their own init, mconsole answers), under
 * the boot deadline and the caller's signal. A boot that fails, times out or
 * is cancelled leaves no process; a first boot's files are removed by the caller.
 */
export async function bootGuest(
  inst: Instances,
  r: InstanceRecord,
  opts: StartOptions,
  firstBoot: boolean,
): Promise<void> {
  const s = r.spec;
  const name = s.name;
  const started = performance.now();
  const consoleLog = inst.state.consoleLog(name);
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
  throwIfAborted(opts.signal, `booting ${name}`);
  traceBoot(name, "boot");
  try {
    accessSync(s.kernel, constants.X_OK);
  } catch {
    throw fail("UMLFLEET_BOOT_FAILED", `kernel ${s.kernel} (/kernel) is not an executable file`, {});
  }
  const { disks, nics, shares, sources } = await inst.resolve(s);
  for (const n of nics) if (!inst.networks.isRunning(n.rec)) await inst.networks.ensure(n.rec.spec);

  traceBoot(name, "resolved");
  const vm = inst.state.vmDir(name);
  // Whatever is left of an earlier boot goes first: its processes (they
  // would hold its disks' locks; none can exist without the folder, so a
  // first boot skips the /proc scan), then vm/, which the guest could write.
  if (existsSync(vm)) {
    await reapGuest(inst, r);
    await removeTree(vm);
  }
  mkdirSync(vm, { recursive: true, mode: 0o700 });
  // runAs: the uid the kernel runs as, owner of what it must write (host-users.ts).
  const others = inst.state
    .list("instances")
    .map((n) => (n === name ? undefined : inst.get(n)?.hostIds?.uid));
  const ids = await resolveHostIds(s, { key: `${inst.state.root}\0${name}`, others }, r.hostIds);
  handOver([vm], ids);
  const driver = await inst.nicDriver(s.kernel);
  // Impaired NICs plug into their own wirefilter (impairment.ts). The links
  // folder is bound at every boot, so a NIC can be re-plugged through one live.
  const instDir = inst.state.instanceDir(name);
  await removeTree(linksDir(instDir));
  mkdirSync(linksDir(instDir), { mode: 0o700 });
  handOver([linksDir(instDir)], ids);
  const bootNics = nics.map((n, i) =>
    bootNic(name, i, n.nic, n.rec.switchDir, driver, n.nic.impairment ? nicPlug(instDir, i) : undefined),
  );
  // Files, startup script and routes: staged host-only, bound read-only by fd (guest-setup.ts).
  const setupDir = stageSetup(
    join(inst.state.instanceDir(name), "setup"),
    s,
    bootNics.map(nicDevice),
    sources,
  );
  const seccomp = seccompFile(inst.state.root);
  const lpj = inst.calibration.lpjFor(s.kernel);
  const plan = planBoot({
    spec: s,
    ...(lpj ? { lpj } : {}),
    ...(seccomp ? { seccompFd: SECCOMP_FD } : {}),
    vmDir: vm,
    linksDir: linksDir(instDir),
    disks: disks.map((d) => inst.bootDisk(vm, d, ids)),
    nics: bootNics,
    setup: setupDir !== undefined,
    ...(ids ? { runAs: ids } : {}),
    shares: shares.map((sh) => ({
      name: sh.name,
      guestPath: (s.shares ?? []).find((x) => x.name === sh.name)!.guestPath,
      readOnly: sh.readOnly,
    })),
    fifo: (channel, end) => inst.fifo(name, channel, end),
    kernelFiles: kernelFiles(s.kernel, inst.kernelFileCache),
  });
  if (setupDir) handOverTree(setupDir, ids);
  traceBoot(name, "planned");
  await inst.makeFifos(s);
  rotateForBoot(consoleLog);
  traceBoot(name, "fifos");

  const shareFds: number[] = [];
  const wirefilters: Record<string, WirefilterRecord> = {};
  try {
    for (const [i, n] of nics.entries()) {
      if (n.nic.impairment)
        wirefilters[i] = await startWirefilter(instDir, i, n.rec.switchDir, n.nic.impairment, {
          signal: opts.signal,
          ...(ids ? { ids } : {}),
          ...(seccomp ? { seccomp } : {}),
        });
    }
    for (const sh of shares) shareFds.push(openShare(sh));
    if (setupDir)
      shareFds.push(
        openShare({
          name: SETUP_SHARE,
          hostPath: setupDir,
          realPath: realpathSync(setupDir),
          readOnly: true,
          field: "setup",
        }),
      );
    const infoFile = inst.sandboxInfoFile(name);
    rmSync(infoFile, { force: true });
    const launched = await (opts.launcher ?? directLauncher).launch({
      argv: plan.argv,
      consoleLog,
      consoleCapBytes: (s.consoleLogKiB ?? DEFAULT_CONSOLE_LOG_KIB) * 1024,
      fifos: plan.fifos,
      infoFile,
      passFds: shareFds,
      ...(seccomp ? { seccompFile: seccomp } : {}),
    });
    traceBoot(name, "launched");
    const proc: ProcessIdentity | null = launched.pid ? identify(launched.pid) : null;
    let record: InstanceRecord = {
      ...r,
      spec: s,
      ...(proc ? { process: proc } : {}),
      sandbox: undefined,
      startedAtMs: Date.now(),
      booting: true,
      bootCount: r.bootCount + 1,
      argv: plan.argv,
      nicDriver: driver,
      hostIds: ids,
      wirefilters,
    };
    await writeJsonAsync(inst.state.instanceRecord(name), record);
    traceBoot(name, "recorded");

    const timeoutMs = opts.timeoutMs ?? s.bootTimeoutMs;
    const log = new LogFollower(consoleLog);
    // The console log and bwrap's report are written in the instance folder: a change there ends the pause.
    const changes = changePause(inst.state.instanceDir(name));
    let askedAt = -Infinity;
    let startupExitCode: number | undefined;
    let calibrated: number | undefined;
    // Only the kernel writes the console until it starts init (delay-calibration.ts).
    let initStarted = false;
    const outcome = await waitFor<Outcome>(
      async () => {
        const text = log.poll();
        if (!initStarted) calibrated ??= DelayCalibration.calibratedIn(text);
        if (text.includes(INIT_STARTED)) {
          initStarted = true;
          traceBoot(name, "init");
        }
        startupExitCode = startupExitIn(text) ?? startupExitCode;
        if (/Kernel panic/.test(text)) return "panic";
        if (launched.exit() || (proc && !isAlive(proc)) || !proc) return "exited";
        if (!record.sandbox) {
          // bwrap reports its pid 1 once the namespaces exist.
          const sandboxPid = readSandboxPid(infoFile);
          const id = sandboxPid ? identify(sandboxPid) : null;
          if (!id) return undefined;
          record = { ...record, sandbox: id };
          traceBoot(name, "sandbox");
          await writeJsonAsync(inst.state.instanceRecord(name), record);
        }
        if (s.readiness === "marker") return text.includes(READY_MARKER) ? "ready" : undefined;
        // mconsole readiness costs a process per try: ask every 200 ms.
        if (performance.now() - askedAt < 200) return undefined;
        askedAt = performance.now();
        return inst
          .mconsole(name, 1_000, record)
          .send("version")
          .then(
            () => "ready" as const,
            () => undefined,
          );
      },
      timeoutMs,
      20,
      opts.signal,
      changes.pause,
    ).finally(() => {
      changes.close();
      log.close();
    });

    traceBoot(name, `outcome:${outcome ?? "timeout"}`);
    const startupFailed = s.startupMustSucceed === true && !!startupExitCode;
    if (outcome === "ready" && calibrated) keepCalibration(inst, s.kernel, calibrated);
    if (outcome === "ready" && !startupFailed)
      return await completeBoot(inst, { ...record, startupExitCode });
    // Give a dying process a moment so its exit status and last words are in.
    if (proc && !opts.signal?.aborted) await waitFor(() => launched.exit() || !isAlive(proc), 300, 20);
    const facts = {
      argv: plan.argv,
      exitCode: launched.exit()?.code ?? null,
      signal: launched.exit()?.signal ?? null,
      timedOut: outcome === undefined,
    };
    await reapGuest(inst, record);
    await cleanRuntimeFiles(inst, name);
    const consoleTail = inst.consoleTail(name, 40);
    if (!firstBoot)
      writeJson(inst.state.instanceRecord(name), {
        ...record,
        process: undefined,
        sandbox: undefined,
        booting: undefined,
        startedAtMs: undefined,
        wirefilters: undefined,
      });
    if (opts.signal?.aborted) throw abortError(opts.signal, `booting ${name}`);
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
        // The panic's backtrace (some 40 lines) follows the line that names the cause.
        kernelHint(inst.consoleTail(name, 200)),
      { ...facts, consoleTail },
    );
  } catch (e) {
    // Whatever failed before the guest's own clean-up (which stops them too) left them running.
    await stopWirefilters(instDir, wirefilters);
    throw e;
  } finally {
    // The sandbox has bound the shares by now (or never will): our copies go.
    for (const fd of shareFds) closeSync(fd);
  }
}

/** A boot that calibrated its delay loop leaves the value for the next (a cache: failing to keep it fails nothing). */
function keepCalibration(inst: Instances, kernel: string, lpj: number): void {
  try {
    inst.calibration.learn(kernel, lpj);
  } catch {
    /* a full or read-only state folder: the next boot calibrates again */
  }
}

/** A ready guest gets what is set after boot (the memory balloon), then the boot is recorded complete. */
async function completeBoot(inst: Instances, r: InstanceRecord): Promise<void> {
  const s = r.spec;
  const heldBack = (s.maxMemoryMiB ?? s.memoryMiB) - s.memoryMiB;
  if (heldBack > 0) await inst.mconsole(s.name, 5_000, r).send(`config mem=-${heldBack}M`);
  // No fsync: the spec is on disk already (the boot's durable writes); `booting` means nothing after a host crash.
  writeJson(inst.state.instanceRecord(s.name), { ...r, booting: false }, { durable: false });
  traceBoot(s.name, "complete");
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
export async function finishBoot(inst: Instances, r: InstanceRecord, opts: StartOptions): Promise<void> {
  if (!r.booting) return;
  const name = r.spec.name;
  if (!r.sandbox) {
    const pid = readSandboxPid(inst.sandboxInfoFile(name));
    const id = pid ? identify(pid) : null;
    if (id) r = { ...r, sandbox: id };
  }
  const ready = await waitFor<"ready" | "exited">(
    async () => {
      if (!inst.isRunning(r)) return "exited";
      const asked =
        r.spec.readiness === "marker"
          ? execOverChannel(
              inst.fifo(name, "control", "in"),
              inst.fifo(name, "control", "out"),
              "true",
              2_000,
              name,
            )
          : inst.mconsole(name, 2_000, r).send("version");
      return asked.then(
        () => "ready" as const,
        () => undefined,
      );
    },
    opts.timeoutMs ?? r.spec.bootTimeoutMs,
    200,
    opts.signal,
  );
  if (ready === "ready")
    return completeBoot(inst, { ...r, startupExitCode: startupExitInLog(inst.state.consoleLog(name)) });
  await stopGuest(inst, r, { timeoutMs: 5_000 });
  throwIfAborted(opts.signal, `booting ${name}`);
  await bootGuest(inst, inst.require(name), opts, false);
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
