import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import {
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { basename, join, resolve } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { LocalRuntime } from "../../src";
import { pulumiBinDir } from "../../automation/local-stack";
import { SANDBOX_BIN } from "../../src/host/sandbox";
import { newTestDir, processesMentioning, testKernel } from "../helpers/runtime";
import { haveCli } from "./stack-harness";

/**
 * kill -9 of the `pulumi` CLI while `up` creates 8 guests, in a project folder
 * run by the real CLI (language host, program, dynamic provider: the whole
 * process tree of a real run). Within a minute nothing of that run is left but
 * the guests and the switch it made; the recovery of docs/operations.md gives
 * 8 running guests, no duplicate, no pending operation; destroy leaves nothing.
 */

const REPO = resolve(__dirname, "../..");
const PROGRAM = join(__dirname, "fixtures", "killed-up", "index.js");
const SIZE = 8;
const KERNEL = testKernel();
/**
 * The recovery after a killed CLI, exactly as docs/operations.md gives it: first the
 * file backend's side files (`find <backend>/.pulumi -name '*.attrs' -delete`), then these.
 */
const RECOVERY = [
  ["cancel", "--yes"],
  ["refresh", "--clear-pending-creates", "--yes"],
  ["up", "--yes", "--skip-preview"],
];

interface Proc {
  pid: number;
  ppid: number;
  startTicks: string;
  args: string[];
}

/** Every process, from /proc: pid, parent, start time (field 22 of stat) and argv. */
function processTable(): Map<number, Proc> {
  const table = new Map<number, Proc>();
  for (const e of readdirSync("/proc")) {
    if (!/^\d+$/.test(e)) continue;
    try {
      const stat = readFileSync(`/proc/${e}/stat`, "utf8");
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      if (fields[0] === "Z" || fields[0] === "X") continue;
      const args = readFileSync(`/proc/${e}/cmdline`, "utf8").split("\0").slice(0, -1);
      table.set(Number(e), { pid: Number(e), ppid: Number(fields[1]), startTicks: fields[19]!, args });
    } catch {
      // exited meanwhile
    }
  }
  return table;
}

function descendants(table: Map<number, Proc>, root: number): Proc[] {
  const out: Proc[] = [];
  const queue = [root];
  while (queue.length) {
    const parent = queue.shift()!;
    for (const p of table.values())
      if (p.ppid === parent) {
        out.push(p);
        queue.push(p.pid);
      }
  }
  return out;
}

/** A guest's sandbox or kernel processes, or a switch: what a run may leave behind. */
const isGuestOrSwitch = (p: Proc) =>
  [basename(SANDBOX_BIN), basename(KERNEL), "vde_switch"].includes(basename(p.args[0] ?? ""));

const alive = (table: Map<number, Proc>, p: Proc) => table.get(p.pid)?.startTicks === p.startTicks;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function useProject(label: string, group: boolean) {
  const dir = newTestDir(label);
  const project = join(dir, "proj");
  const stateDir = join(dir, "s");
  mkdirSync(join(dir, "home"), { recursive: true });
  mkdirSync(join(dir, "b"), { recursive: true });
  mkdirSync(join(project, "node_modules"), { recursive: true });
  writeFileSync(join(project, "Pulumi.yaml"), "name: killedup\nruntime: nodejs\nmain: index.js\n");
  writeFileSync(join(project, "package.json"), JSON.stringify({ name: "killedup", main: "index.js" }));
  writeFileSync(join(project, "index.js"), `require(${JSON.stringify(PROGRAM)});\n`);
  // The provider loads umlfleet (and its host @pulumi/pulumi) from the project's node_modules.
  symlinkSync(REPO, join(project, "node_modules", "umlfleet"));
  symlinkSync(join(REPO, "node_modules", "@pulumi"), join(project, "node_modules", "@pulumi"));
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    PATH: [
      pulumiBinDir(),
      join(REPO, "bin"),
      join(REPO, "node_modules/@pulumi/pulumi"),
      process.env.PATH,
    ].join(":"),
    // A plain file:// URL (no ?metadata=skip), as `pulumi login --local` gives: the recovery
    // must cope with the `.attrs` side files it writes in place.
    PULUMI_BACKEND_URL: `file://${join(dir, "b")}`,
    PULUMI_HOME: join(dir, "home"),
    PULUMI_CONFIG_PASSPHRASE: "test",
    PULUMI_SKIP_UPDATE_CHECK: "true",
    PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION: "true",
    UMLFLEET_STATE_DIR: stateDir,
    KU_GROUP: group ? "1" : "0",
    KU_SIZE: String(SIZE),
  };
  const pulumi = (args: string[]): string =>
    execFileSync(join(pulumiBinDir(), "pulumi"), [...args, "--non-interactive"], {
      cwd: project,
      env,
      encoding: "utf8",
      stdio: ["ignore", "pipe", "pipe"],
      timeout: 600_000,
      maxBuffer: 64 << 20,
    });
  const start = (args: string[]): ChildProcess =>
    spawn(join(pulumiBinDir(), "pulumi"), [...args, "--non-interactive"], {
      cwd: project,
      env,
      stdio: ["ignore", "pipe", "pipe"],
    });
  return { dir, stateDir, backend: join(dir, "b"), pulumi, start };
}

