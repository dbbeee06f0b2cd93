import { rmSync } from "node:fs";
import { nicCommands } from "../guest-setup";
import { join } from "node:path";
import { nicMtu } from "../../change-plan";
import { UmlfleetError } from "../../errors";
import { nicArg, nicDevice, ubdArg, ubdDevice } from "../../uml/argv";
import { withLock, writeJson } from "../state";
import { seccompFile } from "../seccomp";
import { nicPlug, setImpairment, startWirefilter, stopWirefilter, wirefilterRuns } from "../impairment";
import type { NicSpec } from "../../spec";
import type { Instances } from "./instances";
import { bootNic, vmDiskEntry, type InstanceRecord, type Spec } from "./types";

/**
 * Apply a change to a running guest without a reboot (the change plan said
 * live): memory through the mconsole balloon, disks and NICs detached from
 * the end and attached at the end. The record follows each step, so a
 * failure midway leaves it telling what the guest has.
 */
export async function applyLive(
  inst: Instances,
  r: InstanceRecord,
  next: Spec,
  signal?: AbortSignal,
): Promise<void> {
  const name = next.name;
  const mc = inst.mconsole(name);
  const send = (command: string) => mc.send(command, { signal });
  const vm = inst.state.vmDir(name);
  let current: Spec = r.spec;
  const save = (s: Spec) => {
    current = s;
    writeJson(inst.state.instanceRecord(name), { ...inst.require(name), spec: s });
  };
  // Memory: the "mem" mconsole device is a balloon within the boot size.
  const delta = next.memoryMiB - current.memoryMiB;
  if (delta !== 0) {
    await send(`config mem=${delta > 0 ? "+" : "-"}${Math.abs(delta)}M`);
    save({ ...current, memoryMiB: next.memoryMiB });
  }
  // Disks: detach from the end, then attach new ones at the end.
  const oldDisks = current.disks ?? [];
  const newDisks = next.disks ?? [];
  for (let i = oldDisks.length - 1; i >= newDisks.length; i--) {
    // UML refuses to remove a disk the guest holds open: unmount it first.
    if (next.readiness === "marker")
      await inst.execUnlocked(name, `umount ${ubdDevice(i + 1)} 2>/dev/null; true`);
    await send(`remove ubd${i + 1}`);
    rmSync(join(vm, vmDiskEntry(oldDisks[i]!.disk)), { force: true }); // unlink: never follows the name
    save({ ...current, disks: oldDisks.slice(0, i) });
  }
  for (let i = oldDisks.length; i < newDisks.length; i++) {
    const d = newDisks[i]!;
    const field = `/disks/${i}/disk`;
    const rec = inst.disks.require(d.disk, field);
    await inst.disks.verifyOverlay(rec, field);
    const baseInSandbox = inst
      .diskList(current)
      .some((x) => inst.disks.get(x.disk)?.backingPath === rec.backingPath);
    if (rec.backingPath && !baseInSandbox) {
      throw new UmlfleetError(
        "UMLFLEET_RESTART_REQUIRED",
        `${field}: overlay ${d.disk} needs its base in the sandbox; restart to attach it`,
        { field },
      );
    }
    const bd = inst.bootDisk(
      vm,
      { index: i + 1, disk: d.disk, readOnly: d.readOnly ?? false, rec },
      inst.get(name)?.hostIds,
    );
    await send(`config ${ubdArg(bd)}`);
    save({ ...current, disks: [...(current.disks ?? []), d] });
  }
  // NICs: the same, by position; an impaired NIC plugs into its wirefilter (impairment.ts).
  const oldNics = current.nics ?? [];
  const newNics = next.nics ?? [];
  const instDir = inst.state.instanceDir(name);
  const driver = await inst.nicDriver(next.kernel);
  const wirefilters = { ...(inst.require(name).wirefilters ?? {}) };
  const seccomp = seccompFile(inst.state.root);
  const saveWirefilters = () =>
    writeJson(inst.state.instanceRecord(name), { ...inst.require(name), wirefilters });
  // Addresses, IPv6, gateway and routes, as umlfleet's init sets them at boot (guest-setup.ts).
  const configure = async (i: number, nic: NicSpec) => {
    const dev = nicDevice({ driver, index: i });
    const lines = nicCommands(dev, nic, true);
    if ((lines.length <= 1 && nic.mtu === undefined) || next.readiness !== "marker") return;
    const res = await inst.execUnlocked(name, lines.join("\n"));
    // Each command reports its own failure: any report fails the change.
    if (res.exitCode !== 0 || res.output.includes("umlfleet: failed:")) {
      throw new UmlfleetError("UMLFLEET_COMMAND_FAILED", `configuring ${dev} in ${name}: ${res.output}`, {
        field: `/nics/${i}`,
      });
    }
  };
  const plug = async (i: number, nic: NicSpec) => {
    const net = inst.networks.require(nic.network, `/nics/${i}/network`);
    if (!inst.networks.isRunning(net)) await inst.networks.ensure(net.spec);
    if (nic.impairment && !wirefilterRuns(wirefilters[i])) {
      wirefilters[i] = await startWirefilter(instDir, i, net.switchDir, nic.impairment, {
        signal,
        ...(r.hostIds ? { ids: r.hostIds } : {}),
        ...(seccomp ? { seccomp } : {}),
      });
      saveWirefilters();
    }
    const ptp = wirefilters[i] ? nicPlug(instDir, i) : undefined;
    await send(`config ${nicArg(bootNic(name, i, nic, net.switchDir, driver, ptp))}`);
  };
  const unplug = async (i: number) => {
    const dev = nicDevice({ driver, index: i });
    // UML refuses to remove a NIC that is up ("Device is currently open").
    if (next.readiness === "marker") await inst.execUnlocked(name, `ip link set ${dev} down; true`);
    await send(`remove ${dev}`);
  };
  for (let i = oldNics.length - 1; i >= newNics.length; i--) {
    await unplug(i);
    const wf = wirefilters[i];
    if (wf) {
      await stopWirefilter(wf);
      delete wirefilters[i];
      saveWirefilters();
    }
    save({ ...current, nics: oldNics.slice(0, i) });
  }
  // Impairments of NICs that stay: set through the management socket, or
  // (a NIC plugged straight into its switch) re-plugged through a wirefilter.
  for (let i = 0; i < Math.min(oldNics.length, newNics.length); i++) {
    const nic = newNics[i]!;
    if (JSON.stringify(oldNics[i]!.impairment ?? null) === JSON.stringify(nic.impairment ?? null)) continue;
    if (wirefilterRuns(wirefilters[i])) await setImpairment(instDir, i, nic.impairment);
    else if (nic.impairment) {
      await unplug(i);
      await plug(i, nic);
      await configure(i, nic);
    }
    save({ ...current, nics: (current.nics ?? []).map((n, j) => (j === i ? nic : n)) });
  }
  // MTUs of NICs that stay: set in the running guest (change-plan.ts makes this a restart
  // when the guest has no control channel).
  for (let i = 0; i < Math.min(oldNics.length, newNics.length); i++) {
    const nic = newNics[i]!;
    if (nicMtu(oldNics[i]!) === nicMtu(nic)) continue;
    const dev = nicDevice({ driver, index: i });
    const res = await inst.execUnlocked(name, `ip link set ${dev} mtu ${nicMtu(nic)}`);
    if (res.exitCode !== 0)
      throw new UmlfleetError("UMLFLEET_COMMAND_FAILED", `setting ${dev}'s MTU in ${name}: ${res.output}`, {
        field: `/nics/${i}/mtu`,
      });
    save({ ...current, nics: (current.nics ?? []).map((n, j) => (j === i ? { ...n, mtu: nic.mtu } : n)) });
  }
  for (let i = oldNics.length; i < newNics.length; i++) {
    const nic = newNics[i]!;
    await plug(i, nic);
    save({ ...current, nics: [...(current.nics ?? []), nic] });
    await configure(i, nic);
  }
  save(next);
}

