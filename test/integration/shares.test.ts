import { mkdirSync, renameSync, symlinkSync, writeFileSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { isUmlfleetError } from "../../src";
import { checkShares, openShare } from "../../src/host/shares";
import { processesMentioning, TestHost } from "../helpers/runtime";

/**
 * A guest with a read-write share can replace any folder inside it with a link
 * to anything on the host. Measured before these checks: guest A had a
 * read-write share of a folder, guest B a read-only share of a folder inside
 * it; A replaced that inner folder with a link to a host secret folder, and
 * at B's next boot its sandbox bound the secret folder. So shares that nest
 * are refused (either way round, naming both instances), shares are resolved
 * once on the host, and the sandbox binds the folder that was checked, by fd.
 */
describe("shares: checked on the host, never nested with a writable one, bound by fd", () => {
  const host = new TestHost("shr");
  const h = `${host.dir}/h`;
  const spec = (name: string, shares: { hostPath: string; readOnly?: boolean }[]) => ({
    name,
    rootDisk: `${name}-root`,
    shares: shares.map((s, i) => ({ name: `s${i}`, guestPath: `/mnt/s${i}`, ...s })),
  });
  const refusal = async (p: Promise<unknown>) => {
    const e = await p.then(
      () => undefined,
      (x: unknown) => x,
    );
    expect(isUmlfleetError(e), String(e)).toBe(true);
    return e as Error & { code: string };
  };

  beforeAll(async () => {
    for (const d of ["x/inner", "y/inner", "shared", "z", "secret"])
      mkdirSync(`${h}/${d}`, { recursive: true });
    writeFileSync(`${h}/secret/token`, "host secret\n");
    writeFileSync(`${h}/z/hello`, "hello from z\n");
    await host.rt.ensureBase({ name: "bb", source: { kind: "busybox", sizeMiB: 32 } });
    for (const n of ["a", "b", "c", "d", "e"])
      await host.rt.ensureDisk({ name: `${n}-root`, kind: "overlay", base: "bb" });
  });
  afterAll(() => host.destroy());

  it("a read-only share inside another instance's read-write share is refused, naming both, with nothing made", async () => {
    await host.rt.createInstance(spec("a", [{ hostPath: `${h}/x`, readOnly: false }]));
    const e = await refusal(host.rt.createInstance(spec("b", [{ hostPath: `${h}/x/inner` }])));
    expect(e.code).toBe("UMLFLEET_CONFLICT");
    expect(e.message).toContain("/shares/0/hostPath");
    expect(e.message).toContain("instance a's /shares/0/hostPath");
    expect(host.rt.instances.get("b")).toBeUndefined();
    expect(processesMentioning(`${host.stateDir}/instances/b/`)).toEqual([]);
  });

  it("the other way round too: a read-write share holding another instance's share", async () => {
    await host.rt.createInstance(spec("b", [{ hostPath: `${h}/y/inner` }]));
    const e = await refusal(host.rt.createInstance(spec("c", [{ hostPath: `${h}/y`, readOnly: false }])));
    expect(e.code).toBe("UMLFLEET_CONFLICT");
    expect(e.message).toContain("instance b's /shares/0/hostPath");
    // Through a link to the same place: compared by real path.
    symlinkSync(`${h}/y`, `${h}/y-link`);
    const viaLink = await refusal(
      host.rt.createInstance(spec("c", [{ hostPath: `${h}/y-link`, readOnly: false }])),
    );
    expect(viaLink.code).toBe("UMLFLEET_CONFLICT");
    // And within one instance.
    mkdirSync(`${h}/z/sub`, { recursive: true });
    const nested = await refusal(
      host.rt.createInstance(
        spec("c", [{ hostPath: `${h}/z`, readOnly: false }, { hostPath: `${h}/z/sub` }]),
      ),
    );
    expect(nested.code).toBe("UMLFLEET_CONFLICT");
    expect(nested.message).toContain("this instance's /shares/1/hostPath");
  });

  it("one folder shared read-write by two guests is fine: neither can replace the folder it was given", async () => {
    await host.rt.createInstance(spec("c", [{ hostPath: `${h}/shared`, readOnly: false }]));
    await host.rt.createInstance(spec("d", [{ hostPath: `${h}/shared`, readOnly: false }]));
    await host.sh("c", "echo from-c > /mnt/s0/note");
    expect(await host.sh("d", "cat /mnt/s0/note")).toContain("from-c");
  });

  it("a share holding or inside the state folder is refused", async () => {
    for (const hostPath of [host.dir, `${host.stateDir}/instances`, host.stateDir]) {
      const e = await refusal(host.rt.createInstance(spec("e", [{ hostPath }])));
      expect(e.code, hostPath).toBe("UMLFLEET_INVALID_SPEC");
      expect(e.message).toContain("state folder");
    }
    expect(host.rt.instances.get("e")).toBeUndefined();
  });

  it("a folder swapped for a link between the check and the bind fails closed", () => {
    mkdirSync(`${h}/swap`, { recursive: true });
    const [checked] = checkShares(
      "e",
      [{ name: "s", hostPath: `${h}/swap`, guestPath: "/mnt/s" }],
      [],
      host.stateDir,
    );
    renameSync(`${h}/swap`, `${h}/swap-moved`);
    symlinkSync(`${h}/secret`, `${h}/swap`);
    let e: unknown;
    try {
      openShare(checked!);
    } catch (x) {
      e = x;
    }
    expect(isUmlfleetError(e, "UMLFLEET_CONFLICT"), String(e)).toBe(true);
    // A folder higher up swapped for a link to a place with the same layout.
    mkdirSync(`${h}/p/q`, { recursive: true });
    mkdirSync(`${h}/secret/q`, { recursive: true });
    const [deep] = checkShares(
      "e",
      [{ name: "s", hostPath: `${h}/p/q`, guestPath: "/mnt/s" }],
      [],
      host.stateDir,
    );
    renameSync(`${h}/p`, `${h}/p-moved`);
    symlinkSync(`${h}/secret`, `${h}/p`);
    expect(() => openShare(deep!)).toThrow(/changed while it was being bound/);
  });
});
