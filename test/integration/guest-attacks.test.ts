import { existsSync, readFileSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Canary } from "../helpers/canary";
import { processesMentioning, TestHost } from "../helpers/runtime";

/**
 * Root in a guest can change everything its UML process can see through
 * hostfs, its own vm/ folder included. These tests do, from inside the
 * guest, what measured attacks did before the host stopped acting on paths
 * a guest can write (docs/security.md), and check that the host keeps to
 * what it means: no host file outside the state folder changes (a canary
 * folder, byte for byte), and no command reaches another guest.
 */
describe("a guest's root against the host that acts on its folder", () => {
  const host = new TestHost("atk");
  const canary = new Canary(`${host.dir}/canary`);
  let before: Record<string, string> = {};
  const vmOf = (name: string) => `${host.stateDir}/instances/${name}/vm`;
  /** Mount the guest's own vm/ folder (its sandbox binds it at the host path) at /mnt/vm. */
  const mountVm = (name: string) =>
    `mkdir -p /mnt/vm; grep -q ' /mnt/vm ' /proc/mounts || mount -t hostfs none /mnt/vm -o /../../..${vmOf(name)}`;
  const uptime = async (name: string) => Number((await host.sh(name, "cut -d' ' -f1 /proc/uptime")).trim());

  beforeAll(async () => {
    before = canary.snapshot();
    await host.lab(["a", "b"]);
    await host.rt.ensureDisk({ name: "data", kind: "blank", sizeMiB: 8 });
  });
  afterAll(async () => {
    await host.destroy();
  });

  it("sees its own vm/ folder (the control: the attacks below really reach it)", async () => {
    const ls = await host.sh("a", `${mountVm("a")} && ls /mnt/vm /mnt/vm/u`);
    expect(ls).toContain("disk-a-root");
    expect(ls).toContain("mconsole");
  });

  it("links planted where the host links and unlinks disks: hot-plug, unplug and restart touch only the state folder", async () => {
    // Every name the host makes or removes in vm/ (and the old layout's
    // folders) becomes a link into the canary folder.
    await host.sh(
      "a",
      `${mountVm("a")} && cd /mnt/vm && for d in d uml; do [ -d $d ] && mv $d $d-orig; ln -s ${canary.dir} $d; done && ln -s ${canary.dir}/victim disk-data && ls -la`,
    );
    const plan = await host.rt
      .updateInstance({
        name: "a",
        rootDisk: "a-root",
        nics: [{ network: "lan", ipv4: "10.0.0.1/24" }],
        disks: [{ disk: "data" }],
      })
      .catch((e: unknown) => e);
    expect(canary.snapshot()).toEqual(before); // whatever became of the hot-plug
    expect(plan).toMatchObject({ plan: { kind: "live" } });
    expect(await host.sh("a", "ls /dev/ubdb")).toContain("/dev/ubdb");
    // And the link named like the disk was replaced by the disk, not followed.
    await host.sh("a", `${mountVm("a")} && ln -sf ${canary.dir}/victim /mnt/vm/disk-data 2>/dev/null; true`);
    await host.rt.updateInstance({
      name: "a",
      rootDisk: "a-root",
      nics: [{ network: "lan", ipv4: "10.0.0.1/24" }],
    });
    expect(canary.snapshot()).toEqual(before);
    await host.rt.restartInstance("a");
    expect(host.rt.instanceStatus("a").state).toBe("running");
    expect(canary.snapshot()).toEqual(before);
  });

  it("its mconsole socket replaced by a link to a neighbour's: stopping it never reaches the neighbour", async () => {
    const bUp = await uptime("b");
    await host.sh(
      "a",
      `${mountVm("a")} && mv /mnt/vm/u/mconsole /mnt/vm/u/mc-orig && ln -s ${vmOf("b")}/u/mconsole /mnt/vm/u/mconsole && ls -la /mnt/vm/u`,
    );
    // Live memory through mconsole fails for a (its socket is gone), never lands on b.
    await host.rt.stopInstance("a", { timeoutMs: 6_000 });
    expect(host.rt.instanceStatus("a").state).toBe("stopped");
    expect(processesMentioning(`${host.stateDir}/instances/a/`)).toEqual([]);
    expect(host.rt.instanceStatus("b").state).toBe("running");
    expect(await uptime("b")).toBeGreaterThan(bUp);
    expect(readFileSync(host.rt.instanceStatus("b").consoleLog, "utf8")).not.toContain("shutting down");
    expect(canary.snapshot()).toEqual(before);
  });

  it("its whole mconsole folder replaced by a link to a neighbour's: the same", async () => {
    await host.rt.startInstance("a");
    const bUp = await uptime("b");
    await host.sh("a", `${mountVm("a")} && mv /mnt/vm/u /mnt/vm/u-orig && ln -s ${vmOf("b")}/u /mnt/vm/u`);
    await host.rt.stopInstance("a", { timeoutMs: 6_000 });
    expect(host.rt.instanceStatus("a").state).toBe("stopped");
    expect(host.rt.instanceStatus("b").state).toBe("running");
    expect(await uptime("b")).toBeGreaterThan(bUp);
    expect(readFileSync(host.rt.instanceStatus("b").consoleLog, "utf8")).not.toContain("shutting down");
    // b's own folder is intact: the host's clean-up removed a's link, not what it named.
    expect(existsSync(`${vmOf("b")}/u/mconsole`)).toBe(true);
    expect(await host.rt.inspectInstance("b")).toMatchObject({ state: "running" });
    expect(canary.snapshot()).toEqual(before);
  });

  it("a folder of vm/ swapped for a link to the canary while it runs: stop and destroy remove the link only", async () => {
    await host.rt.startInstance("a");
    await host.sh(
      "a",
      `${mountVm("a")} && mkdir -p /mnt/vm/junk/x && ln -s ${canary.dir} /mnt/vm/junk/x/into-canary && ln -s ${canary.dir} /mnt/vm/canary-link`,
    );
    await host.rt.stopInstance("a");
    await host.rt.startInstance("a");
    expect(canary.snapshot()).toEqual(before);
  });

  it("the switch acts in a folder guests can write, from a sandbox that holds only that folder", async () => {
    // vde_switch chmods and chowns each port socket by path, in the switch
    // folder guests write: a link planted there must lead nowhere it could act.
    await host.sh(
      "a",
      `mkdir -p /mnt/sw && mount -t hostfs none /mnt/sw -o /../../..${host.stateDir}/switches/lan && ln -s ${canary.dir}/victim /mnt/sw/001.9 && ls /mnt/sw`,
    );
    const sw = host.rt.networks.get("lan")!.switch!.pid;
    const inSwitch = (p: string) => existsSync(`/proc/${sw}/root${p}`);
    expect(inSwitch(`${host.stateDir}/switches/lan/ctl`)).toBe(true); // the control: its own folder is there
    expect(inSwitch(`${canary.dir}/victim`)).toBe(false);
    expect(inSwitch(`${host.stateDir}/instances`)).toBe(false);
    expect(inSwitch("/etc/passwd")).toBe(false);
    // As root a switch keeps CAP_CHOWN, CAP_DAC_OVERRIDE and CAP_FOWNER for
    // guests run as other uids (runAs); they reach only its own folder.
    const status = readFileSync(`/proc/${sw}/status`, "utf8");
    expect(status).toMatch(process.getuid?.() === 0 ? /^CapEff:\s+0+b$/m : /^CapEff:\s+0+$/m);
    // And guests still reach each other through it.
    expect(await host.sh("b", "ping -c 1 -W 5 10.0.0.1")).toMatch(/1 packets received/);
    expect(canary.snapshot()).toEqual(before);
  });

  it("destroy leaves no process of either guest and the canary as it was", async () => {
    await host.rt.destroyAll({ timeoutMs: 10_000 });
    expect(processesMentioning(host.stateDir)).toEqual([]);
    expect(canary.snapshot()).toEqual(before);
  });
});
