import { execFile, execFileSync } from "node:child_process";
import { existsSync, mkdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll } from "vitest";
import { LocalRuntime } from "../../src";
import { pulumiBinDir } from "../../automation/local-stack";
import { newTestDir, processesMentioning } from "../helpers/runtime";

/** What fixtures/stack-driver.js declares (see its program()). */
export interface Lab {
  size: number;
  memoryMiB?: number;
  extraNic?: boolean;
  extraDisk?: boolean;
  kernelPath?: string;
  baseSizeMiB?: number;
  invalidMac?: string;
  kernelBuild?: boolean;
  /** The fleet as one Fleet (an InstanceGroup) instead of a Disk and an Instance per member. */
  group?: boolean;
  /** A base imported from this image file instead of a busybox build. */
  baseImage?: string;
  /** The first guest's startup script and boot deadline. */
  startup?: string;
  bootTimeoutMs?: number;
  /** Put before every name but the base's (several stacks on one state folder). */
  prefix?: string;
  /** m0's first NIC's impairment (docs/resources.md). */
  impairment?: Record<string, number | boolean>;
}
export interface Result {
  summary?: Record<string, number>;
  outputs?: Record<string, unknown>;
  deployment?: {
    version: number;
    deployment: {
      resources: { type: string; urn: string; outputs?: Record<string, unknown>; dependencies?: string[] }[];
    };
  };
  error?: string;
  stdout: string;
}

export const haveCli = existsSync(join(pulumiBinDir(), "pulumi"));
const driver = join(__dirname, "fixtures", "stack-driver.js");

/** One driver config: the operation, the program's lab, where, and the stack's name (default "test"). */
export interface DriverConfig {
  action: string;
  lab: Lab;
  stateDir: string;
  backendDir: string;
  stackName?: string;
  [extra: string]: unknown;
}

function parseResult(out: string): Result {
  const line = out.split("\n").find((l) => l.startsWith("@@RESULT "));
  if (!line) throw new Error(`driver printed no result:\n${out}`);
  return JSON.parse(line.slice("@@RESULT ".length)) as Result;
}

/** One Pulumi operation in a child process of its own, so that several run at once. */
export function runDriver(cfg: DriverConfig): Promise<Result> {
  return new Promise((resolve, reject) => {
    execFile(
      "node",
      [driver, JSON.stringify(cfg)],
      { encoding: "utf8", timeout: 600_000, maxBuffer: 64 << 20 },
      (err, stdout, stderr) => {
        try {
          resolve(parseResult(stdout));
        } catch (e) {
          reject(new Error(`${err ? err.message : "driver failed"}\n${stderr}`, { cause: e }));
        }
      },
    );
  });
}

/**
 * A test stack on a file backend in a fresh folder, driven through
 * fixtures/stack-driver.js in plain node (Pulumi serializes the provider's
 * closures: they must not pass through vitest's transform). Registers hooks
 * that make the folder and, after the tests, destroy whatever is left.
 */
export function useStack(label: string, defaultLab: Lab) {
  const dir = newTestDir(label);
  const stateDir = join(dir, "s");
  const backendDir = join(dir, "b");
  const pulumi = (action: string, lab: Lab = defaultLab, extra: Record<string, unknown> = {}): Result => {
    const out = execFileSync(
      "node",
      [driver, JSON.stringify({ action, lab, stateDir, backendDir, ...extra })],
      {
        encoding: "utf8",
        timeout: 600_000,
        maxBuffer: 64 << 20,
      },
    );
    return parseResult(out);
  };
  beforeAll(() => mkdirSync(dir, { recursive: true }));
  afterAll(async () => {
    // Whatever a failed test left: destroy through Pulumi, then make sure.
    if (existsSync(stateDir)) {
      pulumi("destroy", defaultLab);
      await new LocalRuntime({ stateDir }).destroyAll();
    }
    rmSync(dir, { recursive: true, force: true });
  });
  return {
    dir,
    stateDir,
    pulumi,
    /** A fresh runtime over the stack's state folder (sees what another process did). */
    rt: () => new LocalRuntime({ stateDir }),
    /** Processes naming the state folder, and whatever is still in it. */
    leftOnHost: () => ({
      processes: processesMentioning(stateDir),
      files: existsSync(stateDir)
        ? execFileSync("find", [stateDir], { encoding: "utf8" }).trim().split("\n")
        : [],
    }),
    /** The result, or a thrown error with the operation's whole output. */
    ok: (r: Result) => {
      if (r.error) throw new Error(`${r.error}\n${r.stdout}`);
      return r;
    },
  };
}
