import { execFileSync } from "node:child_process";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { main } from "../../src/cli/main";
import type { UmlfleetError } from "../../src/errors";
import { processesMentioning, TestHost } from "../helpers/runtime";

/**
 * Two stacks on one host state folder (two owners, as the provider passes
 * them): bases are shared, every other kind belongs to the stack that made it.
 */
const ALICE = { owner: "lab/alice" };
const BOB = { owner: "lab/bob" };
const BASE = { name: "bb", source: { kind: "busybox" as const, sizeMiB: 32 } };

/** Every file of the state folder with its bytes (records) or size, and the processes naming it. */
function snapshot(stateDir: string) {
  const files = existsSync(stateDir)
    ? execFileSync("find", [stateDir, "-path", `${stateDir}/locks`, "-prune", "-o", "-type", "f", "-print"], {
        encoding: "utf8",
      })
        .trim()
        .split("\n")
        .filter((f) => !f.endsWith("console.log"))
        .sort()
    : [];
  return {
    files: files.map((f) => (f.endsWith(".json") ? `${f} ${readFileSync(f, "utf8")}` : f)),
    // A guest's kernel forks host processes as its own processes come and go:
    // counted as "the guests running", with every other process (sandboxes, switches) as it is.
    processes: [
      ...new Set(
        processesMentioning(stateDir).map((p) => {
          const guest = /uml_dir=(\S+)/.exec(p);
          return guest && !p.includes("bwrap") ? `kernel of ${guest[1]}` : p;
        }),
      ),
    ].sort(),
  };
}

describe("two stacks on one host: a shared base", () => {
  const host = new TestHost("stk-base");
  afterAll(() => host.destroy());

  it("the same base ensured by two stacks is one image with two owners, kept until the last one removes it", async () => {
    const rt = host.rt;
    const a = await rt.ensureBase(BASE, ALICE);
    const b = await rt.ensureBase(BASE, BOB);
    expect(b.imagePath).toBe(a.imagePath);
    expect(rt.images.get("bb")!.owners).toEqual(["lab/alice", "lab/bob"]);
    expect(readdirSync(join(host.stateDir, "images")).filter((f) => f.endsWith(".img"))).toHaveLength(1);
    await rt.ensureDisk({ name: "a-root", kind: "overlay", base: "bb" }, ALICE);
    await rt.ensureDisk({ name: "b-root", kind: "overlay", base: "bb" }, BOB);
    // Alice's destroy: her overlay, then the base, which Bob still owns.
    await rt.removeDisk("a-root", ALICE);
    await rt.removeBase("bb", ALICE);
    expect(rt.images.get("bb")!.owners).toEqual(["lab/bob"]);
    expect(existsSync(a.imagePath)).toBe(true);
    // Alice again: she becomes an owner again, and the image is not rebuilt.
    await rt.ensureBase(BASE, ALICE);
    expect(rt.images.get("bb")!.owners).toEqual(["lab/bob", "lab/alice"]);
    await rt.removeBase("bb", ALICE);
    await rt.removeDisk("b-root", BOB);
    await rt.removeBase("bb", BOB);
    expect(rt.images.get("bb")).toBeUndefined();
    expect(existsSync(a.imagePath)).toBe(false);
  });

  it("a base of that name with another source is refused, naming its owners and the fixes", async () => {
    const rt = host.rt;
    await rt.ensureBase(BASE, ALICE);
    const other = { ...BASE, source: { kind: "busybox" as const, sizeMiB: 40 } };
    await expect(rt.ensureBase(other, BOB)).rejects.toMatchObject({
      code: "UMLFLEET_CONFLICT",
      message: expect.stringMatching(
        /base "bb" exists with another source, owned by stack "lab\/alice".*another name, or another stateDir/,
      ),
    });
    expect(rt.images.get("bb")!.owners).toEqual(["lab/alice"]);
    await rt.removeBase("bb", ALICE);
    expect(rt.images.get("bb")).toBeUndefined();
  });

  it("an overlay of another stack keeps the base its last owner removes", async () => {
    const rt = host.rt;
    await rt.ensureBase(BASE, ALICE);
    // Bob's overlay over a base he never declared (a legacy record, or a tool).
    await rt.ensureDisk({ name: "b-root", kind: "overlay", base: "bb" }, BOB);
    await rt.removeBase("bb", ALICE);
    expect(rt.images.get("bb")!.owners).toEqual(["lab/bob"]);
    await rt.removeDisk("b-root", BOB);
    await rt.removeBase("bb", BOB);
    expect(rt.images.get("bb")).toBeUndefined();
  });

  it("a base made before owners were recorded is anyone's: an ensure makes its stack an owner", async () => {
    const rt = host.rt;
    await rt.ensureBase(BASE); // no owner: a tool, or an older umlfleet
    expect(rt.images.get("bb")!.owners).toBeUndefined();
    await rt.ensureBase(BASE, BOB);
    expect(rt.images.get("bb")!.owners).toEqual(["lab/bob"]);
    await rt.removeBase("bb", BOB);
    expect(rt.images.get("bb")).toBeUndefined();
  });
});

