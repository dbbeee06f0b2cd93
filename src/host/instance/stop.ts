import { existsSync, rmSync } from "node:fs";
import { join } from "node:path";
import { isAlive, killAllNaming, killGroup, signalGroup, waitFor } from "../../process";
import { removeTree } from "../sandbox";
import { linksDir, stopWirefilters } from "../impairment";
import { writeJson } from "../state";
import type { Instances } from "./instances";
import { UMID, type InstanceRecord, type StopOptions } from "./types";

/**
 * Graceful, then forceful: mconsole cad, halt, SIGTERM, then the sandbox's
 * pid 1 and process group are killed. Each graceful step gets a share of the
 * budget; an aborted signal skips what is left of them.
 */
export async function stopGuest(inst: Instances, r: InstanceRecord, opts: StopOptions): Promise<void> {
  const name = r.spec.name;
  const p = r.process;
  if (p && isAlive(p)) {
    const budget = opts.timeoutMs ?? 30_000;
    const gone = (ms: number) => waitFor(() => !isAlive(p), ms, 20, opts.signal);
    // Without a live sandbox there is no mconsole to ask (mconsole() refuses): signals only.
    const ask = (command: string) =>
      Promise.resolve()
        .then(() => inst.mconsole(name, 2_000, r).send(command, { signal: opts.signal }))
        .then(
          () => true,
          () => false,
        );
    let down = false;
    // umlfleet's init turns cad into an orderly shutdown (sync, unmount, poweroff).
    if (r.spec.readiness === "marker") down = (await ask("cad")) && !!(await gone(budget * 0.6));
    if (!down && !opts.signal?.aborted) down = (await ask("halt")) && !!(await gone(budget * 0.2));
    if (!down && !opts.signal?.aborted && signalGroup(p, "SIGTERM")) down = !!(await gone(budget * 0.1));
  }
  // Whatever is left of this guest: its pid namespace, its process group,
  // and every process naming its folder.
  await reapGuest(inst, r);
  await cleanRuntimeFiles(inst, name);
  if (existsSync(inst.state.instanceRecord(name))) {
    writeJson(inst.state.instanceRecord(name), {
      ...r,
      process: undefined,
      sandbox: undefined,
      booting: undefined,
      startedAtMs: undefined,
      wirefilters: undefined,
    });
  }
}

/**
 * End every process of the guest: its sandbox's pid 1 (the kernel then
 * kills the whole pid namespace: UML, its helpers, the guest's processes),
 * the sandbox's outer process group, and whatever else names the instance's
 * folder (the console relay; guests started before the sandbox was recorded).
 */
export async function reapGuest(inst: Instances, r: InstanceRecord): Promise<void> {
  if (r.sandbox) await killGroup(r.sandbox);
  if (r.process) await killGroup(r.process);
  // Its NICs' wirefilters (their record, then anything naming the folder below).
  await stopWirefilters(inst.state.instanceDir(r.spec.name), r.wirefilters);
  await killAllNaming(inst.state.instanceDir(r.spec.name));
}

/** UML's pid/mconsole folder and bwrap's report only exist while a guest runs (its processes are gone here). */
export async function cleanRuntimeFiles(inst: Instances, name: string): Promise<void> {
  await removeTree(join(inst.state.vmDir(name), UMID));
  // Guests write the links folder (their NICs' ptp sockets): rm -r only.
  await removeTree(linksDir(inst.state.instanceDir(name)));
  rmSync(inst.sandboxInfoFile(name), { force: true });
}
