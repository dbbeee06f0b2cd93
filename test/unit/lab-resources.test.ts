import * as pulumi from "@pulumi/pulumi";
import { mkdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { newTestDir } from "../helpers/paths";

/** What importLab and LabChecks declare (mocked Pulumi runtime: no engine, no host). */
describe("importLab and LabChecks declare resources", () => {
  let p: typeof import("../../provider");
  /** Each declared resource's type and inputs, by name. */
  const declared = new Map<string, { type: string; inputs: Record<string, unknown> }>();
  const dir = newTestDir("labres");
  beforeAll(async () => {
    await pulumi.runtime.setMocks(
      {
        newResource: (a) => {
          declared.set(a.name, { type: a.type, inputs: a.inputs as Record<string, unknown> });
          // An instance reports its NICs as the provider would.
          const nicInfo =
            a.name === "srv"
              ? [{ index: 0, device: "eth0", network: "n", mac: "", ipv4: "10.9.0.2/24" }]
              : undefined;
          return {
            id: `${a.name}-id`,
            state: { ...(a.inputs as object), nicInfo, instanceId: "x", bootCount: 1 },
          };
        },
        call: (a) => a.inputs as Record<string, unknown>,
      },
      "proj",
      "stack",
      false,
    );
    p = await import("../../provider");
    mkdirSync(join(dir, "lab", "shared", "etc"), { recursive: true });
    writeFileSync(join(dir, "lab", "lab.conf"), "LAB_AUTHOR=me\npc1[0]=A\nr1[0]=A\nr1[1]=B\nr1[mem]=96\n");
    writeFileSync(join(dir, "lab", "lab.dep"), "pc1: r1\n");
    writeFileSync(join(dir, "lab", "shared", "etc", "motd"), "hi\n");
    writeFileSync(join(dir, "lab", "r1.startup"), "ip link set eth0 up\n");
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  /** The inputs a resource was declared with, once Pulumi resolved them. */
  const inputs = async (name: string) => {
    await new Promise((r) => setTimeout(r, 50));
    return declared.get(name)!.inputs;
  };

  it("a network per domain, an overlay and an instance per machine, with prefix, files, startup and memory", async () => {
    const base = new p.RootFilesystem("b", { source: { kind: "busybox" } });
    const lab = p.importLab(join(dir, "lab"), { base, prefix: "t-" });
    expect(lab.meta).toEqual({ author: "me" });
    expect(Object.keys(lab.networks)).toEqual(["A", "B"]);
    // r1 first: pc1 starts after it (lab.dep).
    expect(Object.keys(lab.machines)).toEqual(["r1", "pc1"]);
    const r1 = await inputs("t-r1");
    expect(declared.get("t-r1")!.type).toBe("pulumi-nodejs:dynamic/umlfleet:Instance");
    expect(r1).toMatchObject({
      name: "t-r1",
      hostname: "t-r1",
      memoryMiB: 96,
      rootDisk: "t-r1-root",
      nics: [{ network: "t-a" }, { network: "t-b" }],
      kernelArgs: ["sysctl.net.ipv4.ip_forward=1"],
    });
    expect(r1.files).toEqual([
      { path: "/etc/motd", content: "hi\n", mode: 0o644 },
      { path: "/hostlab/r1.startup", content: "ip link set eth0 up\n", mode: 0o755 },
    ]);
    expect(r1.startup).toContain("sh /hostlab/r1.startup");
    expect((await inputs("t-pc1")).startup).toBeUndefined();
    expect(declared.get("t-a")!.type).toBe("pulumi-nodejs:dynamic/umlfleet:Network");
    expect(declared.get("t-r1-root")!.inputs).toMatchObject({ kind: "overlay", base: "b" });
  });

  it("an unmapped image throws before anything is declared, naming file and line", async () => {
    mkdirSync(join(dir, "lab2"), { recursive: true });
    writeFileSync(join(dir, "lab2", "lab.conf"), "pc9[0]=A\npc9[image]=kathara/sdn\n");
    const base = new p.RootFilesystem("b2", { source: { kind: "busybox" } });
    expect(() => p.importLab(join(dir, "lab2"), { base, images: {} })).toThrow(
      `${join(dir, "lab2", "lab.conf")}:2: image "kathara/sdn" of pc9 has no base`,
    );
    await inputs("b2");
    for (const name of ["pc9", "pc9-root", "a"]) expect(declared.has(name), name).toBe(false);
  });

  it("LabChecks resolves a guest to its first ipv4 and names guests by their names", async () => {
    const base = new p.RootFilesystem("b3", { source: { kind: "busybox" } });
    const net = new p.Network("n");
    const vm = (name: string) =>
      new p.Instance(name, {
        rootDisk: new p.Disk(`${name}-root`, { kind: "overlay", base }),
        nics: [{ network: net, ipv4: "10.9.0.2/24" }],
      });
    const [cli, srv] = [vm("cli"), vm("srv")];
    new p.LabChecks("chk", {
      checks: [
        { name: "cli to srv", reach: { from: cli, to: srv } },
        { name: "up", command: { on: srv, run: "uptime", expect: { exitCode: 0 } } },
      ],
    });
    const c = await inputs("chk");
    expect(c.checks).toEqual([
      { name: "cli to srv", reach: { from: "cli", to: "10.9.0.2" } },
      { name: "up", command: { on: "srv", run: "uptime", expect: { exitCode: 0 } } },
    ]);
    expect(c.boots).toEqual(["x#1", "x#1"]);
  });
});
