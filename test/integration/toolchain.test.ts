import { execFileSync, spawnSync } from "node:child_process";
import {
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { dirname, join, resolve } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { pulumiBinDir } from "../../automation/local-stack";
import { kernelRunsGuests } from "../../src";
import { newTestDir } from "../helpers/paths";

/**
 * The toolchain a project outside this repository relies on: install-pulumi.sh
 * into a folder of its own (the cached CLI build is linked, not rebuilt), and
 * `umlfleet doctor` on this machine, whole and with vde_switch taken off PATH.
 */
const REPO = resolve(__dirname, "../..");
const UMLFLEET = join(REPO, "bin", "umlfleet");
const INSTALL = join(REPO, "scripts", "install-pulumi.sh");
const haveCli = existsSync(join(pulumiBinDir(), "pulumi"));
const cacheEnv = { UMLFLEET_CACHE: dirname(dirname(pulumiBinDir())) };

describe.skipIf(!haveCli)("install-pulumi.sh and umlfleet doctor", () => {
  const dir = newTestDir("toolchain");
  const bin = join(dir, "bin");
  const install = (target: string) =>
    execFileSync("bash", [INSTALL, target], { encoding: "utf8", env: { ...process.env, ...cacheEnv } });
  const doctor = (path: string, ...args: string[]) => doctorWith({ PATH: path }, ...args);
  const doctorWith = (env: NodeJS.ProcessEnv, ...args: string[]) =>
    spawnSync("node", [UMLFLEET, "doctor", ...args], {
      encoding: "utf8",
      env: { ...process.env, ...env },
      timeout: 120_000,
    });

  beforeAll(() => {
    mkdirSync(dir, { recursive: true });
    install(bin);
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it("puts pulumi and both plugins in the folder; a second run changes nothing", () => {
    for (const f of ["pulumi", "pulumi-language-nodejs", "pulumi-resource-pulumi-nodejs"])
      expect(statSync(join(bin, f)).mode & 0o111, f).not.toBe(0);
    expect(readFileSync(join(bin, "pulumi-language-nodejs"), "utf8")).toBe(
      readFileSync(join(REPO, "bin", "pulumi-language-nodejs"), "utf8"),
    );
    const before = readdirSync(bin).map((f) => `${f} ${statSync(join(bin, f)).mtimeMs}`);
    const again = install(bin);
    expect(again).not.toContain("->");
    expect(readdirSync(bin).map((f) => `${f} ${statSync(join(bin, f)).mtimeMs}`)).toEqual(before);
  });

  it("keeps a real language host and a pulumi of another version where they are", () => {
    const other = join(dir, "other");
    mkdirSync(other);
    const realHost = "#!/bin/sh\n# the Go language host would be here\n";
    const ownPulumi = "#!/bin/sh\necho v3.200.0\n";
    writeFileSync(join(other, "pulumi-language-nodejs"), realHost, { mode: 0o755 });
    writeFileSync(join(other, "pulumi"), ownPulumi, { mode: 0o755 });
    const out = install(other);
    expect(out).toContain("keeping the real pulumi-language-nodejs");
    expect(out).toContain("keeping the pulumi v3.200.0");
    expect(readFileSync(join(other, "pulumi-language-nodejs"), "utf8")).toBe(realHost);
    expect(readFileSync(join(other, "pulumi"), "utf8")).toBe(ownPulumi);
    // What it lacked is added.
    expect(existsSync(join(other, "pulumi-resource-pulumi-nodejs"))).toBe(true);
  });

  it("the stand-in installed beside the CLI names what to npm install in a project without @pulumi/pulumi", () => {
    const project = join(dir, "empty-project");
    mkdirSync(project);
    const r = spawnSync(join(bin, "pulumi-language-nodejs"), ["127.0.0.1:1"], {
      cwd: project,
      encoding: "utf8",
      timeout: 30_000,
    });
    expect(r.status).toBe(1);
    expect(r.stderr).toContain(`cannot find @pulumi/pulumi from the project folder ${project}`);
    expect(r.stderr).toContain("npm install @pulumi/pulumi");
    const p = spawnSync(join(bin, "pulumi-resource-pulumi-nodejs"), [], { cwd: project, encoding: "utf8" });
    expect(p.status).toBe(1);
    expect(p.stderr).toContain("npm install @pulumi/pulumi");
  });

  it("doctor: everything is present on this machine; exit 0", () => {
    const r = doctor(`${bin}:${process.env.PATH}`);
    expect(r.status, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^umlfleet doctor: all \d+ present$/m);
    expect(r.stdout).not.toContain("MISSING");
    const json = doctor(`${bin}:${process.env.PATH}`, "--json");
    const facts = JSON.parse(json.stdout) as { ok: boolean; facts: { id: string; ok: boolean }[] };
    expect(facts.ok).toBe(true);
    expect(facts.facts.map((f) => f.id)).toEqual(
      expect.arrayContaining([
        "uml-kernel",
        "uml-kernel-runs-guests",
        "vde_switch",
        "user-namespaces",
        "guest-ram-exec",
        "pulumi-language-nodejs",
      ]),
    );
  });

  it("doctor boots the default kernel once: a kernel that cannot run a guest process is named, with the fix", () => {
    const r = doctorWith({ PATH: `${bin}:${process.env.PATH}`, UMLFLEET_KERNEL: "/bin/true" });
    expect(r.status).toBe(1);
    expect(r.stdout).toMatch(
      /^MISSING {2}uml-kernel-runs-guests: .*\/bin\/true: the probe boot ended otherwise.*; fix: .*UMLFLEET_KERNEL/m,
    );
  });

  // On CPUs with AMX, Debian's 6.1 kernel dies at the first guest process (docs/kernel.md).
  const amx = /\bamx_tile\b/.test(readFileSync("/proc/cpuinfo", "utf8"));
  const debian = "/usr/bin/linux.uml";
  // Debian's own file, as dpkg installed it (dpkg --verify prints nothing for it).
  const isDebians =
    existsSync(debian) &&
    !spawnSync("dpkg", ["--verify", "user-mode-linux"], { encoding: "utf8" }).stdout.includes(debian);
  it.runIf(amx && isDebians)("doctor names Debian's kernel on this AMX host as unable to run guests", () => {
    const r = doctorWith({ PATH: `${bin}:${process.env.PATH}`, UMLFLEET_KERNEL: debian });
    expect(r.stdout).toMatch(/^MISSING {2}uml-kernel-runs-guests: .*cannot run guest processes on this CPU/m);
  });

  it("kernelRunsGuests is doctor's probe for one named kernel: umlfleet's runs guests, /bin/true does not", async () => {
    const built = await kernelRunsGuests(process.env.UMLFLEET_KERNEL!);
    expect(built).toMatchObject({ id: "uml-kernel-runs-guests", ok: true });
    expect(built.detail).toContain("runs guest processes");
    const notAKernel = await kernelRunsGuests("/bin/true");
    expect(notAKernel).toMatchObject({ id: "uml-kernel-runs-guests", ok: false });
    expect(notAKernel.detail).toContain("/bin/true: the probe boot ended otherwise");
    if (amx && isDebians) expect((await kernelRunsGuests(debian)).ok).toBe(false);
  });

  it("doctor with vde_switch off PATH names vde2 and its install command; exit 1", () => {
    // A PATH of symlinks to everything on the real one, except vde_switch.
    const stripped = join(dir, "path-without-vde");
    mkdirSync(stripped);
    for (const d of [bin, ...(process.env.PATH ?? "").split(":")]) {
      if (!d || !existsSync(d)) continue;
      for (const name of readdirSync(d)) {
        const link = join(stripped, name);
        if (name !== "vde_switch" && !existsSync(link)) symlinkSync(join(d, name), link);
      }
    }
    const r = doctor(stripped);
    expect(r.status).toBe(1);
    expect(r.stdout).toMatch(/^MISSING {2}vde_switch \(vde2\): .*; fix: (sudo )?apt-get install -y vde2$/m);
    expect(r.stdout).toMatch(/^umlfleet doctor: 1 missing: vde2$/m);
    const json = JSON.parse(doctor(stripped, "--json").stdout) as {
      ok: boolean;
      facts: { id: string; ok: boolean; package?: string; optional?: boolean }[];
    };
    expect(json.ok).toBe(false);
    expect(json.facts.filter((f) => !f.ok && !f.optional)).toEqual([
      expect.objectContaining({ id: "vde_switch", package: "vde2" }),
    ]);
  });
});
