import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { LocalRuntime } from "../../src";
import { waitFor } from "../../src/process";
import { newTestDir, processesMentioning } from "../helpers/runtime";
import { haveCli, runDriver, type DriverConfig, type Lab, type Result } from "./stack-harness";

/** The result, or a thrown error with the operation's whole output. */
const ok = (what: string, r: Result) => {
  if (r.error) throw new Error(`${what}: ${r.error}\n${r.stdout}`);
  return r;
};

describe.skipIf(!haveCli)(
  "several stacks on one host state folder, driven by the real pulumi CLI at once",
  () => {
    const dir = newTestDir("stacks");
    const stateDir = join(dir, "s");
    const stacks = ["s0", "s1", "s2", "s3"];
    // Each stack: two guests on its own network, its own names; the base "base" is the same spec in all.
    const lab = (stack: string): Lab => ({ size: 2, prefix: `${stack}-` });
    const cfg = (stack: string, action: string, extra: Partial<DriverConfig> = {}): DriverConfig => ({
      action,
      lab: lab(stack),
      stateDir,
      // One file backend per stack (one per student); the host's state folder is the one shared thing.
      backendDir: join(dir, `b-${stack}`),
      stackName: stack,
      ...extra,
    });
    const rt = () => new LocalRuntime({ stateDir });
    beforeAll(() => mkdirSync(dir, { recursive: true }));
    afterAll(async () => {
      // Whatever a failed test left: destroy through Pulumi, then make sure.
      if (existsSync(stateDir)) {
        await Promise.all(
          [...stacks, "twin"].map((s) => runDriver(cfg(s, "destroy")).catch(() => undefined)),
        );
        await rt().destroyAll();
      }
      rmSync(dir, { recursive: true, force: true });
    });

    it("4 stacks' `up` at once converge: one shared base image, each stack's guests reach each other", async () => {
      const results = await Promise.all(stacks.map((s) => runDriver(cfg(s, "up"))));
      results.forEach((r, i) => ok(`up of ${stacks[i]}`, r));
      const images = readdirSync(join(stateDir, "images")).filter((f) => f.endsWith(".img"));
      expect(images).toHaveLength(1);
      expect([...rt().images.get("base")!.owners!].sort()).toEqual(stacks.map((s) => `e2e/${s}`));
      for (const s of stacks) {
        expect(rt().instances.get(`${s}-m0`)!.owners).toEqual([`e2e/${s}`]);
        expect(rt().networks.get(`${s}-lan`)!.owners).toEqual([`e2e/${s}`]);
        // Every stack's guests have the same addresses, on their own switch.
        expect((await rt().exec(`${s}-m0`, "ping -c 2 -W 5 10.0.0.2")).output).toContain(
          "2 packets received",
        );
        expect((await rt().exec(`${s}-m1`, "ping -c 1 -W 5 10.0.0.1")).output).toContain(
          "1 packets received",
        );
      }
      // A preview after changes nothing.
      expect(Object.keys(ok("preview", await runDriver(cfg("s0", "preview"))).summary!)).toEqual(["same"]);
    });

    it("a stack declaring another stack's names is refused when checked, naming the owner; the owner's guests are untouched", async () => {
      // s0's program (its names) run as another stack: "intruder".
      const r = await runDriver(cfg("intruder", "up", { lab: lab("s0") }));
      expect(r.error).toBeDefined();
      // check asks the host, so preview says it too, before any step on those names.
      expect(r.stdout + r.error).toMatch(
        /UMLFLEET_CONFLICT\] [a-z-]+\/name: "s0-[a-z0-9-]+" belongs to stack "e2e\/s0"/,
      );
      expect(r.stdout + r.error).toContain("another stateDir");
      expect(rt().instanceStatus("s0-m0").bootCount).toBe(1);
      // The intruder may have shared the base meanwhile (bases are shared); its destroy lets go of it.
      ok("destroy intruder", await runDriver(cfg("intruder", "destroy", { lab: lab("s0") })));
      expect(rt().instanceStatus("s0-m0").state).toBe("running");
      expect([...rt().images.get("base")!.owners!].sort()).toEqual(stacks.map((s) => `e2e/${s}`));
    });

    it("the 4 destroys at once leave the host clean", async () => {
      const results = await Promise.all(stacks.map((s) => runDriver(cfg(s, "destroy"))));
      results.forEach((r, i) => ok(`destroy of ${stacks[i]}`, r));
      expect(processesMentioning(stateDir)).toEqual([]);
      expect(existsSync(stateDir)).toBe(false);
    });

    it("two `up` of the same stack at once: Pulumi's stack lock refuses the second, the first converges with no duplicate", async () => {
      const twin = cfg("twin", "up");
      // The stack exists first (two `stack init` at once is another race, not this one).
      ok("preview", await runDriver({ ...twin, action: "preview" }));
      const first = runDriver(twin);
      // Start the second once the first holds its lock (Pulumi's file-backend lock is
      // write-then-check: two taken in the same instant may both be refused).
      const locks = join(twin.backendDir, ".pulumi", "locks");
      const held = await waitFor(
        () => (existsSync(locks) && hasLockFile(locks) ? true : undefined),
        120_000,
        50,
      );
      expect(held, "the first up never took its lock").toBe(true);
      const second = await runDriver(twin);
      expect(second.error).toMatch(/the stack is currently locked by 1 lock\(s\)/);
      ok("first up", await first);
      // No duplicate: one guest per name, each booted once, one overlay each.
      const inv = await rt().inventory();
      expect(inv.instances).toEqual(["twin-m0", "twin-m1"]);
      expect(inv.disks).toEqual(["twin-m0-root", "twin-m1-root"]);
      for (const m of inv.instances) expect(rt().instanceStatus(m).bootCount).toBe(1);
    });

    it("a stack recorded before owners were passed (an upgrade) previews no change, and its destroy ends clean", async () => {
      const twin = cfg("twin", "up");
      // The state and the host as an older umlfleet left them: no owner anywhere.
      const dep = ok("export", await runDriver({ ...twin, action: "export" })).deployment!;
      const dynamic = dep.deployment.resources.filter((r) => r.type.startsWith("pulumi-nodejs:dynamic"));
      expect(dynamic.filter((r) => r.outputs?.owner === "e2e/twin").length).toBeGreaterThan(5);
      for (const r of dynamic as { inputs?: Record<string, unknown>; outputs?: Record<string, unknown> }[]) {
        delete r.inputs?.owner;
        delete r.outputs?.owner;
      }
      ok("import", await runDriver({ ...twin, action: "import", deployment: dep }));
      const records = execFileSync("find", [stateDir, "-name", "*.json", "-not", "-path", "*/vm/*"], {
        encoding: "utf8",
      })
        .trim()
        .split("\n")
        .filter((f) => /\/(bases|disks|networks|links)\/[^/]+\.json$|\/instance\.json$/.test(f));
      expect(records.length).toBeGreaterThan(5);
      for (const f of records) {
        const rec = JSON.parse(readFileSync(f, "utf8")) as { owners?: string[] };
        expect(rec.owners, f).toEqual(["e2e/twin"]);
        delete rec.owners;
        writeFileSync(f, JSON.stringify(rec));
      }
      expect(Object.keys(ok("preview", await runDriver({ ...twin, action: "preview" })).summary!)).toEqual([
        "same",
      ]);
      ok("destroy twin", await runDriver({ ...twin, action: "destroy" }));
      expect(processesMentioning(stateDir)).toEqual([]);
      expect(existsSync(stateDir)).toBe(false);
    });
  },
);

/** Whether any file lies under `dir` (a lock file of the stack). */
function hasLockFile(dir: string): boolean {
  const walk = (d: string): boolean =>
    readdirSync(d, { withFileTypes: true }).some((e) =>
      e.isDirectory() ? walk(join(d, e.name)) : e.name.endsWith(".json"),
    );
  try {
    return walk(dir);
  } catch {
    return false;
  }
}
