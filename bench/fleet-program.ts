// One Pulumi operation on the benchmark fleet stack, in plain node (Pulumi
// serializes the provider's closures: it must run from compiled dist/, never
// under a TS transform). Usage: node dist/bench/fleet-program.js '<json FleetCfg>'.
// Prints one line "@@RESULT <json FleetResult>".
import type { EngineEvent } from "@pulumi/pulumi/automation";
import * as uf from "../provider/index";
import { localStack } from "../automation/local-stack";
import { quickUp, type UpTimings } from "../automation/quick-up";
import { fleetNic } from "./lib";

export interface FleetCfg {
  action: "up" | "preview" | "destroy";
  stackName: string;
  stateDir: string;
  backendDir: string;
  kernelPath: string;
  /** 0 with networks 0: only the kernel and the base (the "prep" stack). */
  size: number;
  networks: number;
  memoryMiB: number;
  kernelArgs: string[];
  /** Passed as UpOptions.parallel when set; else the CLI default (4 x CPUs). */
  parallel?: number;
  /**
   * "group": the fleet as one InstanceGroup resource (what Fleet does).
   * "resources": a Disk and an Instance resource per guest (2 per guest). Default "group".
   */
  shape?: "group" | "resources";
  /** Each guest's bootTimeoutMs (large fleets on 2 cores: the default 60 s is too short for the last ones). */
  bootTimeoutMs?: number;
  /** An empty program: no resources at all. */
  empty?: boolean;
  /** `up` through quickUp (automation/quick-up.ts): without the Automation API's read-back commands. */
  quick?: boolean;
  /** Extra environment for the CLI and provider (e.g. PULUMI_SKIP_CHECKPOINTS=true, an experiment knob). */
  extraEnv?: Record<string, string>;
}

export interface FleetResult {
  ms: number;
  setupMs: number;
  summary?: unknown;
  error?: string;
  outputTail?: string;
  /** quickUp's: the engine's first event, its summary, the CLI's exit (ms after the call). */
  timings?: UpTimings;
  /** From engine events (time of receipt, ms after the operation started): per resource type. */
  phases?: Record<
    string,
    { n: number; firstStartMs: number; lastDoneMs: number; medianOpMs: number; maxOpMs: number }
  >;
}

function program(cfg: FleetCfg) {
  if (cfg.empty) return {};
  const h = { stateDir: cfg.stateDir };
  const kernel = new uf.Kernel("kernel", { ...h, path: cfg.kernelPath });
  const base = new uf.RootFilesystem("base", { ...h, source: { kind: "busybox", sizeMiB: 32 } });
  const nets = Array.from({ length: cfg.networks }, (_, n) => new uf.Network(`net${n}`, h));
  const nic = (i: number) => {
    const { network, ipv4 } = fleetNic(i, cfg.networks);
    return { network: nets[network]!, ipv4 };
  };
  const args = {
    ...(cfg.kernelArgs.length ? { kernelArgs: cfg.kernelArgs } : {}),
    ...(cfg.bootTimeoutMs ? { bootTimeoutMs: cfg.bootTimeoutMs } : {}),
  };
  if ((cfg.shape ?? "group") === "group" && cfg.size > 0) {
    const members = Object.fromEntries(
      Array.from({ length: cfg.size }, (_, i) => [
        `g${i}`,
        { memoryMiB: cfg.memoryMiB, nics: [nic(i)], ...args },
      ]),
    );
    new uf.InstanceGroup("fleet", { ...h, kernel, base, members });
    return { count: cfg.size };
  }
  for (let i = 0; i < cfg.size; i++) {
    const root = new uf.Disk(`g${i}-root`, { ...h, kind: "overlay", base });
    new uf.Instance(`g${i}`, {
      ...h,
      kernel,
      rootDisk: root,
      memoryMiB: cfg.memoryMiB,
      nics: [nic(i)],
      ...args,
    });
  }
  return { count: cfg.size };
}

async function main() {
  const cfg = JSON.parse(process.argv[2] ?? "{}") as FleetCfg;
  const t0 = performance.now();
  const stack = await localStack({
    projectName: "umlfleet-bench",
    stackName: cfg.stackName,
    program: async () => program(cfg),
    backendDir: cfg.backendDir,
    env: { UMLFLEET_STATE_DIR: cfg.stateDir, ...(cfg.extraEnv ?? {}) },
  });
  let out = "";
  const onOutput = (s: string) => {
    out = (out + s).slice(-8000);
  };
  const starts = new Map<string, number>();
  const ops: { type: string; start: number; done: number }[] = [];
  let t1 = 0;
  const onEvent = (e: EngineEvent) => {
    const now = performance.now() - t1;
    const pre = e.resourcePreEvent?.metadata;
    if (pre && pre.op !== "same") starts.set(pre.urn, now);
    const done = e.resOutputsEvent?.metadata;
    if (done && starts.has(done.urn)) ops.push({ type: done.type, start: starts.get(done.urn)!, done: now });
  };
  const par = { onEvent, ...(cfg.parallel ? { parallel: cfg.parallel } : {}) };
  const result: FleetResult = { ms: 0, setupMs: Math.round(performance.now() - t0) };
  t1 = performance.now();
  try {
    switch (cfg.action) {
      case "up": {
        if (cfg.quick) {
          const r = await quickUp(stack, { onOutput, ...par });
          result.summary = r.summary.resourceChanges;
          result.timings = r.timings;
          break;
        }
        const r = await stack.up({ onOutput, ...par });
        result.summary = r.summary.resourceChanges;
        break;
      }
      case "preview": {
        const r = await stack.preview({ onOutput, ...par });
        result.summary = r.changeSummary;
        break;
      }
      case "destroy": {
        const r = await stack.destroy({ onOutput, ...par });
        result.summary = r.summary.resourceChanges;
        break;
      }
    }
  } catch (e) {
    result.error = String(e instanceof Error ? e.message : e).slice(-4000);
    result.outputTail = out;
  }
  result.ms = Math.round(performance.now() - t1);
  result.phases = {};
  for (const type of new Set(ops.map((o) => o.type))) {
    const xs = ops.filter((o) => o.type === type);
    const durs = xs.map((o) => o.done - o.start).sort((a, b) => a - b);
    result.phases[type.split(":").pop()!] = {
      n: xs.length,
      firstStartMs: Math.round(Math.min(...xs.map((o) => o.start))),
      lastDoneMs: Math.round(Math.max(...xs.map((o) => o.done))),
      medianOpMs: Math.round(durs[Math.floor(durs.length / 2)]!),
      maxOpMs: Math.round(durs[durs.length - 1]!),
    };
  }
  process.stdout.write(`\n@@RESULT ${JSON.stringify(result)}\n`);
}

if (require.main === module) void main();
