/**
 * `umlfleet gc`: what a crash leaves is found and removed; what a stack owns
 * (anything with a record) is not touched. Debris is made two ways: by hand,
 * one of each kind, and by killing a process in the middle of a create.
 */
import { spawn } from "node:child_process";
import {
  closeSync,
  constants,
  existsSync,
  mkdirSync,
  openSync,
  rmSync,
  utimesSync,
  writeFileSync,
} from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { main } from "../../src/cli/main";
import { findDebris } from "../../src/host/gc";
import { StateDir } from "../../src/host/state";
import { identify, isAlive, processStartTicks, processesNaming, waitFor } from "../../src/process";
import { TestHost, sendOverSerial } from "../helpers/runtime";

async function cli(args: string[]): Promise<{ status: number; out: string; err: string }> {
  let out = "";
  let err = "";
  const status = await main(args, {
    out: (t) => void (out += t),
    err: (t) => void (err += t),
    env: process.env,
  });
  return { status, out, err };
}

describe("umlfleet gc: a crash's debris goes, a stack's resources stay", () => {
  const host = new TestHost("gc");
  const state = new StateDir(host.stateDir);
  let owned: { a: number; b: number };

  beforeAll(async () => {
    const [a, b] = await host.lab(["a", "b"], { extra: () => ({ serialLines: 2 }) });
    await host.rt.ensureSerialLink({
      name: "ab",
      a: { instance: "a", line: 1 },
      b: { instance: "b", line: 1 },
    });
    owned = { a: a!.pid!, b: b!.pid! };
  }, 120_000);
  afterAll(() => host.destroy(), 60_000);

  it("finds one of each kind of debris and nothing a stack owns; gc removes exactly that", async () => {
    expect(findDebris(state)).toEqual([]);

    // A guest whose record was never written (its create was killed): processes and folder.
    await host.rt.ensureDisk({ name: "ghost-root", kind: "overlay", base: "bb" });
    await host.rt.createInstance({ name: "ghost", rootDisk: "ghost-root" });
    expect(processesNaming(state.instanceDir("ghost")).length).toBeGreaterThan(0);
    rmSync(state.instanceRecord("ghost"));
    // A serial-line relay no link lists (a link whose record was lost).
    const fifo = host.rt.instances.status("a").serialLines[1]!.out;
    const fd = openSync(fifo, constants.O_RDWR);
    const relay = spawn("cat", [], { detached: true, stdio: [fd, "ignore", "ignore"] });
    closeSync(fd);
    relay.unref();
    // A lock whose owner died, a temp file of an interrupted write, an image no base uses,
    // a disk file and a switch folder with no record.
    // A process that is gone: a pid with a start time no running process has.
    const deadId = { pid: 4_000_000, startTicks: 1 };
    mkdirSync(state.lockDir("instance-zz"), { recursive: true });
    writeFileSync(join(state.lockDir("instance-zz"), "owner.json"), JSON.stringify(deadId));
    const temp = `${state.baseRecord("bb")}.tmp-${deadId.pid}-abc123`;
    writeFileSync(temp, "{");
    utimesSync(temp, new Date(Date.now() - 120_000), new Date(Date.now() - 120_000));
    const strayImage = state.image("0".repeat(64));
    writeFileSync(strayImage, "x");
    writeFileSync(state.diskFile("lost"), "x");
    mkdirSync(state.switchDir("gone"));

    const ghostBefore = processesNaming(state.instanceDir("ghost"));
    const found = findDebris(state);
    const byKind = (k: string) => found.filter((d) => d.kind === k);
    // Every process of the ghost (UML starts and ends helper processes: those alive now) and
    // the relay; nothing else.
    const foundPids = byKind("process").map((d) => d.pid);
    expect(foundPids).toContain(relay.pid);
    for (const pid of ghostBefore) if (processStartTicks(pid) !== null) expect(foundPids).toContain(pid);
    for (const d of byKind("process"))
      expect(d.pid === relay.pid || d.path.includes(state.instanceDir("ghost")), d.command).toBe(true);
    expect(byKind("instance-folder").map((d) => d.path)).toEqual([state.instanceDir("ghost")]);
    expect(byKind("lock").map((d) => d.path)).toEqual([state.lockDir("instance-zz")]);
    expect(byKind("temp-file").map((d) => d.path)).toEqual([temp]);
    expect(byKind("image").map((d) => d.path)).toEqual([strayImage]);
    expect(byKind("disk-file").map((d) => d.path)).toEqual([state.diskFile("lost")]);
    expect(byKind("switch-folder").map((d) => d.path)).toEqual([state.switchDir("gone")]);
    // Nothing of a, b, their overlays, the network or the link.
    for (const d of found)
      expect(d.path).not.toMatch(/instances\/(a|b)\/(?!fifo)|disks\/(a|b)-root|switches\/lan|links\//);

    // The ghost's host processes (one per process in the guest, under UML)
    // come and go between two looks: its process lines are counted loosely,
    // every other kind exactly.
    const fixed = found.filter((d) => d.kind !== "process").length;
    const expectLines = (out: string, prefix: string) => {
      const lines = out.split("\n").filter((l) => l.startsWith(prefix));
      const procLines = lines.filter((l) => l.startsWith(`${prefix} process\t`));
      expect(lines.length - procLines.length).toBe(fixed);
      expect(procLines.some((l) => l.includes(`pid ${relay.pid} `))).toBe(true);
      expect(procLines.length).toBeGreaterThan(1); // the relay and the ghost's kernel at least
    };
    const dry = await cli(["gc", "--state-dir", host.stateDir, "--dry-run"]);
    expect(dry.status).toBe(0);
    expectLines(dry.out, "would remove");
    // A dry run changes nothing.
    expect(findDebris(state).filter((d) => d.kind !== "process")).toHaveLength(fixed);

    const run = await cli(["gc", "--state-dir", host.stateDir]);
    expect(run.status).toBe(0);
    expectLines(run.out, "removed");
    expect(findDebris(state)).toEqual([]);
    expect(processesNaming(state.instanceDir("ghost"))).toEqual([]);
    expect(isAlive(identify(relay.pid!) ?? undefined)).toBe(false);
    for (const p of [
      state.instanceDir("ghost"),
      temp,
      strayImage,
      state.diskFile("lost"),
      state.switchDir("gone"),
    ])
      expect(existsSync(p), p).toBe(false);

    // The stack's resources are as they were: same guests, the link still carries text.
    expect(host.rt.instances.status("a").pid).toBe(owned.a);
    expect(host.rt.instances.status("b").pid).toBe(owned.b);
    expect(await sendOverSerial(host.rt, "a", "b", "after-gc")).toContain("after-gc");
    const listed = JSON.parse((await cli(["ls", "--state-dir", host.stateDir, "--json"])).out) as {
      instances: { name: string; state: string }[];
    };
    expect(listed.instances.map((i) => [i.name, i.state])).toEqual([
      ["a", "running"],
      ["b", "running"],
    ]);
    await host.rt.removeDisk("ghost-root");
  }, 120_000);

  it("umlfleet graph prints the topology as DOT: machines on their network, the serial link, their base", async () => {
    const r = await cli(["graph", "--state-dir", host.stateDir]);
    expect(r.status).toBe(0);
    expect(r.out).toMatch(/^graph umlfleet \{/);
    for (const line of [
      '"vm:a" -- "net:lan" [label="eth0 10.0.0.1/24"];',
      '"vm:b" -- "net:lan" [label="eth0 10.0.0.2/24"];',
      '"vm:a" -- "base:bb" [style=dotted];',
      '"vm:a" -- "vm:b" [style=dashed, label="ab: ttyS1-ttyS1"];',
    ])
      expect(r.out).toContain(line);
  });

  it("umlfleet logs prints a guest's console log and, with -f, what it writes next", async () => {
    const once = await cli(["logs", "--state-dir", host.stateDir, "a"]);
    expect(once.status).toBe(0);
    expect(once.out).toContain("UMLFLEET-READY");
    expect((await cli(["logs", "--state-dir", host.stateDir, "nope"])).status).toBe(1);
    let followed = "";
    const stop = new AbortController();
    const following = main(["logs", "--state-dir", host.stateDir, "-f", "a"], {
      out: (t) => void (followed += t),
      err: () => {},
      env: process.env,
      stop: stop.signal,
    });
    await host.sh("a", "echo followed-line > /dev/console");
    await waitFor(() => followed.includes("followed-line"), 10_000, 50);
    stop.abort();
    expect(await following).toBe(0);
    expect(followed).toContain("followed-line");
  }, 60_000);

  it("a create killed at any point leaves either an owned instance (removed by its delete) or debris gc removes", async () => {
    await host.rt.ensureDisk({ name: "crash-root", kind: "overlay", base: "bb" });
    const dist = join(__dirname, "..", "..", "dist", "src", "index.js");
    const script = `const { LocalRuntime } = require(${JSON.stringify(dist)});
      new LocalRuntime({ stateDir: ${JSON.stringify(host.stateDir)} }).createInstance({ name: "crash", rootDisk: "crash-root" });`;
    for (const point of ["folder", "sandbox"] as const) {
      const child = spawn(process.execPath, ["-e", script], { stdio: "ignore" });
      const exited = new Promise((r) => child.on("exit", r));
      // Kill the creator when the guest's folder exists, or once a guest process runs.
      await waitFor(
        () =>
          point === "folder"
            ? existsSync(state.instanceDir("crash"))
            : processesNaming(state.vmDir("crash")).length > 1,
        60_000,
        5,
      );
      child.kill("SIGKILL");
      await exited;
      await cli(["gc", "--state-dir", host.stateDir]);
      if (existsSync(state.instanceRecord("crash"))) await host.rt.removeInstance("crash");
      expect(processesNaming(state.instanceDir("crash")), point).toEqual([]);
      expect(existsSync(state.instanceDir("crash")), point).toBe(false);
      expect(findDebris(state), point).toEqual([]);
    }
    await host.rt.removeDisk("crash-root");
  }, 180_000);
});
