// One Pulumi operation on a stack of section "hosts" (bench/hosts.ts): N
// guests per host on one network, on three target hosts over SSH (the
// namespace hosts of test/helpers/hosts.ts, declared as test/e2e's
// hosts-driver.js declares them) or on this machine. In plain node like
// fleet-program.ts (Pulumi serializes the provider's closures: compiled dist/
// only). Usage: node dist/bench/hosts-program.js '<json HostsUpCfg>'.
// Prints one line "@@RESULT <json HostsUpResult>".
import { readFileSync } from "node:fs";
import * as pulumi from "@pulumi/pulumi";
import type { EngineEvent } from "@pulumi/pulumi/automation";
import * as uf from "../provider/index";
import { localStack } from "../automation/local-stack";
import { quickUp, type UpTimings } from "../automation/quick-up";
import { fleetNic } from "./lib";

export interface HostsUpCfg {
  action: "up" | "destroy";
  stackName: string;
  backendDir: string;
  /** Target hosts, each a Host resource; empty: everything on this machine, in `stateDir`. */
  hosts: { host: string; user: string; hostKey: string }[];
  /** The private key authorized on every host (a root-only file: read here, never in argv). */
  privateKeyPath?: string;
  /** The local state folder (no `hosts`). */
  stateDir?: string;
  /** The kernel binary, at this path on every host (Kernel `path`, no upload). */
  kernelPath: string;
  /** Guests per host; 0: only the hosts, kernels and bases (the prep stack). */
  perHost: number;
  bootTimeoutMs: number;
}

/**
 * One resource step of the operation, from engine events (ms after the call, time of receipt). A
 * "same" step (nothing to change) starts once the engine has the resource's check and diff.
 */
export interface StepTiming {
  name: string;
  type: string;
  op: string;
  startMs: number;
  doneMs?: number;
}

export interface HostsUpResult {
  /** From the call (stack.destroy, or quickUp for up) to its return. */
  ms: number;
  /** Program process start to the stack selected (outside `ms`). */
  setupMs: number;
  /** Guests whose state is "running" once the up returned (the groups' memberInfo). */
  ready?: number;
  summary?: unknown;
  timings?: UpTimings;
  steps: StepTiming[];
  error?: string;
  outputTail?: string;
}

/** The network's and resources' names (the same on every host and in the one-host stack). */
export const UP_NAMES = {
  base: "ubase",
  network: "ulan",
  member: (host: number, k: number) => `u${host}m${k}`,
};

function program(cfg: HostsUpCfg) {
  const privateKey = cfg.privateKeyPath ? readFileSync(cfg.privateKeyPath, "utf8") : undefined;
  const hosts = cfg.hosts.map(
    (h, i) =>
      new uf.Host(`h${i}`, {
        ssh: {
          host: h.host,
          user: h.user,
          hostKey: h.hostKey,
          ...(privateKey ? { privateKey: pulumi.secret(privateKey) } : {}),
        },
      }),
  );
  // One placement per host; none: this machine.
  const places = hosts.length > 0 ? hosts.map((host) => ({ host })) : [{ stateDir: cfg.stateDir! }];
  const onEach = places.map((at, i) => ({
    at,
    kernel: new uf.Kernel(`k${i}`, { ...at, path: cfg.kernelPath }),
    base: new uf.RootFilesystem(`b${i}`, {
      ...at,
      name: UP_NAMES.base,
      source: { kind: "busybox", sizeMiB: 32 },
    }),
  }));
  if (cfg.perHost === 0) return { ready: 0 };
  // Each host's switch takes its guests and the cables (the first host's: one per other host).
  const ports = Math.max(64, cfg.perHost + places.length + 4);
  const lan =
    hosts.length > 0
      ? new uf.Network(UP_NAMES.network, { hosts, ports })
      : new uf.Network(UP_NAMES.network, { stateDir: cfg.stateDir!, ports });
  const groups = onEach.map(({ at, kernel, base }, i) => {
    const members = Object.fromEntries(
      Array.from({ length: cfg.perHost }, (_, k) => [
        UP_NAMES.member(i, k),
        {
          memoryMiB: 64,
          bootTimeoutMs: cfg.bootTimeoutMs,
          // One /24 for every guest of every host (10.0.0.<j+1>, j < 254).
          nics: [{ network: lan, ipv4: fleetNic(i * cfg.perHost + k, 1).ipv4 }],
        },
      ]),
    );
    return new uf.InstanceGroup(`g${i}`, { ...at, kernel, base, members });
  });
  const ready = pulumi
    .all(groups.map((g) => g.memberInfo))
    .apply((all) => all.flatMap((m) => Object.values(m)).filter((x) => x.state === "running").length);
  // Derived from resources with secret inputs (the hosts' keys): quickUp would show "[secret]".
  return { ready: pulumi.unsecret(ready) };
}

async function main() {
  const cfg = JSON.parse(process.argv[2] ?? "{}") as HostsUpCfg;
  const t0 = performance.now();
  const stack = await localStack({
    projectName: "umlfleet-bench-hosts",
    stackName: cfg.stackName,
    program: async () => program(cfg),
    backendDir: cfg.backendDir,
    ...(cfg.stateDir ? { env: { UMLFLEET_STATE_DIR: cfg.stateDir } } : {}),
  });
  let out = "";
  const onOutput = (s: string) => {
    out = (out + s).slice(-8000);
  };
  const steps = new Map<string, StepTiming>();
  let t1 = 0;
  const onEvent = (e: EngineEvent) => {
    const now = Math.round(performance.now() - t1);
    const pre = e.resourcePreEvent?.metadata;
    if (pre)
      steps.set(pre.urn, {
        name: pre.urn.split("::").pop()!,
        type: pre.type.split(":").pop()!,
        op: pre.op,
        startMs: now,
      });
    const done = e.resOutputsEvent?.metadata;
    const step = done && steps.get(done.urn);
    if (step) step.doneMs = now;
  };
  const result: HostsUpResult = { ms: 0, setupMs: Math.round(performance.now() - t0), steps: [] };
  t1 = performance.now();
  try {
    if (cfg.action === "up") {
      // quickUp: without the Automation API's read-back commands, as the scale curve's `up`.
      const r = await quickUp(stack, { onOutput, onEvent });
      result.summary = r.summary.resourceChanges;
      result.timings = r.timings;
      const ready: unknown = r.outputs.ready?.value;
      if (typeof ready === "number") result.ready = ready;
    } else {
      const r = await stack.destroy({ onOutput, onEvent });
      result.summary = r.summary.resourceChanges;
    }
  } catch (e) {
    result.error = String(e instanceof Error ? e.message : e).slice(-4000);
    result.outputTail = out;
  }
  result.ms = Math.round(performance.now() - t1);
  result.steps = [...steps.values()].sort((a, b) => a.startMs - b.startMs);
  process.stdout.write(`\n@@RESULT ${JSON.stringify(result)}\n`);
}

if (require.main === module) void main();
