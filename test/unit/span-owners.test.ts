import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { useDriverFactory } from "../../provider/driver-factory";
import { removeSpan } from "../../provider/spanning";
import type { Inventory } from "../../src/host/driver";
import { FakeDriver } from "../helpers/fake-driver";

/** A fake host whose switch "wan" belongs to stack "lab/alice". */
class OwnedDriver extends FakeDriver {
  removed: string[] = [];
  override async inventory(): Promise<Inventory> {
    return { ...(await super.inventory()), owners: { networks: { wan: ["lab/alice"] } } };
  }
  override removeNetwork(name: string) {
    this.removed.push(name);
    return super.removeNetwork(name);
  }
}

describe("a network spanning hosts: another stack's is left alone, cables included", () => {
  const fakes: OwnedDriver[] = [];
  beforeAll(() =>
    useDriverFactory((dir) => {
      const d = new OwnedDriver(dir);
      fakes.push(d);
      return d;
    }),
  );
  afterAll(() => useDriverFactory(undefined));

  it("its remove by another stack is refused naming the owner, before any cable or switch goes", async () => {
    const hosts = [
      { hostId: "local", stateDir: "/fake/hub" },
      { hostId: "local", stateDir: "/fake/peer" },
    ];
    const signal = new AbortController().signal;
    await expect(removeSpan(hosts, "wan", signal, "lab/bob")).rejects.toMatchObject({
      code: "UMLFLEET_CONFLICT",
      message: expect.stringContaining('network "wan" on local belongs to stack "lab/alice"'),
    });
    expect(fakes.flatMap((f) => f.removed)).toEqual([]);
  });
});
