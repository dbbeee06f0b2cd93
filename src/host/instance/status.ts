import { nicDevice, ubdDevice } from "../../uml/argv";
import type { Instances } from "./instances";
import { nicMac, type InstanceRecord, type InstanceStatus } from "./types";

/** An instance's status plus what only its running guest can tell. */
export type InstanceInspection = InstanceStatus & {
  uptimeSec?: number;
  kernelVersion?: string;
  devices: Record<string, string>;
};

/** An instance's status, from its record and the liveness of its process. */
export function statusOf(inst: Instances, r: InstanceRecord): InstanceStatus {
  const name = r.spec.name;
  const running = inst.isRunning(r);
  const s = r.spec;
  return {
    name,
    state: running ? "running" : "stopped",
    pid: running ? r.process!.pid : undefined,
    startedAtMs: running ? r.startedAtMs : undefined,
    consoleLog: inst.state.consoleLog(name),
    mconsoleSocket: inst.mconsoleSocket(name),
    serialLines: Array.from({ length: s.serialLines }, (_, line) => ({
      line,
      device: `/dev/ttyS${line}`,
      in: inst.fifo(name, `ttyS${line}`, "in"),
      out: inst.fifo(name, `ttyS${line}`, "out"),
    })),
    nics: (s.nics ?? []).map((n, index) => ({
      index,
      device: nicDevice({ driver: r.nicDriver ?? "eth", index }),
      network: n.network,
      mac: nicMac(s.name, index, n),
      ...(n.ipv4 ? { ipv4: n.ipv4 } : {}),
    })),
    disks: inst.diskList(s).map((d) => ({
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

/** status() plus what only the running guest can tell (mconsole). */
export async function inspect(inst: Instances, name: string): Promise<InstanceInspection> {
  const st = inst.status(name);
  const devices: Record<string, string> = {};
  if (st.state !== "running") return { ...st, devices };
  const mc = inst.mconsole(name);
  for (const d of st.disks) devices[`ubd${d.index}`] = await mc.send(`config ubd${d.index}`);
  return {
    ...st,
    devices,
    kernelVersion: await mc.send("version"),
    uptimeSec: st.startedAtMs ? Math.round((Date.now() - st.startedAtMs) / 1000) : undefined,
  };
}
