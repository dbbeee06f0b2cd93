import { mkdirSync, rmSync, statSync, existsSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { useDriverFactory } from "../../provider/driver-factory";
import { LocalRuntime } from "../../src";
import { AgentClient, unixSocketTransport } from "../../src/client";
import { dialStdio, serveAgent, type ServedAgent } from "../helpers/agent";
import { providerContract } from "../helpers/provider-contract";
import { waitFor } from "../../src/process";
import { newTestDir, processesMentioning, testKernel } from "../helpers/runtime";

/**
 * The agent on a real state folder, real switches and real guests: the
 * provider's contract through AgentClient over `umlfleet-agent serve`'s unix
 * socket, and the driver's calls through `umlfleet-agent dial-stdio` on a
 * child's stdin/stdout (what ssh carries; test/integration/agent-ssh.test.ts
 * adds ssh).
 */
describe("the provider over AgentClient over a unix socket (umlfleet-agent serve)", () => {
  const dir = newTestDir("ag");
  const stateDir = `${dir}/s`;
  const socket = `${dir}/a.sock`;
  let agent: ServedAgent;
  let client: AgentClient;

  beforeAll(async () => {
    mkdirSync(dir, { recursive: true });
    agent = await serveAgent(socket, stateDir);
    client = await AgentClient.connect(unixSocketTransport(socket));
    useDriverFactory((d) => {
      if (d !== stateDir) throw new Error(`the test serves ${stateDir} only, not ${d}`);
      return client;
    });
  });

  it("the socket is the owner's only (0600); the agent reports its state folder", () => {
    expect(statSync(socket).mode & 0o777).toBe(0o600);
    expect(client.stateDir).toBe(stateDir);
  });

  it("hostFacts answers the host's facts, as LocalRuntime finds them", async () => {
    const facts = await client.hostFacts();
    const local = await new LocalRuntime({ stateDir }).hostFacts();
    expect(facts.map((f) => [f.id, f.ok])).toEqual(local.map((f) => [f.id, f.ok]));
    expect(facts.find((f) => f.id === "uml-kernel")).toMatchObject({ ok: true, detail: testKernel() });
  });

  providerContract({ stateDir: () => stateDir, kernel: testKernel });

  it("errors come back typed; the inventory is empty; the log names routes and statuses, never bodies", async () => {
    await expect(client.exec("pc", "true")).rejects.toMatchObject({ code: "UMLFLEET_NOT_FOUND" });
    expect(await client.inventory()).toEqual({
      bases: [],
      disks: [],
      networks: [],
      instances: [],
      links: [],
      owners: {},
    });
    expect(agent.stderr()).toMatch(/POST \/v1\/createInstance 200 \d+ms/);
    expect(agent.stderr()).toMatch(/POST \/v1\/exec 404 \d+ms UMLFLEET_NOT_FOUND/);
    expect(agent.stderr()).not.toContain("10.9.0.1"); // the instance spec's address
  });

  afterAll(async () => {
    useDriverFactory();
    await client?.close();
    await new LocalRuntime({ stateDir }).destroyAll({ timeoutMs: 10_000 });
    expect(await agent?.stop()).toBe(0);
    expect(existsSync(socket)).toBe(false);
    expect(processesMentioning(dir)).toEqual([]);
    rmSync(dir, { recursive: true, force: true });
  });
});

describe("AgentClient over umlfleet-agent dial-stdio (a child's stdin and stdout)", () => {
  const dir = newTestDir("ad");
  const stateDir = `${dir}/s`;

  it("serves many requests on one connection; guests outlive the agent; it exits when its stream ends", async () => {
    mkdirSync(dir, { recursive: true });
    const first = dialStdio(stateDir);
    const c = await AgentClient.connect(first.transport);
    expect(c.stateDir).toBe(stateDir);
    expect((await c.hostFacts()).length).toBeGreaterThan(3);
    await c.ensureNetwork({ name: "lan" });
    await c.ensureBase({ name: "bb", source: { kind: "busybox", sizeMiB: 32 } });
    await c.ensureDisk({ name: "g-root", kind: "overlay", base: "bb" });
    const info = await c.createInstance({
      name: "g",
      rootDisk: "g-root",
      nics: [{ network: "lan", ipv4: "10.0.0.1/24" }],
    });
    expect(info).toMatchObject({ state: "running" });
    expect(await c.exec("g", "echo hello from $(hostname)")).toEqual({
      exitCode: 0,
      output: "hello from g\n",
    });
    // The stream ends: the agent exits; the guest it booted runs on.
    await c.close();
    expect(await first.exited).toBe(0);
    expect(new LocalRuntime({ stateDir }).instanceStatus("g").state).toBe("running");

    const second = dialStdio(stateDir);
    const d = await AgentClient.connect(second.transport);
    expect(await d.instanceInfo("g")).toMatchObject({ state: "running", instanceId: info.instanceId });
    await d.removeInstance("g");
    await d.removeDisk("g-root");
    await d.removeBase("bb");
    await d.removeNetwork("lan");
    expect(await d.inventory()).toEqual({
      bases: [],
      disks: [],
      networks: [],
      instances: [],
      links: [],
      owners: {},
    });
    await d.close();
    expect(await second.exited).toBe(0);
    expect(processesMentioning(dir)).toEqual([]);
  });

  it("a stream cut in the middle of createInstance leaves no orphan; the next create converges to one guest", async () => {
    const a = dialStdio(stateDir);
    const c = await AgentClient.connect(a.transport);
    await c.ensureNetwork({ name: "lan" });
    await c.ensureBase({ name: "bb", source: { kind: "busybox", sizeMiB: 32 } });
    await c.ensureDisk({ name: "h-root", kind: "overlay", base: "bb" });
    const spec = { name: "h", rootDisk: "h-root", nics: [{ network: "lan", ipv4: "10.0.0.2/24" }] };
    const creating = c.createInstance(spec).catch((e: unknown) => e);
    // Cut once the boot has begun (its folder exists), as a dropped SSH connection would.
    await waitFor(() => existsSync(`${stateDir}/instances/h`), 60_000, 2);
    a.child.stdin!.end();
    expect(await a.exited).toBe(0); // after the aborted call's clean-up
    await creating;
    const rt = new LocalRuntime({ stateDir });
    // Either the boot won the race (a whole, running guest) or it was undone (nothing of it runs).
    if (rt.instances.list().includes("h")) expect(rt.instanceStatus("h").state).toBe("running");
    else expect(processesMentioning(`${stateDir}/instances/h/`)).toEqual([]);

    const b = dialStdio(stateDir);
    const d = await AgentClient.connect(b.transport);
    expect(await d.createInstance(spec)).toMatchObject({ state: "running" });
    expect((await d.inventory()).instances).toEqual(["h"]);
    expect(await d.exec("h", "echo one")).toEqual({ exitCode: 0, output: "one\n" });
    await d.removeInstance("h");
    await d.removeDisk("h-root");
    await d.removeBase("bb");
    await d.removeNetwork("lan");
    await d.close();
    expect(processesMentioning(dir)).toEqual([]);
  });

  afterAll(async () => {
    await new LocalRuntime({ stateDir }).destroyAll({ timeoutMs: 10_000 });
    rmSync(dir, { recursive: true, force: true });
  });
});
