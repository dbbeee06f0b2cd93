import { statSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TestHost } from "../helpers/runtime";

const sizeOf = (f: string) => statSync(f, { throwIfNoEntry: false })?.size ?? 0;

/**
 * Measured before the cap: a guest wrote 4 MiB to its console in about a
 * second and the host's log grew by as much, without end. Now the console
 * goes through a relay that keeps the newest output in two halves of
 * `consoleLogKiB` (default 2048).
 */
describe("console log: a guest cannot fill the host's disk", () => {
  const host = new TestHost("con");
  const capBytes = 2048 * 1024;

  beforeAll(async () => {
    await host.lab(["a", "b"]);
  });
  afterAll(() => host.destroy());

  it("a guest writing to its console for a minute leaves a log no larger than the cap, and the host answers throughout", async () => {
    const log = host.rt.instanceStatus("a").consoleLog;
    // 1 MiB blocks of text for 60 s, counted in the guest.
    await host.sh(
      "a",
      `setsid sh -c 'end=$(( $(date +%s) + 60 )); n=0; while [ $(date +%s) -lt $end ]; do yes "flood-line-from-the-guest $n" | head -c 1048576 >/dev/console; n=$((n+1)); echo $n >/root/blocks; done; echo done >/root/flood-done' >/dev/null 2>&1 </dev/null &`,
    );
    let peak = 0;
    for (let t = 0; t < 13; t++) {
      await new Promise((r) => setTimeout(r, 5_000));
      peak = Math.max(peak, sizeOf(log) + sizeOf(`${log}.1`));
      // The host's answers: the other guest, and the flooding guest's own mconsole and control line.
      expect(await host.sh("b", "echo alive")).toContain("alive");
      expect((await host.rt.inspectInstance("a")).kernelVersion).toBeTruthy();
      if ((await host.rt.exec("a", "cat /root/flood-done 2>/dev/null")).output.includes("done")) break;
    }
    const written = Number((await host.sh("a", "cat /root/blocks")).trim());
    console.log(`console flood: ${written} MiB written, peak log ${peak} bytes`);
    // It wrote far more than the cap (the cap was exercised), and the log kept to it.
    expect(written * 1024 * 1024).toBeGreaterThan(4 * capBytes);
    expect(peak).toBeLessThanOrEqual(capBytes);
    expect(sizeOf(log) + sizeOf(`${log}.1`)).toBeLessThanOrEqual(capBytes);
    // What is kept is the newest output.
    expect(host.rt.instances.consoleTail("a", 3)).toMatch(/flood-line-from-the-guest \d+/);
  }, 180_000);

  it("a restart finds its ready marker in the new boot's log, and the old one is kept as .1", async () => {
    await host.rt.restartInstance("a");
    expect(host.rt.instanceStatus("a").state).toBe("running");
    const log = host.rt.instanceStatus("a").consoleLog;
    expect(host.rt.instances.consoleTail("a", 400)).toContain("UMLFLEET-READY");
    expect(sizeOf(log) + sizeOf(`${log}.1`)).toBeLessThanOrEqual(capBytes);
  });
});
