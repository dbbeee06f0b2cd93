import { chmodSync, copyFileSync, existsSync, rmSync, statSync, utimesSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import * as impl from "../../provider/impl";
import { isUmlfleetError } from "../../src";
import { sha256File } from "../../src/host/images";
import { flipByte } from "../helpers/canary";
import { processesMentioning, TestHost } from "../helpers/runtime";

const inputs = (stateDir: string) => ({ name: "bb", stateDir, source: { kind: "busybox", sizeMiB: 32 } });

const refused = async (p: Promise<unknown>, code = "UMLFLEET_BASE_CHANGED") => {
  const e = await p.then(
    () => undefined,
    (x: unknown) => x,
  );
  expect(isUmlfleetError(e, code as never), String(e)).toBe(true);
  return e as Error;
};

describe("a base is checked by content: a changed base is never booted or built over", () => {
  const host = new TestHost("base");
  let image = "";
  let sha = "";

  beforeAll(async () => {
    const b = await host.rt.ensureBase({ name: "bb", source: { kind: "busybox", sizeMiB: 32 } });
    image = b.imagePath;
    sha = b.imageSha;
    await host.lab(["a"]);
    await host.sh("a", "echo kept > /root/data && sync");
  });
  afterAll(() => host.destroy());

  it("one byte flipped, mtime put back: refresh reports it naming the file", async () => {
    const mtime = Math.floor(statSync(image).mtimeMs / 1000);
    flipByte(image, 8 * 1024 * 1024 + 17);
    expect(Math.floor(statSync(image).mtimeMs / 1000)).toBe(mtime);
    const read = await impl.read("base", "bb", inputs(host.stateDir));
    expect(read.props?.drift).toContain(image);
    expect(read.props?.drift).toContain("changed");
    const d = await impl.diff("base", "bb", read.props!, {
      name: "bb",
      stateDir: host.stateDir,
      source: { kind: "busybox", sizeMiB: 32 },
    });
    expect(d).toMatchObject({ changes: true, replaces: [] });
  });

  it("no guest boots over it: a restart is refused, naming the file and how to recover", async () => {
    await host.rt.stopInstance("a");
    const e = await refused(host.rt.startInstance("a"));
    expect(e.message).toContain(image);
    expect(e.message).toMatch(/restore the file/);
    expect(host.rt.instanceStatus("a").state).toBe("stopped");
    expect(processesMentioning(`${host.stateDir}/instances/a/`)).toEqual([]);
  });

  it("no overlay is made over it, alone or for a group member", async () => {
    await refused(host.rt.ensureDisk({ name: "c-root", kind: "overlay", base: "bb" }));
    expect(host.rt.disks.get("c-root")).toBeUndefined();
    expect(existsSync(`${host.stateDir}/disks/c-root.img`)).toBe(false);
    await refused(host.rt.groups.apply({ name: "g", base: "bb", members: { "g-0": {} } }));
    expect(host.rt.instances.get("g-0")).toBeUndefined();
    expect(host.rt.disks.get("g-0-root")).toBeUndefined();
  });

  it("up restores it from its recipe (the same bytes, the recorded mtime), and the guest boots with its data", async () => {
    const mtime = Math.floor(statSync(image).mtimeMs / 1000);
    const read = await impl.read("base", "bb", inputs(host.stateDir));
    await impl.update("base", "bb", read.props!, {
      name: "bb",
      stateDir: host.stateDir,
      source: { kind: "busybox", sizeMiB: 32 },
    });
    expect(await sha256File(image)).toBe(sha);
    expect(Math.floor(statSync(image).mtimeMs / 1000)).toBe(mtime); // what overlays' COW headers record
    expect((await impl.read("base", "bb", inputs(host.stateDir))).props?.drift).toBe("");
    await host.rt.startInstance("a");
    expect(await host.sh("a", "cat /root/data")).toContain("kept");
  });

  it("a touch or chmod alone is no change: the content is re-hashed, the mtime and mode put back", async () => {
    const st = statSync(image);
    chmodSync(image, 0o644);
    utimesSync(image, new Date(), new Date());
    expect((await host.rt.images.integrity(host.rt.images.get("bb")!)).ok).toBe(true);
    expect(Math.floor(statSync(image).mtimeMs / 1000)).toBe(Math.floor(st.mtimeMs / 1000));
    expect(statSync(image).mode & 0o777).toBe(0o444);
    await host.rt.restartInstance("a");
    expect(host.rt.instanceStatus("a").state).toBe("running");
  });

  it("an image deleted behind our back: reported missing, rebuilt identical by the next ensure", async () => {
    await host.rt.stopInstance("a");
    rmSync(image, { force: true });
    const i = await host.rt.images.integrity(host.rt.images.get("bb")!);
    expect(i).toMatchObject({ ok: false, problem: "missing" });
    await refused(host.rt.startInstance("a"));
    await host.rt.ensureBase({ name: "bb", source: { kind: "busybox", sizeMiB: 32 } });
    expect(await sha256File(image)).toBe(sha);
    await host.rt.startInstance("a");
    expect(await host.sh("a", "cat /root/data")).toContain("kept");
  });

  it("a base whose recipe no longer gives its bytes is not restored while overlays use it", async () => {
    const source = `${host.dir}/import.img`;
    copyFileSync(image, source);
    const imported = await host.rt.ensureBase({ name: "imp", source: { kind: "image", path: source } });
    await host.rt.ensureDisk({ name: "i-root", kind: "overlay", base: "imp" });
    // Both the source and the image changed: the rebuild gives other bytes.
    flipByte(source, 4096 * 3 + 5);
    flipByte(imported.imagePath, 4096 * 3 + 5);
    const e = await refused(host.rt.ensureBase({ name: "imp", source: { kind: "image", path: source } }));
    expect(e.message).toContain("cannot be restored");
    expect(e.message).toContain("i-root");
  });
});
