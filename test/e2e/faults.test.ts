import { readFileSync, statSync, truncateSync, utimesSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { guestKernelPid, processesMentioning, sendOverSerial } from "../helpers/runtime";
import { haveCli, useStack, type Lab } from "./stack-harness";

/**
 * The fault matrix, through the real CLI, on one stack of two guests (m0, m1)
 * on one network with a serial link between them: for each process killed
 * behind umlfleet's back, `pulumi refresh` reports the drift, `pulumi up`
 * converges (guests running, ping and the serial link work again), the file
 * each guest wrote and synced before the fault reads back, and a second
 * preview shows no change. Cables and SSH connections to target hosts:
 * test/e2e/hosts.test.ts; a killed `pulumi` CLI: test/e2e/killed-up.test.ts.
 */

const lab: Lab = { size: 2 };
const GUESTS = ["m0", "m1"];

describe.skipIf(!haveCli)("e2e: faults, each followed by refresh and up", () => {
  const { pulumi, ok, rt, stateDir, leftOnHost } = useStack("faults", lab);
  let written = 0;
  /** Per guest, the first mark its overlay holds (a replaced overlay starts empty). */
  const firstMark: Record<string, number> = { m0: 1, m1: 1 };

  const sh = async (guest: string, script: string) => {
    const r = await rt().exec(guest, script);
    expect(r.exitCode, `${guest}: ${script}\n${r.output}`).toBe(0);
    return r.output;
  };
  /** A new file in each guest's overlay, synced: what must survive the next fault. */
  const writeMarks = async () => {
    written++;
    for (const g of GUESTS) await sh(g, `echo 'mark ${written} of ${g}' > /root/mark${written} && sync`);
  };
  /** Every guest running with every mark it wrote, ping both ways, the serial link both ways. */
  const expectWhole = async () => {
    for (const g of GUESTS) {
      expect(rt().instanceStatus(g).state).toBe("running");
      for (let i = firstMark[g]!; i <= written; i++)
        expect(await sh(g, `cat /root/mark${i}`)).toContain(`mark ${i} of ${g}`);
    }
    await sh("m0", "ping -c 1 -W 5 10.0.0.2");
    await sh("m1", "ping -c 1 -W 5 10.0.0.1");
    const tag = `w${written}`;
    expect(await sendOverSerial(rt(), "m0", "m1", `${tag}-m0-to-m1`)).toContain(`${tag}-m0-to-m1`);
    expect(await sendOverSerial(rt(), "m1", "m0", `${tag}-m1-to-m0`)).toContain(`${tag}-m1-to-m0`);
  };
  /** refresh reports exactly `drift` ("Type name" of each resource it updated), up converges, preview is empty. */
  const converge = async (drift: string[]) => {
    const refreshed = ok(pulumi("refresh"));
    expect(refreshed.summary).toMatchObject({ update: drift.length });
    const updated = [...refreshed.stdout.matchAll(/~\s+\S*umlfleet:(\w+) (\S+) updated/g)].map(
      (m) => `${m[1]} ${m[2]}`,
    );
    expect(updated.sort(), refreshed.stdout).toEqual([...drift].sort());
    ok(pulumi("up"));
    await expectWhole();
    expect(Object.keys(ok(pulumi("preview")).summary!)).toEqual(["same"]);
  };

  it("up makes the stack; each guest writes a file to its overlay", async () => {
    ok(pulumi("up"));
    await writeMarks();
    await expectWhole();
  });

  it("kill -9 of a guest: refresh shows it stopped; up boots it again on its overlay", async () => {
    await writeMarks();
    process.kill(guestKernelPid(stateDir, "m0"), "SIGKILL");
    await expect.poll(() => rt().instanceStatus("m0").state).toBe("stopped");
    await converge(["Instance m0"]);
    expect(rt().instanceStatus("m0").bootCount).toBe(2);
    expect(rt().instanceStatus("m1").bootCount).toBe(1);
  });

  it("kill -9 of the switch: refresh shows it down; up restarts it and the guests' NICs reach it again", async () => {
    await writeMarks();
    const pid = (await rt().networkInfo("lan"))!.pid!;
    process.kill(pid, "SIGKILL");
    await expect.poll(async () => (await rt().networkInfo("lan"))!.running).toBe(false);
    await converge(["Network lan"]);
    expect((await rt().networkInfo("lan"))!.pid).not.toBe(pid);
    // The guests were not rebooted for it.
    expect(GUESTS.map((g) => rt().instanceStatus(g).bootCount)).toEqual([2, 1]);
  });

  it("kill -9 of a serial relay: refresh shows the link down; up restarts its relays", async () => {
    await writeMarks();
    const record = JSON.parse(readFileSync(join(stateDir, "links", "link.json"), "utf8")) as {
      relays: { pid: number }[];
    };
    process.kill(record.relays[0]!.pid, "SIGKILL");
    await expect.poll(async () => (await rt().serialLinkInfo("link"))!.up).toBe(false);
    await converge(["SerialLink link"]);
    expect(GUESTS.map((g) => rt().instanceStatus(g).bootCount)).toEqual([2, 1]);
  });

  it("an overlay truncated behind our back: refresh names it; up replaces the disk and its guest, saying so", async () => {
    await writeMarks();
    const overlay = rt().disks.get("m1-root")!.path;
    const st = statSync(overlay);
    truncateSync(overlay, Math.floor(st.size / 2));
    utimesSync(overlay, st.atime, st.mtime); // only the size tells
    expect(ok(pulumi("refresh")).summary).toMatchObject({ update: 1 });
    const disk = ok(pulumi("export")).deployment!.deployment.resources.find((r) =>
      r.urn.endsWith("umlfleet:Disk::m1-root"),
    )!;
    expect(String(disk.outputs!.drift)).toContain(`overlay ${overlay} is truncated`);
    // The preview says what up will do: a new disk, and a new guest on it.
    const preview = ok(pulumi("preview"));
    for (const what of ["Disk: (replace)\n        [id=m1-root]", "Instance: (replace)\n        [id=m1]"])
      expect(preview.stdout).toContain(`+-pulumi-nodejs:dynamic/umlfleet:${what}`);
    ok(pulumi("up"));
    expect(rt().disks.info("m1-root")!.problem).toBeUndefined();
    expect(rt().instanceStatus("m1").bootCount).toBe(1);
    expect((await rt().exec("m1", `cat /root/mark${written}`)).exitCode).not.toBe(0); // its data is gone
    firstMark.m1 = written + 1;
    await writeMarks();
    await expectWhole();
    expect(Object.keys(ok(pulumi("preview")).summary!)).toEqual(["same"]);
  });

  it("destroy leaves no process or file of the stack on the host", () => {
    ok(pulumi("destroy"));
    expect(leftOnHost()).toEqual({ processes: [], files: [] });
  });
});

/**
 * Boot faults through the CLI on a stack of one guest: `up` fails within the
 * boot deadline with a typed error carrying the console tail, leaves no
 * process of the guest, and after the program is fixed `up` converges.
 */
describe.skipIf(!haveCli)("e2e: a guest that does not boot, then the program fixed", () => {
  const fixed: Lab = { size: 1 };
  const { pulumi, ok, rt, stateDir, leftOnHost } = useStack("bootfaults", fixed);
  const nothingRuns = () => expect(processesMentioning(`${stateDir}/instances/m0/`)).toEqual([]);
  const converges = async () => {
    ok(pulumi("up", fixed));
    expect(rt().instanceStatus("m0").state).toBe("running");
    expect((await rt().exec("m0", "echo alive")).output).toContain("alive");
    expect(Object.keys(ok(pulumi("preview", fixed)).summary!)).toEqual(["same"]);
  };

  it("never ready (its startup script hangs): up fails with UMLFLEET_BOOT_TIMEOUT and the console tail", async () => {
    const hangs: Lab = { size: 1, startup: "echo startup-hangs-here; sleep 100000", bootTimeoutMs: 30_000 };
    const failed = pulumi("up", hangs);
    expect(failed.error).toContain("UMLFLEET_BOOT_TIMEOUT");
    expect(failed.error).toContain("startup-hangs-here"); // the console tail
    nothingRuns();
    await converges();
  });

  it("panics at boot (its startup script crashes the kernel): up fails with UMLFLEET_BOOT_FAILED and the panic", async () => {
    ok(pulumi("destroy", fixed));
    const panics: Lab = {
      size: 1,
      startup: "echo about-to-panic; echo c > /proc/sysrq-trigger",
      bootTimeoutMs: 30_000,
    };
    const failed = pulumi("up", panics);
    expect(failed.error).toContain("UMLFLEET_BOOT_FAILED");
    expect(failed.error).toContain("about-to-panic");
    expect(failed.error).toMatch(/Kernel panic|sysrq/i);
    nothingRuns();
    await converges();
  });

  it("destroy leaves no process or file of the stack on the host", () => {
    ok(pulumi("destroy", fixed));
    expect(leftOnHost()).toEqual({ processes: [], files: [] });
  });
});
