import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { DelayCalibration } from "../../src/host/delay-calibration";
import { CALIBRATION_FILE } from "../../src/host/state";
import { TestHost } from "../helpers/runtime";

/**
 * A kernel calibrates its delay loop once per state folder: later boots of it
 * get the value as lpj= and skip the loop (src/host/delay-calibration.ts).
 */
describe("the delay-loop value kept between boots", () => {
  const host = new TestHost("lpj");
  afterAll(() => host.destroy());

  const consoleOf = (name: string) => readFileSync(host.rt.state.consoleLog(name), "utf8");
  const argvOf = (name: string) => host.rt.instances.get(name)!.argv ?? [];
  const boot = async (name: string, kernelArgs?: string[], startup?: string) => {
    await host.rt.ensureDisk({ name: `${name}-root`, kind: "overlay", base: "bb" });
    await host.rt.createInstance({
      name,
      rootDisk: `${name}-root`,
      ...(kernelArgs ? { kernelArgs } : {}),
      ...(startup ? { startup } : {}),
    });
  };
  // What a guest's root could print (a planted rc script, a startup script): larger than any real value.
  const FAKE = "Calibrating delay loop... 1.00 BogoMIPS (lpj=999999999)";

  it("is calibrated by the first boot (its kernel's line, not one a guest prints), given to the later ones, overridden by a spec's own lpj=, and gone with the folder", async () => {
    await host.rt.ensureBase({ name: "bb", source: { kind: "busybox", sizeMiB: 32 } });
    await boot("a");
    const calibrated = /Calibrating delay loop\.\.\. [\d.]+ BogoMIPS \(lpj=(\d+)\)/.exec(consoleOf("a"));
    expect(calibrated, consoleOf("a").slice(0, 3000)).not.toBeNull();
    expect(argvOf("a").filter((w) => w.startsWith("lpj="))).toEqual([]);
    const kernel = host.rt.instances.get("a")!.spec.kernel;
    const file = join(host.stateDir, CALIBRATION_FILE);
    const kept = JSON.parse(readFileSync(file, "utf8")) as Record<string, { lpj: number }>;
    expect(kept[kernel]?.lpj).toBe(Number(calibrated![1]));

    // The next boot of that kernel skips the loop with the kept value, and runs as well. Its
    // startup script prints a line of the calibrating kernel's form: not taken for one.
    await boot("b", undefined, `echo '${FAKE}'`);
    expect(argvOf("b").filter((w) => w.startsWith("lpj="))).toEqual([`lpj=${calibrated![1]}`]);
    expect(consoleOf("b")).toMatch(/Calibrating delay loop \(skipped\) preset value/);
    expect(consoleOf("b")).toContain(FAKE);
    expect(await host.sh("b", "echo up")).toContain("up");
    expect(new DelayCalibration(host.stateDir).lpjFor(kernel)).toBe(Number(calibrated![1]));

    // A spec's own lpj= is the only one.
    await boot("c", ["lpj=1000000"]);
    expect(argvOf("c").filter((w) => w.startsWith("lpj="))).toEqual(["lpj=1000000"]);

    // Turned off: the boot calibrates again (read at each boot).
    await host.rt.stopInstance("b", { timeoutMs: 10_000 });
    process.env.UMLFLEET_PRESET_LPJ = "off";
    try {
      await host.rt.startInstance("b");
    } finally {
      delete process.env.UMLFLEET_PRESET_LPJ;
    }
    expect(argvOf("b").filter((w) => w.startsWith("lpj="))).toEqual([]);
    expect(consoleOf("b")).toMatch(/Calibrating delay loop\.\.\. /);

    await host.rt.destroyAll({ timeoutMs: 10_000 });
    expect(existsSync(file)).toBe(false);
    expect(existsSync(host.stateDir)).toBe(false);
  });
});
