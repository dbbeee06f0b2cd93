import { randomBytes } from "node:crypto";
import {
  existsSync,
  mkdirSync,
  readFileSync,
  readlinkSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { guestKernelPid, TestHost } from "../helpers/runtime";

/**
 * hostfs= is not a boundary (shared/UML.md), so each guest runs in a sandbox
 * that holds only its own files and its declared shares. These tests try the
 * known escapes from inside a guest as root and look for a secret token.
 */
describe("guest isolation and host shares", () => {
  const host = new TestHost("iso");
  const token = `secret-${randomBytes(8).toString("hex")}`;
  const secretDir = `${host.dir}/secret`;
  const roShare = `${host.dir}/ro-share`;
  const rwShare = `${host.dir}/rw-share`;

  beforeAll(async () => {
    mkdirSync(secretDir, { recursive: true });
    writeFileSync(`${secretDir}/token.txt`, token);
    mkdirSync(roShare, { recursive: true });
    writeFileSync(`${roShare}/hello.txt`, "hello-from-the-host\n");
    mkdirSync(rwShare, { recursive: true });
    // Symlinks planted in a writable share, pointing out of it.
    symlinkSync(`${secretDir}/token.txt`, `${rwShare}/to-secret`);
    symlinkSync("/etc/hostname", `${rwShare}/to-etc`);
    symlinkSync("../secret", `${rwShare}/up`);
    await host.lab(["a", "b"], {
      extra: (n) =>
        n === "a"
          ? {
              shares: [
                { name: "ro", hostPath: roShare, guestPath: "/mnt/ro" },
                { name: "rw", hostPath: rwShare, guestPath: "/mnt/rw", readOnly: false },
              ],
            }
          : {},
    });
    await host.sh("b", `echo ${token} > /root/b-private && sync`);
    // The secret also sits in b's console log and overlay now.
    await host.sh("b", `echo ${token} > /dev/console`);
  });
  afterAll(() => host.destroy());

  it("a read-only share is readable in the guest", async () => {
    expect(await host.sh("a", "cat /mnt/ro/hello.txt")).toContain("hello-from-the-host");
  });

  it("a read-only share is not writable, not even after a remount rw in the guest", async () => {
    expect((await host.rt.exec("a", "echo x > /mnt/ro/new")).exitCode).not.toBe(0);
    const remounted = await host.rt.exec("a", "mount -o remount,rw /mnt/ro; echo x > /mnt/ro/new2");
    expect(remounted.exitCode).not.toBe(0);
    expect(existsSync(`${roShare}/new`)).toBe(false);
    expect(existsSync(`${roShare}/new2`)).toBe(false);
  });

  it("a read-write share is writable and the host sees the file", async () => {
    await host.sh("a", "echo written-by-guest > /mnt/rw/out.txt");
    expect(readFileSync(`${rwShare}/out.txt`, "utf8")).toContain("written-by-guest");
  });

  it("symlinks in a share do not lead out of the sandbox", async () => {
    for (const link of ["to-secret", "to-etc", "up/token.txt"]) {
      const r = await host.rt.exec("a", `cat /mnt/rw/${link}`);
      expect(r.exitCode, link).not.toBe(0);
      expect(r.output).not.toContain(token);
    }
  });

  it("no hostfs mount, with '..' or absolute paths, reaches the host's /etc, the state folder or another guest", async () => {
    const paths = [
      "/../../../etc",
      "/..",
      "/../..",
      "/",
      `/../../..${host.stateDir}`,
      `/../../..${secretDir}`,
      `/../../..${host.stateDir}/instances/b`,
      `/../../..${host.stateDir}/disks`,
    ];
    for (const p of paths) {
      const r = await host.rt.exec(
        "a",
        `mkdir -p /mnt/x; if mount -t hostfs none /mnt/x -o ${p} 2>/dev/null; then ls -a /mnt/x; find /mnt/x \\( -path /mnt/x/proc -o -path /mnt/x/dev \\) -prune -o -type f -print | xargs grep -l ${token} 2>/dev/null; cat /mnt/x/hostname /mnt/x/passwd 2>/dev/null; umount /mnt/x; fi; true`,
        { timeoutMs: 60_000 },
      );
      expect(r.output, p).not.toContain(token);
      expect(r.output, p).not.toMatch(/root:x:0:0/); // host /etc/passwd
    }
    // Control: the same walk finds the token where the guest may read it (its own share).
    await host.sh("a", `echo ${token} > /mnt/rw/control-token`);
    const found = await host.sh(
      "a",
      `mount -t hostfs none /mnt/x -o /../../.. && find /mnt/x \\( -path /mnt/x/proc -o -path /mnt/x/dev \\) -prune -o -type f -print | xargs grep -l ${token}; umount /mnt/x`,
      60_000,
    );
    expect(found).toContain("umlfleet-shares/rw/control-token");
    rmSync(`${rwShare}/control-token`);
    // What the guest can see of the state folder: its own vm/ folder only.
    const view = await host.sh(
      "a",
      `mount -t hostfs none /mnt/x -o /../../.. && ls -a /mnt/x && ls -a /mnt/x/etc 2>&1; ls -a /mnt/x${host.stateDir} /mnt/x${host.stateDir}/instances /mnt/x${host.stateDir}/instances/a 2>&1; umount /mnt/x`,
    );
    // Control: hostfs mounts do work and reach the sandbox's root, so the
    // escapes above were really tried.
    expect(view).toContain("umlfleet-shares");
    expect(view).toContain("usr");
    expect(view).toMatch(/No such file or directory/); // no /etc in the sandbox
    expect(view).not.toMatch(/\bdisks\b/);
    expect(view).not.toMatch(/\bb\b\n/);
    expect(view).not.toContain("console.log");
    expect(view).not.toContain("instance.json");
  });

  it("the UML process runs without capabilities, with no-new-privs, in its own namespaces", () => {
    const pid = guestKernelPid(host.stateDir, "a");
    const ns = (p: number | "self", kind: string) => readlinkSync(`/proc/${p}/ns/${kind}`);
    for (const kind of ["user", "mnt", "pid", "ipc", "uts"])
      expect(ns(pid, kind), kind).not.toBe(ns("self", kind));
    // Shared on purpose: uml_mconsole's replies need it (docs/security.md).
    expect(ns(pid, "net")).toBe(ns("self", "net"));
    const status = readFileSync(`/proc/${pid}/status`, "utf8");
    expect(status).toMatch(/^CapEff:\s+0+$/m);
    expect(status).toMatch(/^CapBnd:\s+0+$/m);
    expect(status).toMatch(/^NoNewPrivs:\s+1$/m);
  });

  it("the host's /etc/hostname stays out of reach", async () => {
    const hostname = readFileSync("/etc/hostname", "utf8").trim();
    const r = await host.rt.exec("a", "mount -t hostfs none /mnt/x -o /../../../etc && cat /mnt/x/hostname");
    expect(r.exitCode).not.toBe(0);
    if (hostname.length > 3) expect(r.output).not.toContain(hostname);
  });
});
