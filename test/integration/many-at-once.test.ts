import { existsSync } from "node:fs";
import { afterAll, describe, expect, it } from "vitest";
import { createManyAtOnce } from "../../bench/many-at-once";
import { processesMentioning, TestHost } from "../helpers/runtime";

/**
 * 64 instances created at once through the runtime, one base, 64 MiB each
 * (about 80 s on a 2-core machine; UMLFLEET_MANY=16 for a quicker run).
 * `node dist/bench/many-at-once.js 64` times the same.
 */
const N = Number(process.env.UMLFLEET_MANY ?? 64);

describe(`${N} instances created at once`, () => {
  const host = new TestHost("many");
  afterAll(() => host.destroy());

  it("all become ready, each on its own overlay, every record whole; destroyAll leaves no orphan", async () => {
    const r = await createManyAtOnce(host.rt, N, "bench/many");
    expect(r.problems).toEqual([]);
    expect((await host.rt.inventory()).instances).toHaveLength(N);
    await host.rt.destroyAll({ timeoutMs: 10_000 });
    expect(processesMentioning(host.stateDir)).toEqual([]);
    expect(existsSync(host.stateDir)).toBe(false);
  }, 600_000);
});
