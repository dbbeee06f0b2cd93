import { copyFileSync, existsSync, statSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { LocalRuntime } from "../../src";
import { sha256File } from "../../src/host/images";
import { flipByte } from "../helpers/canary";
import { guestKernelPid, processesMentioning } from "../helpers/runtime";
import { haveCli, useStack, type Lab } from "./stack-harness";

type Resource = { type: string; outputs?: Record<string, unknown> };
const baseOf = (dep: { deployment: { resources: Resource[] } }) =>
  dep.deployment.resources.find((r) => r.type === "pulumi-nodejs:dynamic/umlfleet:RootFilesystem")!.outputs!;

/**
 * A base changed behind our back, one byte with its mtime put back, through
 * the real CLI: refresh reports it naming the file; up restores it from its
 * recipe when that gives the recorded bytes, and otherwise fails naming it,
 * booting nothing and making no overlay over it.
 */
describe.skipIf(!haveCli)("e2e: a changed base", () => {
  describe("restorable from its recipe", () => {
    const lab: Lab = { size: 2 };
    const { pulumi, ok, rt, stateDir } = useStack("bdrift", lab);

    it("refresh names the file; up restores the bytes before the killed guest boots again", async () => {
      ok(pulumi("up"));
      await rt().exec("m1", "echo kept > /root/data && sync");
      const base = baseOf(ok(pulumi("export")).deployment!);
      const image = String(base.imagePath);
      flipByte(image, 8 * 1024 * 1024 + 99);
      process.kill(guestKernelPid(stateDir, "m1"), "SIGKILL");

      // Refresh finds it (and the killed guest); `pulumi refresh --diff` shows the drift output, which names the file.
      expect(ok(pulumi("refresh")).summary).toMatchObject({ update: 2 });
      expect(String(baseOf(ok(pulumi("export")).deployment!).drift)).toContain(image);

      ok(pulumi("up"));
      expect(await sha256File(image)).toBe(base.imageSha);
      expect(baseOf(ok(pulumi("export")).deployment!).drift).toBe("");
      expect(rt().instanceStatus("m1").state).toBe("running");
      expect((await rt().exec("m1", "cat /root/data")).output).toContain("kept");
      const preview = ok(pulumi("preview"));
      expect(Object.keys(preview.summary!)).toEqual(["same"]);
    });
  });

  describe("not restorable (its source changed too)", () => {
    const stack = useStack("bdrift2", { size: 1 });
    const source = join(stack.dir, "import.img");
    const lab: Lab = { size: 1, baseImage: source };

    it("refresh names the file; up fails naming it, boots nothing over it, makes no overlay over it", async () => {
      // An image to import: a busybox base built elsewhere.
      const builder = new LocalRuntime({ stateDir: join(stack.dir, "build") });
      const built = await builder.ensureBase({ name: "src", source: { kind: "busybox", sizeMiB: 32 } });
      copyFileSync(built.imagePath, source);
      await builder.destroyAll();

      stack.ok(stack.pulumi("up", lab));
      const image = String(baseOf(stack.ok(stack.pulumi("export", lab)).deployment!).imagePath);
      flipByte(image, 4096 * 7 + 3);
      flipByte(source, 4096 * 7 + 3);
      process.kill(guestKernelPid(stack.stateDir, "m0"), "SIGKILL");
      expect(stack.ok(stack.pulumi("refresh", lab)).summary).toMatchObject({ update: 2 });
      expect(String(baseOf(stack.ok(stack.pulumi("export", lab)).deployment!).drift)).toContain(image);

      const failed = stack.pulumi("up", { ...lab, size: 2 });
      expect(failed.error).toContain("UMLFLEET_BASE_CHANGED");
      expect(failed.error).toContain(image);
      expect(failed.error).toContain("cannot be restored");
      expect(processesMentioning(`${stack.stateDir}/instances/m0/`).join("\n")).toBe("");
      expect(stack.rt().instanceStatus("m0").state).toBe("stopped");
      expect(stack.rt().instances.get("m1")).toBeUndefined();
      expect(existsSync(join(stack.stateDir, "disks", "m1-root.img"))).toBe(false);
      expect(statSync(image).size).toBeGreaterThan(0); // left as found, for the user to restore
    });
  });
});