describe("two stacks on one host: everything but bases belongs to the stack that made it", () => {
  const host = new TestHost("stk-own");
  const rt = host.rt;
  const instance = (name: string, serialLines = 2) => ({
    name,
    rootDisk: `${name}-root`,
    memoryMiB: 64,
    serialLines,
    nics: [{ network: "lan", ipv4: "10.0.0.1/24" }],
  });
  const group = { name: "grp", base: "bb", members: { g0: { memoryMiB: 64 } } };
  const bobs = (more: object) => ({ name: "b", rootDisk: "b-root", memoryMiB: 64, ...more });
  beforeAll(async () => {
    await rt.ensureBase(BASE, ALICE);
    await rt.ensureBase(BASE, BOB);
    await rt.ensureNetwork({ name: "lan" }, ALICE);
    await rt.ensureDisk({ name: "data", kind: "blank", sizeMiB: 8 }, ALICE);
    await rt.ensureDisk({ name: "m-root", kind: "overlay", base: "bb" }, ALICE);
    await rt.ensureDisk({ name: "n-root", kind: "overlay", base: "bb" }, ALICE);
    await Promise.all([rt.createInstance(instance("m"), ALICE), rt.createInstance(instance("n"), ALICE)]);
    await rt.ensureSerialLink(link, ALICE);
    await rt.applyGroup(group, undefined, ALICE);
    await rt.ensureDisk({ name: "b-root", kind: "overlay", base: "bb" }, BOB);
  });
  afterAll(() => host.destroy());
  const link = { name: "mn", a: { instance: "m", line: 1 }, b: { instance: "n", line: 1 } };

  /** Bob's attempts, each refused with UMLFLEET_CONFLICT naming the resource and Alice. */
  const attempts: [string, string, () => Promise<unknown>][] = [
    ["network", '"lan"', () => rt.ensureNetwork({ name: "lan" }, BOB)],
    ["disk", '"data"', () => rt.ensureDisk({ name: "data", kind: "blank", sizeMiB: 8 }, BOB)],
    ["overlay", '"m-root"', () => rt.ensureDisk({ name: "m-root", kind: "overlay", base: "bb" }, BOB)],
    ["instance", '"m"', () => rt.createInstance(instance("m"), BOB)],
    ["instance update", '"m"', () => rt.updateInstance({ ...instance("m"), memoryMiB: 80 }, BOB)],
    ["serial link", '"mn"', () => rt.ensureSerialLink(link, BOB)],
    ["group member", '"g0"', () => rt.applyGroup(group, undefined, BOB)],
    // Bob's own guest, on Alice's disk or network.
    [
      "disk, as a disk of its instance",
      '"data"',
      () => rt.createInstance(bobs({ disks: [{ disk: "data" }] }), BOB),
    ],
    [
      "network, as its instance's NIC",
      '"lan"',
      () => rt.createInstance(bobs({ nics: [{ network: "lan" }] }), BOB),
    ],
    [
      "network, as a group member's NIC",
      '"lan"',
      () =>
        rt.applyGroup(
          { name: "bg", base: "bb", members: { bg0: { nics: [{ network: "lan" }] } } },
          undefined,
          BOB,
        ),
    ],
    ["network removal", '"lan"', () => rt.removeNetwork("lan", BOB)],
    ["disk removal", '"data"', () => rt.removeDisk("data", BOB)],
    ["instance removal", '"m"', () => rt.removeInstance("m", BOB)],
    ["serial link removal", '"mn"', () => rt.removeSerialLink("mn", BOB)],
    ["group removal", '"g0"', () => rt.removeGroup(group, BOB)],
  ];
  for (const [what, name, attempt] of attempts) {
    it(`another stack's ${what} is refused, naming ${name} and its owner, and changes nothing`, async () => {
      const before = snapshot(host.stateDir);
      const e = (await attempt().then(
        () => undefined,
        (x: unknown) => x,
      )) as UmlfleetError | undefined;
      expect(e, `${what} was not refused`).toBeDefined();
      expect(e!.code).toBe("UMLFLEET_CONFLICT");
      expect(e!.message).toContain(name);
      expect(e!.message).toContain('"lab/alice"');
      // It says what to do: another name or state folder; for a removal, how to let go of it.
      expect(e!.message).toMatch(what.endsWith("removal") ? /pulumi state delete/ : /another name.*stateDir/);
      expect(snapshot(host.stateDir)).toEqual(before);
    });
  }

  it("the stack that owns them adopts each again (a killed up converges)", async () => {
    await rt.ensureNetwork({ name: "lan" }, ALICE);
    await rt.ensureDisk({ name: "data", kind: "blank", sizeMiB: 8 }, ALICE);
    await rt.createInstance(instance("m"), ALICE);
    await rt.ensureSerialLink(link, ALICE);
    const { result } = await rt.applyGroup(group, undefined, ALICE);
    expect(result.actions).toEqual({ g0: "none" });
    expect(rt.instances.get("m")!.owners).toEqual(["lab/alice"]);
    expect(rt.instanceStatus("m").state).toBe("running");
  });

  it("umlfleet ls --json shows each resource's owners", async () => {
    let out = "";
    const status = await main(["ls", "--state-dir", host.stateDir, "--json"], {
      out: (t) => void (out += t),
      err: () => undefined,
      env: process.env,
    });
    expect(status).toBe(0);
    const listed = JSON.parse(out) as {
      instances: { name: string; owners: string[] }[];
      owners: Record<string, Record<string, string[]>>;
    };
    expect(listed.instances.find((i) => i.name === "m")!.owners).toEqual(["lab/alice"]);
    expect(listed.owners).toMatchObject({
      bases: { bb: ["lab/alice", "lab/bob"] },
      networks: { lan: ["lab/alice"] },
      disks: { data: ["lab/alice"], "g0-root": ["lab/alice"] },
      instances: { g0: ["lab/alice"], m: ["lab/alice"] },
      links: { mn: ["lab/alice"] },
    });
  });

  it("the owner removes them; destroyAll ignores owners", async () => {
    await rt.removeSerialLink("mn", ALICE);
    await rt.removeGroup(group, ALICE);
    await rt.removeInstance("n", ALICE);
    expect(rt.instances.get("g0")).toBeUndefined();
    expect(rt.instances.get("n")).toBeUndefined();
    // The rest (m, its overlay, lan, data, the base Bob still owns) goes with destroyAll in afterAll.
  });
});
