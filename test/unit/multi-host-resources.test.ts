import * as pulumi from "@pulumi/pulumi";
import { beforeAll, describe, expect, it } from "vitest";

/** What the resource classes refuse at construction, before Pulumi does anything (mocked runtime). */
describe("resources on several hosts", () => {
  let r: typeof import("../../provider/resources");
  beforeAll(async () => {
    await pulumi.runtime.setMocks(
      {
        newResource: (a) => ({ id: `${a.name}-id`, state: a.inputs as Record<string, unknown> }),
        call: (a) => a.inputs as Record<string, unknown>,
      },
      "proj",
      "stack",
      false,
    );
    r = await import("../../provider/resources");
  });

  it("refuses an overlay over a base on another host, and an instance on a disk of another host", () => {
    const a = new r.Host("ha", { ssh: { host: "10.231.1.1" } });
    const b = new r.Host("hb", { ssh: { host: "10.231.1.2" } });
    const base = new r.RootFilesystem("bb-a", { host: a, source: { kind: "busybox" } });
    expect(() => new r.Disk("d", { host: b, kind: "overlay", base })).toThrow(
      /Disk d: its base is on Host ha, the disk on Host hb/,
    );
    const disk = new r.Disk("d2", { host: a, kind: "overlay", base });
    expect(() => new r.Instance("i", { host: b, rootDisk: disk })).toThrow(
      /Instance i: rootDisk is on Host ha, the instance on Host hb/,
    );
  });

  it("refuses a SerialLink between instances on different hosts, naming both", () => {
    const a = new r.Host("lab-a", { ssh: { host: "10.231.1.1" } });
    const b = new r.Host("lab-b", { ssh: { host: "10.231.1.2" } });
    const vm = (name: string, host: InstanceType<typeof r.Host>) =>
      new r.Instance(name, {
        host,
        rootDisk: new r.Disk(`${name}-root`, {
          host,
          kind: "overlay",
          base: new r.RootFilesystem(`${name}-bb`, { host, source: { kind: "busybox" } }),
        }),
      });
    const x = vm("x", a);
    const y = vm("y", b);
    expect(() => new r.SerialLink("l", { a: { instance: x, line: 1 }, b: { instance: y, line: 1 } })).toThrow(
      /SerialLink l: .*different hosts \(Host lab-a, Host lab-b\): a serial link across hosts is not supported/,
    );
    // On one host it is made, on that host.
    const z = vm("z", a);
    expect(
      () => new r.SerialLink("m", { a: { instance: x, line: 1 }, b: { instance: z, line: 1 } }),
    ).not.toThrow();
  });
});
