import { spawn, type ChildProcess } from "node:child_process";
import { mkdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Cables } from "../../src/host/cables";
import { StateDir } from "../../src/host/state";
import { processesMentioning, newTestDir } from "../helpers/runtime";

/**
 * Two UDP cable ends (src/host/cables.ts) between two real vde_switches on
 * this host, over loopback: one end started, and sending, before the other
 * listens, as happens whenever a spanning network's cables are made or
 * re-made while guests talk.
 */
describe("a UDP cable end started before its far end", () => {
  let dir: string;
  const switches: ChildProcess[] = [];
  const sw = (n: string) => join(dir, n);
  beforeAll(async () => {
    dir = newTestDir("udp-cable");
    mkdirSync(dir, { recursive: true });
    for (const n of ["sw1", "sw2"]) {
      switches.push(spawn("vde_switch", ["-s", sw(n)], { stdio: ["pipe", "ignore", "ignore"] }));
    }
    await sleep(300);
  });
  afterAll(async () => {
    for (const s of switches) s.kill("SIGKILL");
    await sleep(100);
    rmSync(dir, { recursive: true, force: true });
  });

  /** Broadcast frames from MAC 02:..:<tag>, as vde_plug's stream format wants them (a 2-byte length first). */
  const frames = (tag: number, n: number) => {
    const f = Buffer.alloc(60);
    f.fill(0xff, 0, 6);
    Buffer.from([2, 0, 0, 0, 0, tag]).copy(f, 6);
    f.writeUInt16BE(0x88b5, 12); // local experimental ethertype
    const one = Buffer.concat([Buffer.from([0, 60]), f]);
    return Buffer.concat(Array.from({ length: n }, () => one));
  };
  /** Put frames on a switch through a stream plug (its stdin). */
  const send = async (name: string, data: Buffer) => {
    const p = spawn("vde_plug", [`vde://${sw(name)}`], { stdio: ["pipe", "ignore", "ignore"] });
    p.stdin.write(data);
    await sleep(300);
    p.kill("SIGTERM");
  };
  /** Frames seen on a switch while `during` runs (a stream plug's stdout). */
  const seen = async (name: string, during: () => Promise<void>) => {
    const p = spawn("vde_plug", [`vde://${sw(name)}`], { stdio: ["pipe", "pipe", "ignore"] });
    const got: Buffer[] = [];
    p.stdout.on("data", (b: Buffer) => got.push(b));
    await sleep(300);
    await during();
    await sleep(500);
    p.kill("SIGTERM");
    return Buffer.concat(got).length / 62;
  };

  it("heals: the early end's socket error (ICMP port unreachable) does not end the cable", async () => {
    const stateA = new StateDir(join(dir, "a"));
    const stateB = new StateDir(join(dir, "b"));
    mkdirSync(stateA.root, { recursive: true });
    mkdirSync(stateB.root, { recursive: true });
    const a = new Cables(stateA, () => sw("sw1"));
    const b = new Cables(stateB, () => sw("sw2"));
    const atB = await b.reserve("c", "127.0.0.1");
    const atA = await a.reserve("c", "127.0.0.1");
    await a.ensure({ name: "c", network: "n", kind: "udp", peer: { host: "127.0.0.1", port: atB.port } });
    // A sends before B listens: the kernel answers with port unreachable.
    await send("sw1", frames(1, 3));
    await b.ensure({ name: "c", network: "n", kind: "udp", peer: { host: "127.0.0.1", port: atA.port } });
    // B's frames reach A's socket with its error pending: the first may be lost, later ones pass.
    const atSw1 = await seen("sw1", async () => {
      await send("sw2", frames(2, 3));
      await sleep(500);
      await send("sw2", frames(3, 3));
    });
    expect(atSw1).toBeGreaterThanOrEqual(3);
    expect(a.info("c")?.up).toBe(true);
    const atSw2 = await seen("sw2", () => send("sw1", frames(4, 3)));
    expect(atSw2).toBe(3);
    // Each end on its own port, the one it reserved.
    expect(a.info("c")?.local).toEqual(atA);
    await a.remove("c");
    await b.remove("c");
    expect(processesMentioning("udp://127.0.0.1")).toEqual([]);
  });
});
