import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { Images, type BaseRecord } from "../../src/host/images";
import { checkOwner, claimed, mayChange, refuseForeign, withOwners } from "../../src/host/owners";
import { StateDir, writeJson } from "../../src/host/state";

/** What `fn` throws (undefined when it returns). */
function thrown(fn: () => unknown): unknown {
  try {
    fn();
  } catch (e) {
    return e;
  }
  return undefined;
}

describe("owners: who may change a record", () => {
  it("a record lists its stacks in the order they claimed it, each once; a caller naming none claims nothing", () => {
    expect(claimed(undefined, "p/a")).toEqual(["p/a"]);
    expect(claimed({ owners: ["p/a"] }, "p/b")).toEqual(["p/a", "p/b"]);
    expect(claimed({ owners: ["p/a", "p/b"] }, "p/a")).toEqual(["p/a", "p/b"]);
    expect(claimed({}, "p/a")).toEqual(["p/a"]); // an older record: its first ensure since claims it
    expect(claimed({ owners: ["p/a"] }, undefined)).toEqual(["p/a"]);
    expect(claimed({}, undefined)).toBeUndefined();
  });

  it("its owner, and any caller of a record owned by none, may change it; a caller naming none always may", () => {
    expect(mayChange({ owners: ["p/a"] }, "p/a")).toBe(true);
    expect(mayChange({ owners: ["p/a"] }, "p/b")).toBe(false);
    expect(mayChange({}, "p/b")).toBe(true);
    expect(mayChange({ owners: [] }, "p/b")).toBe(true);
    expect(mayChange(undefined, "p/b")).toBe(true);
    expect(mayChange({ owners: ["p/a"] }, undefined)).toBe(true);
  });

  it("another stack's create is refused with UMLFLEET_CONFLICT naming the resource, its owner and the fixes", () => {
    const attempt = (op: "create" | "remove") => () =>
      refuseForeign("network", "lan", { owners: ["class/alice"] }, "class/bob", op, "/srv/uf");
    expect(thrown(attempt("create"))).toMatchObject({
      code: "UMLFLEET_CONFLICT",
      message: expect.stringMatching(
        /network "lan" belongs to stack "class\/alice", not to "class\/bob".*\/srv\/uf.*another name, or another stateDir/,
      ),
      details: { owners: ["class/alice"], owner: "class/bob" },
    });
    expect(attempt("remove")).toThrow(/left as it is.*pulumi state delete/);
    expect(() =>
      refuseForeign("network", "lan", { owners: ["class/bob"] }, "class/bob", "create", "/s"),
    ).not.toThrow();
  });

  it("an owner id is a printable string: anything else is refused naming the field", () => {
    expect(checkOwner("proj/stack")).toBe("proj/stack");
    expect(checkOwner(undefined)).toBeUndefined();
    for (const bad of ["", "a\nb", "x".repeat(513), 42, { a: 1 }])
      expect(
        thrown(() => checkOwner(bad)),
        JSON.stringify(bad),
      ).toMatchObject({ code: "UMLFLEET_INVALID_SPEC", message: expect.stringMatching(/^owner: /) });
  });

  it("withOwners sets the field, or drops it when there are none to record", () => {
    expect(withOwners({ owners: ["p/a"], n: 1 }, undefined)).toEqual({
      n: 1,
    });
    expect(withOwners({ n: 1 }, ["p/b"])).toEqual({
      n: 1,
      owners: ["p/b"],
    });
  });
});

describe("owners: a shared base in a temp state folder", () => {
  const root = mkdtempSync(join(tmpdir(), "uf-owners-"));
  afterAll(() => rmSync(root, { recursive: true, force: true }));
  const state = new StateDir(root);
  const images = new Images(state);
  const record = (owners?: string[]): BaseRecord => ({
    schemaVersion: 1,
    spec: { name: "b", source: { kind: "busybox" } },
    recipeHash: "r",
    imageSha: "0".repeat(64),
    imagePath: join(root, "images", "x.img"),
    sizeBytes: 1,
    ...(owners ? { owners } : {}),
  });

  it("an owner's remove drops only it while others own the base", () => {
    writeJson(state.baseRecord("b"), record(["p/a", "p/b"]));
    images.remove("b", [], "p/a");
    expect(images.get("b")!.owners).toEqual(["p/b"]);
    // A stack that is not an owner drops nothing and removes nothing.
    images.remove("b", [], "p/c");
    expect(images.get("b")!.owners).toEqual(["p/b"]);
    images.remove("b", [], "p/b");
    expect(images.get("b")).toBeUndefined();
  });

  it("overlays no stack owns keep the base its last owner lets go of, as a base of no one's (removed as before)", () => {
    writeJson(state.baseRecord("b"), record(["p/a"]));
    images.remove("b", [{ name: "legacy" }], "p/a");
    expect(images.get("b")!.owners).toBeUndefined();
    expect(thrown(() => images.remove("b", [{ name: "legacy" }], undefined))).toMatchObject({
      code: "UMLFLEET_IN_USE",
    });
    images.remove("b", [], undefined);
    expect(images.get("b")).toBeUndefined();
  });

  it("another stack's overlay keeps the base its last owner lets go of, and makes that stack its owner", () => {
    writeJson(state.baseRecord("b"), record(["p/a"]));
    images.remove("b", [{ name: "o", owners: ["p/z"] }], "p/a");
    expect(images.get("b")!.owners).toEqual(["p/z"]);
  });

  it("the last owner's own overlay still makes its remove fail UMLFLEET_IN_USE, alone or beside one of no one's", () => {
    writeJson(state.baseRecord("b"), record(["p/a"]));
    expect(thrown(() => images.remove("b", [{ name: "o", owners: ["p/a"] }], "p/a"))).toMatchObject({
      code: "UMLFLEET_IN_USE",
    });
    expect(
      thrown(() => images.remove("b", [{ name: "o", owners: ["p/a"] }, { name: "legacy" }], "p/a")),
    ).toMatchObject({ code: "UMLFLEET_IN_USE" });
    // A caller naming no owner (a stack recorded before owners were passed) drops no one: kept.
    images.remove("b", [], undefined);
    expect(images.get("b")!.owners).toEqual(["p/a"]);
    // destroyAll removes it whoever owns it.
    images.remove("b", [], undefined, true);
    expect(images.get("b")).toBeUndefined();
  });
});
