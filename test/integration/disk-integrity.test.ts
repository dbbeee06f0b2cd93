import { execFileSync } from "node:child_process";
import { rmSync, statSync, truncateSync, utimesSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { isUmlfleetError } from "../../src";
import { flipByte } from "../helpers/canary";
import { processesMentioning, TestHost } from "../helpers/runtime";

/**
 * Disk files changed behind umlfleet's back, judged by size and the overlay's
 * COW header (not by mtime: each change below puts the mtime back): the
 * runtime names the file in the disk's `problem` (refresh's drift), and
 * refuses to boot on it (UMLFLEET_DISK_DAMAGED) or to make it anew; a file
 * restored from a copy boots again with its data. An overlay whose base
 * changed is refused naming both files.
 */
describe("disks damaged behind our back are reported and never booted on", () => {
  const host = new TestHost("diskint");
  let overlay = "";
  let image = "";
  const backup = () => `${host.dir}/a-root.copy`;

  const refusedStart = async (code: string) => {
    const e = await host.rt.startInstance("a").then(
      () => undefined,
      (x: unknown) => x,
    );
    expect(isUmlfleetError(e, code as never), String(e)).toBe(true);
    expect(host.rt.instanceStatus("a").state).toBe("stopped");
    expect(processesMentioning(`${host.stateDir}/instances/a/`)).toEqual([]);
    return (e as Error).message;
  };
  /** Change the file by `change`, with its mtime put back as it was. */
  const behindOurBack = (file: string, change: () => void) => {
    const st = statSync(file);
    change();
    utimesSync(file, st.atime, st.mtime);
  };
  const restore = () => execFileSync("cp", ["--sparse=always", backup(), overlay]);

  beforeAll(async () => {
    await host.lab(["a"]);
    await host.sh("a", "echo kept > /root/data && sync");
    await host.rt.stopInstance("a");
    overlay = host.rt.disks.get("a-root")!.path;
    image = host.rt.images.get("bb")!.imagePath;
    execFileSync("cp", ["--sparse=always", overlay, backup()]);
    expect((await host.rt.diskInfo("a-root"))!.problem).toBeUndefined();
  });
  afterAll(() => host.destroy());

  it("an overlay truncated: named in problem, its start refused, a restored copy boots with its data", async () => {
    const size = statSync(overlay).size;
    behindOurBack(overlay, () => truncateSync(overlay, Math.floor(size / 2)));
    expect((await host.rt.diskInfo("a-root"))!.problem).toMatch(
      new RegExp(`overlay ${overlay} is truncated to ${Math.floor(size / 2)} of its ${size} bytes`),
    );
    const why = await refusedStart("UMLFLEET_DISK_DAMAGED");
    expect(why).toContain(overlay);
    expect(why).toContain("/rootDisk");
    // Not made anew behind the user's back either.
    await expect(host.rt.ensureDisk({ name: "a-root", kind: "overlay", base: "bb" })).rejects.toMatchObject({
      code: "UMLFLEET_DISK_DAMAGED",
    });
    restore();
    expect((await host.rt.diskInfo("a-root"))!.problem).toBeUndefined();
    await host.rt.startInstance("a");
    expect(await host.sh("a", "cat /root/data")).toContain("kept");
    await host.rt.stopInstance("a");
  });

  it("an overlay whose header was overwritten: named, refused", async () => {
    behindOurBack(overlay, () => flipByte(overlay, 1)); // the COW magic
    expect((await host.rt.diskInfo("a-root"))!.problem).toContain(`overlay ${overlay} is damaged`);
    expect(await refusedStart("UMLFLEET_DISK_DAMAGED")).toContain(overlay);
    restore();
  });

  it("an overlay deleted: named as missing with its data, refused", async () => {
    rmSync(overlay);
    expect((await host.rt.diskInfo("a-root"))!.problem).toBe(
      `disk file ${overlay} is missing: the data in it is gone`,
    );
    expect(await refusedStart("UMLFLEET_DISK_DAMAGED")).toContain(overlay);
    restore();
  });

  it("a blank disk truncated: named in problem", async () => {
    await host.rt.ensureDisk({ name: "scratch", kind: "blank", sizeMiB: 8 });
    const path = host.rt.disks.get("scratch")!.path;
    behindOurBack(path, () => truncateSync(path, 4096));
    expect((await host.rt.diskInfo("scratch"))!.problem).toContain(`${path} is truncated to 4096 of its`);
    host.rt.disks.remove("scratch", []);
  });

  it("an overlay whose base image changed: refused naming both the overlay and the image", async () => {
    behindOurBack(image, () => flipByte(image, 8 * 1024 * 1024 + 5));
    const why = await refusedStart("UMLFLEET_BASE_CHANGED");
    expect(why).toContain(overlay);
    expect(why).toContain(image);
    // The overlay itself is as it was: its problem is its base's.
    expect((await host.rt.diskInfo("a-root"))!.problem).toBeUndefined();
    behindOurBack(image, () => flipByte(image, 8 * 1024 * 1024 + 5));
    await host.rt.startInstance("a");
    expect(await host.sh("a", "cat /root/data")).toContain("kept");
  });
});
