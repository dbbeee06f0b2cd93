import { mkdtempSync, readFileSync, rmSync, utimesSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { DelayCalibration, withPresetLpj } from "../../src/host/delay-calibration";
import { CALIBRATION_FILE } from "../../src/host/state";

// Console lines as the lean kernel prints them (calibrating, then with a preset value).
const CALIBRATING = "Calibrating delay loop... 7045.08 BogoMIPS (lpj=35225600)\n";
const SKIPPED = "Calibrating delay loop (skipped) preset value.. 7045.08 BogoMIPS (lpj=35241984)\n";

describe("delay-loop calibration kept between boots", () => {
  let dir: string;
  let kernel: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), "uf-lpj-"));
    kernel = join(dir, "linux");
    writeFileSync(kernel, "kernel bytes");
  });
  afterEach(() => {
    delete process.env.UMLFLEET_PRESET_LPJ;
    rmSync(dir, { recursive: true, force: true });
  });

  it("reads the value only from a boot that calibrated", () => {
    expect(DelayCalibration.calibratedIn(`Linux version 6.1\n${CALIBRATING}pid_max: ...`)).toBe(35225600);
    expect(DelayCalibration.calibratedIn(SKIPPED)).toBeUndefined();
    expect(DelayCalibration.calibratedIn("no such line")).toBeUndefined();
    // Only the kernel's own line, before it starts init: the guest's programs write the console after.
    const init = "Run /umlfleet/init as init process\n";
    expect(DelayCalibration.calibratedIn(`${SKIPPED}${init}${CALIBRATING}`)).toBeUndefined();
    expect(
      DelayCalibration.calibratedIn(`${CALIBRATING}${init}${CALIBRATING.replace("35225600", "9")}`),
    ).toBe(35225600);
  });

  it("keeps the largest value per kernel, for this binary only", () => {
    const c = new DelayCalibration(dir);
    expect(c.lpjFor(kernel)).toBeUndefined();
    c.learn(kernel, 1000);
    c.learn(kernel, 900); // a preempted calibration counts fewer loops: not kept
    expect(c.lpjFor(kernel)).toBe(1000);
    c.learn(kernel, 1200);
    expect(new DelayCalibration(dir).lpjFor(kernel)).toBe(1200);
    const kept = JSON.parse(readFileSync(join(dir, CALIBRATION_FILE), "utf8")) as Record<
      string,
      { lpj: number }
    >;
    expect(kept[kernel]?.lpj).toBe(1200);

    // A rebuilt kernel (another size or mtime) calibrates again.
    writeFileSync(kernel, "other kernel bytes");
    expect(c.lpjFor(kernel)).toBeUndefined();
    c.learn(kernel, 500);
    expect(c.lpjFor(kernel)).toBe(500);
    utimesSync(kernel, new Date(0), new Date(0));
    expect(c.lpjFor(kernel)).toBeUndefined();
    expect(c.lpjFor(join(dir, "missing"))).toBeUndefined();
  });

  it("treats a damaged file as no value, and is off with UMLFLEET_PRESET_LPJ=off", () => {
    const c = new DelayCalibration(dir);
    writeFileSync(join(dir, CALIBRATION_FILE), "{not json");
    expect(c.lpjFor(kernel)).toBeUndefined();
    c.learn(kernel, 1000);
    expect(c.lpjFor(kernel)).toBe(1000);
    process.env.UMLFLEET_PRESET_LPJ = "off";
    expect(c.lpjFor(kernel)).toBeUndefined();
  });

  it("adds lpj= before the spec's words unless they set one", () => {
    expect(withPresetLpj(["quiet"], 1000)).toEqual(["lpj=1000", "quiet"]);
    expect(withPresetLpj(["lpj=5", "quiet"], 1000)).toEqual(["lpj=5", "quiet"]);
    expect(withPresetLpj(["quiet"], undefined)).toEqual(["quiet"]);
  });
});
