import { existsSync } from "node:fs";
import { afterAll, describe, expect, it } from "vitest";
import { TestHost } from "../helpers/runtime";

describe("the state folder goes with its last resource", () => {
  const host = new TestHost("prune");
  afterAll(() => host.destroy());

  it.each([
    ["the base last", ["network", "base"]],
    ["the network last", ["base", "network"]],
    ["both at once", ["both"]],
  ])("whichever kind is removed last (%s)", async (_label, order) => {
    await host.rt.ensureBase({ name: "bb", source: { kind: "busybox", sizeMiB: 8 } });
    await host.rt.ensureNetwork({ name: "lan" });
    expect(existsSync(host.stateDir)).toBe(true);
    for (const step of order) {
      if (step === "network") await host.rt.removeNetwork("lan");
      if (step === "base") await host.rt.removeBase("bb");
      // Concurrent removals, as Pulumi runs them: the one ending last prunes.
      if (step === "both") await Promise.all([host.rt.removeNetwork("lan"), host.rt.removeBase("bb")]);
    }
    expect(existsSync(host.stateDir)).toBe(false);
  });
});
