import { describe, expect, it } from "vitest";
import { haveCli, useExample } from "./example-harness";

/** examples/demo: the lab `npm run demo` brings up (README, "Two commands"). */
describe.skipIf(!haveCli)("examples/demo", () => {
  const ex = useExample("demo");

  it("comes up: three machines on one switch reach each other, and the serial cable carries a line", async () => {
    const r = ex.ok(ex.pulumi("up"));
    const instances = r.outputs?.instances as { name: string; state: string; ipv4: string[] }[];
    expect(instances.map((i) => [i.name, i.state, i.ipv4])).toEqual([
      ["node-0", "running", ["10.10.0.1/24"]],
      ["node-1", "running", ["10.10.0.2/24"]],
      ["node-2", "running", ["10.10.0.3/24"]],
    ]);
    expect(await ex.sh("node-0", "ping -c 1 -W 5 10.10.0.3 && cat /etc/motd")).toContain(
      "Welcome to the umlfleet demo lab.",
    );
    const reader = ex.sh("node-1", "timeout 10 head -n 1 /dev/ttyS1");
    await ex.sh("node-0", "sleep 1; echo over-the-cable > /dev/ttyS1");
    expect(await reader).toContain("over-the-cable");
  });

  it("destroys to a clean host", () => ex.destroyClean());
});