describe.skipIf(!haveCli)("kill -9 of the pulumi CLI during `up` of 8 guests", () => {
  const cleanups: (() => Promise<void>)[] = [];
  afterAll(async () => {
    for (const c of cleanups) await c();
  });

  for (const group of [true, false]) {
    const what = group ? "one Fleet (an InstanceGroup)" : "8 Instance resources";
    it(`as ${what}: the run's processes exit, the documented recovery converges without duplicates`, async () => {
      const { dir, stateDir, backend, pulumi, start } = useProject(group ? "kug" : "kui", group);
      const names = Array.from({ length: SIZE }, (_, i) => (group ? `g-${i}` : `m${i}`));
      let runProcs: Proc[] = [];
      cleanups.push(async () => {
        // Whatever a failed test left: the run's processes (by pid and start
        // time), the stack, then the host.
        const table = processTable();
        for (const p of runProcs) if (alive(table, p) && !isGuestOrSwitch(p)) process.kill(p.pid, "SIGKILL");
        try {
          pulumi(["cancel", "--yes"]);
          pulumi(["destroy", "--yes"]);
        } catch {
          // best effort: destroyAll below makes sure
        }
        await new LocalRuntime({ stateDir }).destroyAll();
        rmSync(dir, { recursive: true, force: true });
      });
      pulumi(["stack", "init", "t"]);

      // Start `up`, wait until a guest's folder exists, then kill -9 the CLI.
      const cli = start(["up", "--yes", "--skip-preview"]);
      let output = "";
      cli.stdout!.on("data", (d: Buffer) => (output += d.toString()));
      cli.stderr!.on("data", (d: Buffer) => (output += d.toString()));
      let exited = false;
      cli.on("exit", () => (exited = true));
      const instancesDir = join(stateDir, "instances");
      for (
        let waited = 0;
        !(existsSync(instancesDir) && readdirSync(instancesDir).length > 0);
        waited += 50
      ) {
        if (exited || waited > 300_000)
          throw new Error(`up ended or stalled before any guest was made:\n${output}`);
        await sleep(50);
      }
      runProcs = descendants(processTable(), cli.pid!);
      process.kill(cli.pid!, "SIGKILL");
      const killedAt = performance.now();
      await new Promise((r) => (exited ? r(undefined) : cli.once("exit", r)));

      // The run's own processes, as measured: the language host and the program
      // it launched, the provider's /bin/sh wrapper and its node.
      const langHost = runProcs.find(
        (p) =>
          p.args.some((a) => a.endsWith("/pulumi-language-nodejs")) && !p.args.includes("--pulumi-run-shim"),
      );
      const provider = runProcs.find((p) => p.args.some((a) => a.includes("cmd/dynamic-provider")));
      expect(langHost, "the run's language host").toBeDefined();
      expect(provider, "the run's provider").toBeDefined();
      const engineAddress = langHost!.args[langHost!.args.length - 1]!;
      const leftovers = () => {
        const table = processTable();
        const ofRun = [...runProcs, ...[...table.values()].filter((p) => p.args.includes(engineAddress))];
        const left = ofRun.filter((p) => alive(table, p) && !isGuestOrSwitch(p));
        return [...new Set(left.map((p) => `${p.pid} ${p.args.join(" ")}`))];
      };
      // A generous bound: the watchdogs poll every second, and the provider
      // first finishes the creates in flight.
      while (leftovers().length > 0 && performance.now() - killedAt < 60_000) await sleep(250);
      expect(leftovers()).toEqual([]);

      // The kill can land while the backend writes the stack's side file in place (created
      // empty, then filled: a CI run on 2026-12-06 caught it); here it always does.
      const attrs = join(backend, ".pulumi", "stacks", "killedup", "t.json.attrs");
      expect(existsSync(attrs), attrs).toBe(true);
      writeFileSync(attrs, "");
      expect(() => pulumi(["cancel", "--yes"])).toThrow(/failed to load checkpoint: EOF/);

      // The recovery, as documented.
      execFileSync("find", [join(backend, ".pulumi"), "-name", "*.attrs", "-delete"]);
      for (const args of RECOVERY) pulumi(args);

      const rt = new LocalRuntime({ stateDir });
      expect(rt.instances.list().sort()).toEqual([...names].sort());
      // Adopted as they were, not booted again.
      for (const n of names) expect(rt.instanceStatus(n)).toMatchObject({ state: "running", bootCount: 1 });
      expect(readdirSync(instancesDir).sort()).toEqual([...names].sort());
      // Exactly one sandbox (the outer bwrap of a guest) per instance of this state folder.
      const table = processTable();
      const sandboxes = [...table.values()]
        .filter(
          (p) =>
            p.args[0] === SANDBOX_BIN &&
            table.get(p.ppid)?.args[0] !== SANDBOX_BIN &&
            p.args.some((a) => a.startsWith(`${stateDir}/instances/`)),
        )
        .map((p) => new RegExp(`${stateDir}/instances/([^/]+)/`).exec(p.args.join(" "))![1]!);
      expect(sandboxes.sort()).toEqual([...names].sort());

      const exported = JSON.parse(pulumi(["stack", "export"])) as {
        deployment: { pending_operations?: unknown[]; resources?: { type: string }[] };
      };
      expect(exported.deployment.pending_operations ?? []).toEqual([]);
      const guests = (exported.deployment.resources ?? []).filter((r) =>
        r.type.endsWith(group ? "umlfleet:InstanceGroup" : "umlfleet:Instance"),
      );
      expect(guests).toHaveLength(group ? 1 : SIZE);
      pulumi(["preview", "--expect-no-changes"]);

      pulumi(["destroy", "--yes"]);
      expect(processesMentioning(stateDir)).toEqual([]);
      expect(existsSync(stateDir)).toBe(false);
    }, 900_000);
  }
});
