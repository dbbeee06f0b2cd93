import { createHash } from "node:crypto";
import { execFileSync } from "node:child_process";
import {
  copyFileSync,
  cpSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { closeRemotes, driverFor } from "../../provider/driver-factory";
import * as impl from "../../provider/impl";
import { processesMentioning } from "../helpers/runtime";
import { hostsUnsupported, makeHosts, type HostLab, type NsHost } from "../helpers/hosts";

const ROOT = resolve(__dirname, "..", "..");

/** The Host resource and resources on a target host, through the provider's functions (no Pulumi CLI). */
describe.skipIf(hostsUnsupported() !== undefined)("Host resource over ssh", () => {
  let lab: HostLab;
  // Host 1 is complete; host 2 has no UML kernel; host 3 has no umlfleet-agent on PATH.
  beforeAll(() => {
    lab = makeHosts(3, (i) => (i === 2 ? { kernel: false } : i === 3 ? { agent: false } : {}));
  });
  afterAll(async () => {
    await closeRemotes();
    lab?.teardown();
  });
  const ssh = (h: NsHost, extra: Record<string, unknown> = {}) => ({
    host: h.address,
    user: h.user,
    privateKey: lab.privateKey,
    hostKey: h.hostKey,
    ...extra,
  });
  /** This process's key folders (other runs on the machine have their own: each records its owner). */
  const keyFiles = () =>
    readdirSync(tmpdir()).filter((f) => {
      if (!f.startsWith("umlfleet-key-")) return false;
      try {
        return (
          (JSON.parse(readFileSync(join(tmpdir(), f, "owner"), "utf8")) as { pid: number }).pid ===
          process.pid
        );
      } catch {
        return false;
      }
    });
  /** The error's text, checked to hold no key material. */
  const failure = async (p: Promise<unknown>): Promise<string> => {
    const e = await p.then(
      () => undefined,
      (x: unknown) => x,
    );
    expect(e, "expected a failure").toBeInstanceOf(Error);
    const text = `${(e as Error).message} ${JSON.stringify(e)}`;
    expect(text).not.toContain("PRIVATE KEY");
    expect(text).not.toContain(lab.privateKey.split("\n")[1]);
    return (e as Error).message;
  };

  it("reports a complete host's facts, its version the provider's (and sweeps key folders of dead providers)", async () => {
    // What a provider killed outright leaves: its key folder, its owner dead.
    const stale = join(tmpdir(), "umlfleet-key-stale");
    mkdirSync(stale, { recursive: true, mode: 0o700 });
    writeFileSync(join(stale, "owner"), JSON.stringify({ pid: 2 ** 22 + 1, startTicks: 1 }));
    writeFileSync(join(stale, "key"), "not a key", { mode: 0o600 });
    const { id, outs } = await impl.create("host", { ssh: ssh(lab.hosts[0]) });
    const h = lab.hosts[0];
    expect(id).toBe(`ssh://${h.user}@${h.address}:22`);
    expect(outs).toMatchObject({
      hostId: id,
      stateDir: h.stateDir,
      version: impl.PROVIDER_VERSION,
      userNamespaces: true,
      shmExec: true,
      bubblewrap: "/usr/bin/bwrap",
    });
    expect(outs.cores).toBeGreaterThan(0);
    expect(outs.memoryMiB).toBeGreaterThan(100);
    expect(outs.freeDiskMiB).toBeGreaterThan(0);
    expect(String(outs.vde2)).toContain("vde_switch");
    expect(typeof outs.netTun).toBe("boolean");
    const kernels = outs.kernels as { path: string; version: string; sha256: string }[];
    expect(kernels[0].path).toBe(join(lab.dir, "linux"));
    expect(kernels[0].sha256).toMatch(/^[0-9a-f]{64}$/);
    expect(existsSync(stale)).toBe(false);
    // Refresh reads the same.
    const again = await impl.read("host", id, outs);
    expect(again.props?.version).toBe(impl.PROVIDER_VERSION);
    // A resource on it (naming the state folder the Host reported) uses the Host's connection:
    // one ssh master to the host, not a second for the folder named (each costs a connect and an agent start).
    await driverFor({ host: { hostId: id, ssh: ssh(h) }, stateDir: outs.stateDir }).inventory();
    const masters = execFileSync("ps", ["-eo", "args"], { encoding: "utf8" })
      .split("\n")
      .filter((l) => l.startsWith("ssh -M ") && l.endsWith(` ${h.address}`));
    expect(masters).toHaveLength(1);
  });

  it("describes the local host when a Host names no ssh", async () => {
    const { id, outs } = await impl.create("host", {});
    expect(id).toBe("local");
    expect(outs).toMatchObject({ hostId: "local", version: impl.PROVIDER_VERSION, userNamespaces: true });
    expect(outs.cores).toBeGreaterThan(0);
  });

  it("updates, never replaces, a network across hosts whose hosts got a new key", async () => {
    const hosts = lab.hosts
      .slice(0, 2)
      .map((h) => ({ hostId: h.address, stateDir: h.stateDir, ...{ ssh: ssh(h) } }));
    const rotated = hosts.map((h) => ({
      ...h,
      ssh: { ...h.ssh, privateKey: "-----BEGIN OPENSSH PRIVATE KEY-----\nnew" },
    }));
    const d = await impl.diff("network", "lan", { name: "lan", hosts }, { name: "lan", hosts: rotated });
    expect(d.replaces).toEqual([]);
    expect(d.changes).toBe(true);
    const moved = [hosts[1], hosts[0]];
    expect(
      (await impl.diff("network", "lan", { name: "lan", hosts }, { name: "lan", hosts: moved })).replaces,
    ).toEqual(["hosts"]);
  });

  it("refuses bad inputs in check, naming the field, never quoting a key", async () => {
    const { failures } = await impl.check(
      "host",
      {},
      {
        ssh: { host: "-oProxyCommand=x", privateKey: "not a key", port: 70000 },
      },
    );
    const text = failures.map((f) => f.reason).join("\n");
    expect(text).toContain("host/ssh/host");
    expect(text).toContain("host/ssh/port");
    expect(text).toContain("host/ssh/privateKey");
    expect(text).not.toContain("not a key");
  });

  it("fails with one error listing what a host lacks, and the command that installs it", async () => {
    const msg = await failure(impl.create("host", { ssh: ssh(lab.hosts[1]) }));
    expect(msg).toContain("UMLFLEET_HOST_UNSUITABLE");
    expect(msg).toContain("uml-kernel");
    expect(msg).toMatch(/Fix on the host: .*(apt-get install -y|UMLFLEET_KERNEL)/);
  });

  it("checks a Host already in the stack, reached the same way, by connecting and its version only (in its diff)", async () => {
    const reasons = async (olds: object, news: object) =>
      (await impl.check("host", olds, news)).failures.map((f) => f.reason).join("\n");
    // Host 2 lacks a UML kernel: a new Host there is probed and fails its check.
    const h2 = { ssh: ssh(lab.hosts[1]) };
    expect(await reasons({}, h2)).toContain("UMLFLEET_HOST_UNSUITABLE");
    // As a Host made before (the same ssh in olds), its check begins the connection and its diff
    // waits for it and the version, on a fresh connection as in a new provider process: no change,
    // no failure. Refresh probes it and finds what it lacks.
    await closeRemotes();
    expect(await reasons(h2, h2)).toBe("");
    expect(await impl.diff("host", "h2", h2, h2)).toMatchObject({ changes: false });
    expect(await failure(impl.read("host", "h2", h2))).toContain("lacks what umlfleet needs: uml-kernel");
    // Reached otherwise (any change to ssh): probed again.
    await closeRemotes();
    expect(await reasons(h2, { ssh: ssh(lab.hosts[1], { connectTimeoutMs: 20_000 }) })).toContain(
      "UMLFLEET_HOST_UNSUITABLE",
    );
    // Unchanged, yet the host no longer serves umlfleet (host 3 has no agent): its diff fails,
    // with the code (a diff failure fails the preview as a check failure does).
    await closeRemotes();
    const h3 = { ssh: ssh(lab.hosts[2]) };
    expect(await reasons(h3, h3)).toBe("");
    expect(await failure(impl.diff("host", "h3", h3, h3))).toContain("UMLFLEET_AGENT_MISSING");
    // Its key changed since (host 1 answers with another key than the one pinned): the same.
    await closeRemotes();
    const rekeyed = { ssh: ssh(lab.hosts[0], { hostKey: lab.hosts[1].hostKey }) };
    expect(await reasons(rekeyed, rekeyed)).toBe("");
    expect(await failure(impl.diff("host", "h1", rekeyed, rekeyed))).toContain("UMLFLEET_HOST_KEY_MISMATCH");
  });

  it("fails clearly on a host without umlfleet, a wrong host key, a wrong user, another version", async () => {
    expect(await failure(impl.create("host", { ssh: ssh(lab.hosts[2]) }))).toContain(
      "UMLFLEET_AGENT_MISSING",
    );
    const wrongKey = ssh(lab.hosts[0], { hostKey: lab.hosts[1].hostKey });
    expect(await failure(impl.create("host", { ssh: wrongKey }))).toContain("UMLFLEET_HOST_KEY_MISMATCH");
    const wrongUser = ssh(lab.hosts[0], { user: lab.hosts[1].user });
    expect(await failure(impl.create("host", { ssh: wrongUser }))).toContain("UMLFLEET_HOST_AUTH_FAILED");

    // Another umlfleet version on the host: a copy of this package that says so.
    const other = join(lab.dir, "other");
    mkdirSync(other);
    for (const d of ["bin", "dist", "schema"]) cpSync(join(ROOT, d), join(other, d), { recursive: true });
    symlinkSync(join(ROOT, "node_modules"), join(other, "node_modules"));
    const pkg = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")) as { version: string };
    writeFileSync(join(other, "package.json"), JSON.stringify({ ...pkg, version: "0.0.1-other" }));
    const msg = await failure(
      impl.create("host", {
        ssh: ssh(lab.hosts[0], { agentCommand: [join(other, "bin", "umlfleet-agent")] }),
      }),
    );
    expect(msg).toContain("UMLFLEET_VERSION_MISMATCH");
    expect(msg).toContain("0.0.1-other");
    expect(msg).toContain(impl.PROVIDER_VERSION);
  });

  it("makes a network, a base, a disk and a guest on the target host, and removes them all", async () => {
    const h = lab.hosts[0];
    const host = { hostId: `ssh://${h.user}@${h.address}:22`, ssh: ssh(h) };
    const on = async (kind: impl.Kind, news: Record<string, unknown>) => {
      const { inputs, failures } = await impl.check(kind, {}, { ...news, host, stateDir: h.stateDir });
      expect(failures).toEqual([]);
      return impl.create(kind, inputs);
    };
    const net = await on("network", { name: "lan" });
    expect(String(net.outs.switchDir)).toContain(h.stateDir);
    const base = await on("base", { name: "bb", source: { kind: "busybox", sizeMiB: 32 } });
    const disk = await on("disk", {
      name: "g-root",
      kind: "overlay",
      base: "bb",
      baseImageSha: base.outs.imageSha,
    });
    const inst = await on("instance", {
      name: "g",
      rootDisk: "g-root",
      rootDiskId: disk.outs.diskId,
      kernel: join(lab.dir, "linux"),
      nics: [{ network: "lan", ipv4: "10.0.0.1/24" }],
    });
    expect(inst.outs.state).toBe("running");
    // It runs there, as the host's user.
    const mine = execFileSync("pgrep", ["-a", "-U", String(h.uid)], { encoding: "utf8" });
    expect(mine).toContain(`${h.stateDir}/instances/g/`);
    for (const [kind, r] of [
      ["instance", inst],
      ["disk", disk],
      ["base", base],
      ["network", net],
    ] as const)
      await impl.remove(kind, r.id, { ...r.outs });
    // Nothing of the guest or switch is left (the agent's own session may still be up).
    expect(processesMentioning(h.stateDir).filter((p) => !/umlfleet-agent|ssh /.test(p))).toEqual([]);
    const left = h.ssh(
      `test ! -d ${h.stateDir} || { cd ${h.stateDir} && for d in instances networks disks bases switches; do test ! -d $d || ls -A $d; done; }`,
    );
    expect(left.split("\n").filter((l) => l && !l.endsWith(":"))).toEqual([]);
  });

  it("builds the same base on two hosts to the same bytes (one recipe, one sha256)", async () => {
    const made = [];
    for (const h of lab.hosts.slice(0, 2)) {
      const host = { hostId: `ssh://${h.user}@${h.address}:22`, ssh: ssh(h) };
      const spec = {
        name: "rb",
        source: { kind: "busybox", sizeMiB: 32, files: [{ path: "/etc/motd", content: "hi\n" }] },
      };
      const { inputs } = await impl.check("base", {}, { ...spec, host, stateDir: h.stateDir });
      made.push(await impl.create("base", inputs));
    }
    expect(made[0].outs.imageSha).toMatch(/^[0-9a-f]{64}$/);
    expect(made[1].outs.imageSha).toBe(made[0].outs.imageSha);
    for (const r of made) await impl.remove("base", r.id, { ...r.outs });
  });

  it("sends a kernel that lives on the provider's machine to a host by content, once, and removes it with the Kernel", async () => {
    const h = lab.hosts[1]; // the host without a kernel of its own
    const host = { hostId: `ssh://${h.user}@${h.address}:22`, ssh: ssh(h) };
    const local = join(lab.dir, "provider-only");
    mkdirSync(local, { mode: 0o700 }); // the host's user cannot read it
    copyFileSync(join(lab.dir, "linux"), join(local, "linux"));
    const sha = createHash("sha256")
      .update(readFileSync(join(local, "linux")))
      .digest("hex");
    const { inputs, failures } = await impl.check(
      "kernel",
      {},
      { path: join(local, "linux"), upload: true, host, stateDir: h.stateDir },
    );
    expect(failures).toEqual([]);
    const k = await impl.create("kernel", inputs);
    expect(k.outs.sha256).toBe(sha);
    expect(k.outs.bootPath).toBe(join(h.stateDir, "uploads", sha));
    const mtime = h.ssh(`stat -c %Y ${String(k.outs.bootPath)}`);
    await impl.update("kernel", k.id, k.outs, inputs); // there already: not sent again
    expect(h.ssh(`stat -c %Y ${String(k.outs.bootPath)}`)).toBe(mtime);
    await impl.remove("kernel", k.id, { ...k.outs });
    expect(h.ssh(`test -e ${String(k.outs.bootPath)} && echo there || echo gone`).trim()).toBe("gone");
    // upload on something that is no file is refused before any step.
    const bad = await impl.check("network", {}, { name: "n", upload: true, host, stateDir: h.stateDir });
    expect(bad.failures.map((f) => f.reason).join()).toContain("network/upload");
  });

  it("removes the key files when the clients close", async () => {
    await closeRemotes();
    expect(keyFiles()).toEqual([]);
    expect(existsSync(lab.privateKeyPath)).toBe(true);
  });
});
