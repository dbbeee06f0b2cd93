import { chmodSync, mkdirSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { LabError, parseLabConf, parseLabDep } from "../../src/lab-conf";
import { readLabFolder } from "../../src/lab-folder";
import { HOSTLAB, planLab, type LabFolder } from "../../src/lab-plan";
import { newTestDir } from "../helpers/paths";

/** The error `f` throws: a LabError whose message starts with `where`. */
function labError(f: () => unknown, where: string): LabError {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(LabError);
    const err = e as LabError;
    expect(err.code).toBe("UMLFLEET_LAB_INVALID");
    expect(err.message.startsWith(`${where}: `), err.message).toBe(true);
    return err;
  }
  throw new Error("no error thrown");
}

describe("lab.conf", () => {
  it("reads interfaces, memory, image, sysctls and LAB_* metadata, comments and quotes", () => {
    const c = parseLabConf(
      [
        "# a Kathará lab",
        'LAB_DESCRIPTION="Two routers, static routes"',
        "LAB_VERSION=1.0",
        "LAB_AUTHOR='A. Teacher'",
        "LAB_EMAIL=teacher@example.org   # who to ask",
        "LAB_WEB=https://example.org/lab",
        'LAB_NAME="static_routes"',
        "",
        "pc1[0]=A",
        "r1[0]=A",
        "  r1[1] = B  ",
        "r1[mem]=128m",
        'r1[image]="kathara/frr"',
        "r1[sysctl]=net.ipv4.conf.all.rp_filter=0",
        "pc2[0]=B/02:42:0A:00:00:02\r",
        "pc2[mem]=1g # a comment",
      ].join("\n"),
    );
    expect(c.meta).toEqual({
      description: "Two routers, static routes",
      version: "1.0",
      author: "A. Teacher",
      email: "teacher@example.org",
      web: "https://example.org/lab",
      name: "static_routes",
    });
    expect(c.machines.map((m) => m.name)).toEqual(["pc1", "r1", "pc2"]);
    const r1 = c.machines[1]!;
    expect(r1.interfaces.map((i) => [i.index, i.domain])).toEqual([
      [0, "A"],
      [1, "B"],
    ]);
    expect(r1.memoryMiB).toBe(128);
    expect(r1.image).toEqual({ name: "kathara/frr", line: 13 });
    expect(r1.sysctls).toEqual(["sysctl.net.ipv4.conf.all.rp_filter=0"]);
    expect(c.machines[2]!.interfaces[0]!.mac).toBe("02:42:0a:00:00:02");
    expect(c.machines[2]!.memoryMiB).toBe(1024);
  });

  it("puts interfaces in eth order whatever the line order", () => {
    const c = parseLabConf("r[1]=B\nr[0]=A\n");
    expect(c.machines[0]!.interfaces.map((i) => i.domain)).toEqual(["A", "B"]);
  });

  it.each([
    ["pc1[bridged]=true", 1, /option "bridged" of machine pc1 is not supported/],
    ["pc1[0]=A\npc1[port]=2000:80", 2, /"port".*not supported/],
    ["pc1[exec]=ls", 1, /"exec"/],
    ["pc1[num_terms]=0", 1, /"num_terms"/],
    ["pc1[ipv6]=false", 1, /"ipv6"/],
    ["pc1[image]=a\npc1[image]=b", 2, /set twice \(first at line 1\)/],
    ["pc1[0]=A\npc1[0]=B", 2, /pc1\[0\] is set twice/],
    ["pc1[mem]=lots", 1, /mem must be a size/],
    ["pc1[mem]=4", 1, /8 to 65536/],
    ["pc1[0]=A B", 1, /unexpected text after the value/],
    ['pc1[0]="A', 1, /unterminated " quote/],
    ["pc1[0]=", 1, /empty value/],
    ["pc1[0]=../etc", 1, /collision domain "..\/etc"/],
    ["pc1[0]=A/B/C", 1, /collision domain/],
    ["pc1[0]=A/00:11:22:33:44:55", 1, /locally administered/],
    ["../x[0]=A", 1, /machine name "..\/x"/],
    ["a.b[0]=A", 1, /machine name "a.b"/],
    ["pc1[16]=A", 1, /at most 16/],
    ["pc1[1]=A", 1, /interface 1 of pc1 without interface 0/],
    ["pc1[sysctl]=kernel.panic", 1, /key=value/],
    ["pc1[sysctl]=net.ipv4.ip_forward=1;reboot", 1, /key=value/],
    ["LAB_IMAGE=x", 1, /unknown lab setting LAB_IMAGE/],
    ["LAB_VERSION=1\nLAB_VERSION=2", 2, /set twice/],
    ["\n\nthis is not a line", 3, /not a lab.conf line/],
    ["pc1 0 = A", 1, /not a lab.conf line/],
  ])("refuses %j naming the line", (text, line, message) => {
    const err = labError(() => parseLabConf(text, "/l/lab.conf"), `/l/lab.conf:${line}`);
    expect(err.message).toMatch(message);
    expect(err.details).toEqual({ file: "/l/lab.conf", line });
  });
});

describe("lab.dep", () => {
  const machines = ["pc1", "r1", "r2", "pc2"];
  it("reads Make-like lines, merging a machine's lines", () => {
    const d = parseLabDep("# order\npc1: r1 r2\n\npc1:r1\npc2 : r2 # the far router\n", machines);
    expect(Object.fromEntries(d)).toEqual({ pc1: ["r1", "r2"], pc2: ["r2"] });
  });
  it.each([
    ["pc1: r9", 1, /machine r9 is not in lab.conf/],
    ["pc1 r1", 1, /not a lab.dep line/],
    ["pc1: pc1", 1, /depends on itself/],
    ["pc1: ../r1", 1, /machine name/],
    ["pc1: r1\nr1: r2\nr2: pc1", 1, /cycle: pc1 -> r1 -> r2 -> pc1/],
  ])("refuses %j naming the line", (text, line, message) => {
    expect(labError(() => parseLabDep(text, machines, "/l/lab.dep"), `/l/lab.dep:${line}`).message).toMatch(
      message,
    );
  });
});

describe("planLab", () => {
  const folder = (conf: string, more: Partial<LabFolder> = {}): LabFolder => ({
    dir: "/l",
    conf: parseLabConf(conf, "/l/lab.conf"),
    deps: new Map(),
    startups: new Map(),
    trees: new Map(),
    ...more,
  });
  const opts = { images: ["kathara/frr"], defaultBase: true };

  it("makes a network per collision domain and an instance per machine", () => {
    const p = planLab(
      folder("pc1[0]=A\nr1[0]=A\nr1[1]=lan_B\nr1[image]=kathara/frr\nr1[mem]=96\npc2[0]=lan_B\n"),
      { ...opts, prefix: "x-" },
    );
    expect([...p.networks]).toEqual([
      ["A", "x-a"],
      ["lan_B", "x-lan-b"],
    ]);
    expect(p.machines.map((m) => [m.labName, m.name, m.image, m.memoryMiB])).toEqual([
      ["pc1", "x-pc1", undefined, undefined],
      ["r1", "x-r1", "kathara/frr", 96],
      ["pc2", "x-pc2", undefined, undefined],
    ]);
    expect(p.machines[1]!.nics).toEqual([{ network: "x-a" }, { network: "x-lan-b" }]);
    expect(p.machines[0]!.kernelArgs).toEqual(["sysctl.net.ipv4.ip_forward=1"]);
    expect(planLab(folder("pc1[0]=A"), { ...opts, ipForward: false }).machines[0]!.kernelArgs).toEqual([]);
  });

  it("copies shared/ then the machine's tree over it, and runs shared.startup first", () => {
    const f = (path: string, content: string) => ({ path, content, mode: 0o644, from: path });
    const p = planLab(
      folder("pc1[0]=A\npc2[0]=A\n", {
        trees: new Map([
          ["shared", [f("/etc/motd", "shared"), f("/etc/issue", "hi")]],
          ["pc1", [f("/etc/motd", "pc1's")]],
        ]),
        startups: new Map([
          ["shared", "echo shared"],
          ["pc1", "#!/bin/sh\necho pc1"],
        ]),
        deps: new Map([["pc2", ["pc1"]]]),
      }),
      opts,
    );
    const [pc1, pc2] = p.machines;
    expect(pc1!.files.find((x) => x.path === "/etc/motd")!.content).toBe("pc1's");
    expect(pc2!.files.find((x) => x.path === "/etc/motd")!.content).toBe("shared");
    expect(pc1!.files.find((x) => x.path === `${HOSTLAB}/pc1.startup`)).toMatchObject({ mode: 0o755 });
    const lines = pc1!.startup!.split("\n");
    const shared = lines.findIndex((l) => l.startsWith(`sh ${HOSTLAB}/shared.startup`));
    const own = lines.findIndex((l) => l.startsWith(`${HOSTLAB}/pc1.startup`));
    expect(shared).toBeGreaterThan(0);
    expect(own).toBeGreaterThan(shared);
    expect(pc2!.startup).toContain("shared.startup");
    expect(pc2!.startup).not.toContain("pc1.startup");
    expect(pc2!.dependsOn).toEqual(["pc1"]);
  });

  it.each([
    ["pc1[image]=kathara/base", "/l/lab.conf:1", /image "kathara\/base" of pc1 has no base/],
    ["pc1[0]=A\nPC1[0]=A", "/l/lab.conf:2", /both become pc1/],
    ["shared[0]=A", "/l/lab.conf:1", /may not be called "shared"/],
    ["1pc[0]=A", "/l/lab.conf:1", /must start with a letter/],
    [`${"m".repeat(28)}[0]=A`, "/l/lab.conf:1", /at most 27/],
    ["pc1[0]=a\npc2[0]=A", "/l/lab.conf:2", /collision domains a and A both become the network a/],
  ])("refuses %j", (conf, where, message) => {
    expect(labError(() => planLab(folder(conf), opts), where).message).toMatch(message);
  });

  it("refuses a machine with no image when there is no default base", () =>
    expect(
      labError(() => planLab(folder("pc1[0]=A"), { images: [], defaultBase: false }), "/l/lab.conf:1")
        .message,
    ).toMatch(/names no image/));

  it("refuses more files than an instance takes", () => {
    const many = Array.from({ length: 65 }, (_, i) => ({
      path: `/f${i}`,
      content: "",
      mode: 0o644,
      from: "",
    }));
    expect(
      labError(() => planLab(folder("pc1[0]=A", { trees: new Map([["pc1", many]]) }), opts), "/l/pc1")
        .message,
    ).toMatch(/65 files.*at most 64/);
  });
});

describe("readLabFolder", () => {
  const root = newTestDir("labconf");
  let n = 0;
  const lab = (files: Record<string, string>) => {
    const dir = join(root, `lab${n++}`);
    for (const [p, text] of Object.entries(files)) {
      mkdirSync(dirname(join(dir, p)), { recursive: true });
      writeFileSync(join(dir, p), text);
    }
    return dir;
  };
  afterAll(() => rmSync(root, { recursive: true, force: true }));

  it("reads lab.conf, lab.dep, startup scripts and the trees of named machines, with modes", () => {
    const dir = lab({
      "lab.conf": "pc1[0]=A\npc2[0]=A\n",
      "lab.dep": "pc2: pc1\n",
      "shared.startup": "echo shared\n",
      "pc1.startup": "ip addr add 10.0.0.1/24 dev eth0\n",
      "shared/etc/motd": "hello\n",
      "pc1/usr/local/bin/hi": "#!/bin/sh\necho hi\n",
      "other/ignored": "not a machine\n",
    });
    chmodSync(join(dir, "pc1/usr/local/bin/hi"), 0o750);
    const f = readLabFolder(dir);
    expect(f.conf.machines.map((m) => m.name)).toEqual(["pc1", "pc2"]);
    expect(Object.fromEntries(f.deps)).toEqual({ pc2: ["pc1"] });
    expect(Object.fromEntries(f.startups)).toEqual({
      shared: "echo shared\n",
      pc1: "ip addr add 10.0.0.1/24 dev eth0\n",
    });
    expect(f.trees.get("shared")).toEqual([
      { path: "/etc/motd", content: "hello\n", mode: 0o644, from: "shared/etc/motd" },
    ]);
    expect(f.trees.get("pc1")).toEqual([
      {
        path: "/usr/local/bin/hi",
        content: "#!/bin/sh\necho hi\n",
        mode: 0o750,
        from: "pc1/usr/local/bin/hi",
      },
    ]);
    expect(f.trees.has("other")).toBe(false);
  });

  it("names the missing lab.conf", () => {
    const dir = lab({ README: "no lab here" });
    labError(() => readLabFolder(dir), join(dir, "lab.conf"));
  });

  it("does not follow a symbolic link in a tree, or as a startup script", () => {
    const dir = lab({ "lab.conf": "pc1[0]=A\n", "pc1/etc/keep": "x" });
    symlinkSync("/etc/passwd", join(dir, "pc1/etc/passwd"));
    expect(labError(() => readLabFolder(dir), join(dir, "pc1/etc/passwd")).message).toMatch(/symbolic link/);
    const dir2 = lab({ "lab.conf": "pc1[0]=A\n" });
    symlinkSync("/etc/passwd", join(dir2, "pc1.startup"));
    labError(() => readLabFolder(dir2), join(dir2, "pc1.startup"));
  });

  it("refuses a file whose guest path would hold a space, or a binary file", () => {
    const dir = lab({ "lab.conf": "pc1[0]=A\n", "pc1/etc/a b": "x" });
    expect(labError(() => readLabFolder(dir), join(dir, "pc1/etc/a b")).message).toMatch(/guest path/);
    const dir2 = lab({ "lab.conf": "pc1[0]=A\n" });
    mkdirSync(join(dir2, "shared"));
    writeFileSync(join(dir2, "shared/blob"), Buffer.from([0xff, 0xfe, 0x00]));
    expect(labError(() => readLabFolder(dir2), join(dir2, "shared/blob")).message).toMatch(/not UTF-8/);
  });

  it("names lab.dep's line", () => {
    const dir = lab({ "lab.conf": "pc1[0]=A\n", "lab.dep": "\npc1: ghost\n" });
    labError(() => readLabFolder(dir), `${join(dir, "lab.dep")}:2`);
  });
});
