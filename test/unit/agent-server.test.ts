import { mkdirSync, rmSync } from "node:fs";
import type { Server } from "node:http";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createAgentServer } from "../../src/agent/server";
import { AgentClient, unixSocketTransport } from "../../src/client";
import type { CallOptions } from "../../src/host/driver";
import type { NetworkSpec } from "../../src/spec";
import { waitFor } from "../../src/process";
import { FakeDriver } from "../helpers/fake-driver";
import { newTestDir } from "../helpers/paths";

/** A fake host whose exec and hostFacts wait: for their signal, or forever. */
class SlowDriver extends FakeDriver {
  execSignal?: AbortSignal;
  // The fake's exec takes no arguments; this one reads its CallOptions (the third).
  override exec(...args: unknown[]) {
    if (args[1] !== "sleep 1000") return super.exec();
    const opts = args[2] as CallOptions | undefined;
    this.execSignal = opts?.signal;
    return new Promise<never>((_resolve, reject) =>
      opts?.signal?.addEventListener("abort", () => reject(opts.signal!.reason as Error)),
    );
  }
  /** The owner the last ensureNetwork's CallOptions named. */
  networkOwner?: string;
  override ensureNetwork(spec: NetworkSpec, opts?: CallOptions) {
    this.networkOwner = opts?.owner;
    return super.ensureNetwork(spec);
  }
  override hostFacts() {
    return new Promise<never>(() => {}); // ignores any deadline: the agent's own must end it
  }
}

/** The agent's handling of a call's lifetime, with a fake driver under it. */
describe("agent server: a call ends with its deadline or its connection", () => {
  const dir = newTestDir("asu");
  const socket = `${dir}/a.sock`;
  const driver = new SlowDriver("/srv/fake");
  const log: string[] = [];
  let server: Server;
  let client: AgentClient;

  beforeAll(async () => {
    mkdirSync(dir, { recursive: true });
    server = createAgentServer(driver, { log: (l) => log.push(l) });
    await new Promise<void>((r) => server.listen(socket, r));
    client = await AgentClient.connect(unixSocketTransport(socket), { graceMs: 200 });
  });
  afterAll(async () => {
    await client.close();
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
    rmSync(dir, { recursive: true, force: true });
  });

  it("the client going away aborts the driver's operation (UMLFLEET_CANCELLED on both sides)", async () => {
    const ctl = new AbortController();
    const call = client.exec("a", "sleep 1000", { signal: ctl.signal });
    await waitFor(() => driver.execSignal, 10_000, 10);
    expect(driver.execSignal!.aborted).toBe(false);
    ctl.abort();
    await expect(call).rejects.toMatchObject({ code: "UMLFLEET_CANCELLED" });
    await waitFor(() => driver.execSignal!.aborted, 10_000, 10);
    expect(driver.execSignal!.reason).toMatchObject({ code: "UMLFLEET_CANCELLED" });
    await waitFor(() => log.some((l) => / POST \/v1\/exec aborted \d+ms/.test(l)), 10_000, 10);
  });

  it("a driver call that ignores its deadline is ended by the agent's: 504 UMLFLEET_OPERATION_TIMEOUT", async () => {
    // The client's default grace outlasts the agent's, so the agent's answer arrives.
    const patient = await AgentClient.connect(unixSocketTransport(socket));
    const started = performance.now();
    await expect(patient.hostFacts({ timeoutMs: 100 })).rejects.toMatchObject({
      code: "UMLFLEET_OPERATION_TIMEOUT",
    });
    await patient.close();
    expect(performance.now() - started).toBeLessThan(60_000); // generous: it ends
    expect(log.some((l) => / POST \/v1\/hostFacts 504 \d+ms UMLFLEET_OPERATION_TIMEOUT$/.test(l))).toBe(true);
  });

  it("idempotent calls share a kept-alive connection; exec always gets a new one", async () => {
    let connections = 0;
    const count = () => connections++;
    server.on("connection", count);
    await client.inventory();
    await client.inventory();
    await client.inventory();
    const shared = connections;
    expect(shared).toBeLessThanOrEqual(1); // the one kept from earlier calls, or one new
    await client.exec("a", "true");
    await client.exec("a", "true");
    expect(connections).toBe(shared + 2);
    server.off("connection", count);
  });

  it("the caller's stack travels to the driver in CallOptions.owner; a malformed one is refused naming /owner", async () => {
    await client.ensureNetwork({ name: "n" }, { owner: "lab/alice" });
    expect(driver.networkOwner).toBe("lab/alice");
    await client.ensureNetwork({ name: "n" });
    expect(driver.networkOwner).toBeUndefined();
    await expect(client.ensureNetwork({ name: "n" }, { owner: "lab/\nalice" })).rejects.toMatchObject({
      code: "UMLFLEET_INVALID_SPEC",
      message: expect.stringContaining("/owner"),
    });
  });

  it("the version route answers the driver's state folder", () => {
    expect(client.version).toMatchObject({ api: 1, stateDir: "/srv/fake" });
  });
});