/**
 * Ensure a network; when that started a new switch under an old record (the
 * switch had died), plug running guests' NICs into the new one.
 */
export async function withReplug(
  inst: Instances,
  network: string,
  signal: AbortSignal | undefined,
  ensure: () => Promise<{ switch?: unknown }>,
): Promise<void> {
  const before = inst.networks.get(network)?.switch;
  const after = await ensure();
  if (before && JSON.stringify(after.switch) !== JSON.stringify(before))
    await replugNics(inst, network, signal);
}

/**
 * After a switch was restarted (it died under running guests): each running
 * guest's NICs on it are unplugged and plugged again through mconsole, so
 * they connect to the new switch (the switch folder their sandbox binds is
 * kept), and configured again as at boot. The guest is not rebooted.
 */
export async function replugNics(inst: Instances, network: string, signal?: AbortSignal): Promise<void> {
  for (const name of inst.list()) {
    await withLock(
      inst.state,
      `instance-${name}`,
      async () => {
        const r = inst.get(name);
        if (!r || !inst.isRunning(r)) return;
        const net = inst.networks.require(network, "/network");
        const driver = await inst.nicDriver(r.spec.kernel);
        const marker = r.spec.readiness === "marker";
        const mc = inst.mconsole(name);
        const instDir = inst.state.instanceDir(name);
        const wirefilters = { ...(r.wirefilters ?? {}) };
        for (const [i, nic] of (r.spec.nics ?? []).entries()) {
          if (nic.network !== network) continue;
          // An impaired NIC's wirefilter was plugged into the dead switch: it is started again.
          const wf = wirefilters[i];
          if (wf) {
            await stopWirefilter(wf);
            const seccomp = seccompFile(inst.state.root);
            wirefilters[i] = await startWirefilter(instDir, i, net.switchDir, nic.impairment, {
              signal,
              ...(r.hostIds ? { ids: r.hostIds } : {}),
              ...(seccomp ? { seccomp } : {}),
            });
            writeJson(inst.state.instanceRecord(name), { ...inst.require(name), wirefilters });
          }
          const bn = bootNic(name, i, nic, net.switchDir, driver, wf ? nicPlug(instDir, i) : undefined);
          const dev = nicDevice(bn);
          // UML refuses to remove a NIC that is up ("Device is currently open").
          if (marker) await inst.execUnlocked(name, `ip link set ${dev} down; true`);
          await mc.send(`remove ${dev}`, { signal });
          await mc.send(`config ${nicArg(bn)}`, { signal });
          if (!marker) continue;
          const res = await inst.execUnlocked(name, nicCommands(dev, nic, true).join("\n"));
          if (res.exitCode !== 0 || res.output.includes("umlfleet: failed:")) {
            throw new UmlfleetError(
              "UMLFLEET_COMMAND_FAILED",
              `configuring ${dev} of ${name} again on the restarted switch of ${network}: ${res.output}`,
              { name, network },
            );
          }
        }
      },
      120_000,
      signal,
    );
  }
}
