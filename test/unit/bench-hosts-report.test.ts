import { describe, expect, it } from "vitest";
import type { HostsResult } from "../../bench/hosts";
import type { UpComparison, UpSide } from "../../bench/hosts-up";
import { hostsSection, hostsTargetRows } from "../../bench/report-hosts";
import type { Results } from "../../bench/results";

/**
 * The hosts section's `pulumi up` target row (bench/report-hosts.ts) from
 * made-up results: when it passes, and each way it fails.
 */
const side = (ms: number, ready: number): UpSide => ({ ms, wallMs: ms + 900, ready, steps: [] });
const up = (o: Partial<UpComparison> = {}): UpComparison => ({
  rounds: [
    { round: 0, threeHosts: side(4_000, 12), oneHost: side(3_000, 4) },
    { round: 1, threeHosts: side(4_400, 12), oneHost: side(3_000, 4) },
  ],
  prepMs: { threeHosts: 9_000, oneHost: 2_000 },
  destroyMs: { threeHosts: 3_000, oneHost: 1_500 },
  left: [],
  seenWhileUp: 50,
  loadavg: ["1.00 1.00 1.00", "1.00 1.00 1.00"],
  ...o,
});
const results = (hosts?: Partial<HostsResult>): Results =>
  ({
    hosts: hosts && { perHost: 4, setupMs: {}, loadavg: [], errors: [], ...hosts },
  }) as Results;
const upRow = (res: Results) => hostsTargetRows(res).find((r) => r.includes("through one `pulumi up`"))!;

describe("bench report: 3 hosts x N through one pulumi up", () => {
  it("passes at the median ratio ≤ 1.5x with every guest ready and nothing left", () => {
    const row = upRow(results({ up: up() }));
    expect(row).toContain("| 3 hosts x 4 guests through one `pulumi up` ≤ 1.5x 4 guests on one host");
    expect(row).toContain("4.200 s vs 3.000 s: 1.40x (median of 2 rounds");
    expect(row).toContain("ready per round 12, 12 of 12 / 4, 4 of 4; destroy left nothing");
    expect(row).toMatch(/\| \*\*pass\*\* \|$/);
  });

  it("fails above 1.5x, when a guest was not ready, or when destroy left something", () => {
    const slow = up();
    slow.rounds[1]!.threeHosts = side(6_000, 12);
    expect(upRow(results({ up: slow }))).toMatch(/1\.67x.*\*\*FAIL\*\* \|$/);
    const short = up();
    short.rounds[0]!.oneHost = side(3_000, 3);
    expect(upRow(results({ up: short }))).toMatch(/\*\*FAIL\*\* \|$/);
    const failed = up();
    failed.rounds[0]!.threeHosts = { wallMs: 1, ready: 0, steps: [], error: "boom" };
    expect(upRow(results({ up: failed }))).toMatch(/\*\*FAIL\*\* \|$/);
    const left = results({ up: up({ left: ["host 1: file /x/instances/u0m0/console.log"] }) });
    expect(upRow(left)).toMatch(/destroy left 1 .*\*\*FAIL\*\* \|$/);
    expect(hostsSection(left).join("\n")).toContain(
      "**1 left**: `host 1: file /x/instances/u0m0/console.log`",
    );
  });

  it("says not measured for results without it, and keeps the runtime row", () => {
    const old = hostsTargetRows(results({}));
    expect(old).toHaveLength(2);
    expect(old[0]).toContain(
      "3 hosts x 4 guests on one spanning network ≤ 1.5x of 4 guests on one host (runtime",
    );
    expect(old[1]).toMatch(/not measured \(results from before this part.*\| not measured \|$/);
    expect(upRow(results())).toMatch(/not run \(BENCH_HOSTS=1\) \| not measured \|$/);
    expect(hostsSection(results({})).join("\n")).not.toContain("through one `pulumi up`");
  });
});
