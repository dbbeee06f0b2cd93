import { execFileSync } from "node:child_process";
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { hasNetAdmin } from "../../src/host/host-link";
import { TestHost } from "../helpers/runtime";
import { keyPair, ssh } from "../helpers/ssh";

const hashOf = (password: string) =>
  execFileSync("openssl", ["passwd", "-6", "-salt", "umlfleettestsalt", password], {
    encoding: "utf8",
  }).trim();

/** The files of a folder tree that contain `needle`, with their modes. */
function filesHolding(dir: string, needle: string): { path: string; mode: number }[] {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile() && statSync(join(e.parentPath, e.name)).size < 16 << 20)
    .map((e) => join(e.parentPath, e.name))
    .filter((p) => readFileSync(p, "latin1").includes(needle))
    .map((p) => ({ path: p.slice(dir.length), mode: statSync(p).mode & 0o777 }));
}

describe("login: an account, its SSH keys and password hash, set at every boot", () => {
  const host = new TestHost("login");
  let rootKey: string;
  let aliceKey: string;
  const hash = hashOf("correct horse");

  beforeAll(async () => {
    rootKey = keyPair(host.dir, "root")[1];
    aliceKey = keyPair(host.dir, "alice")[1];
    await host.lab(["a", "b"], {
      extra: (n) => ({
        login:
          n === "a"
            ? { user: "root", sshPublicKeys: [rootKey], passwordHash: hash }
            : { user: "alice", sshPublicKeys: [aliceKey] },
      }),
    });
  });
  afterAll(() => host.destroy());

  it("root gets the hash in /etc/shadow and the key in authorized_keys, private to root", async () => {
    const out = await host.sh(
      "a",
      "grep '^root:' /etc/shadow | cut -d: -f2; cat /root/.ssh/authorized_keys; stat -c '%a %u' /root/.ssh /root/.ssh/authorized_keys",
    );
    expect(out.split("\n")).toEqual([hash, rootKey, "700 0", "600 0", ""]);
  });

  it("another user is made, with a home of its own holding its key", async () => {
    const out = await host.sh(
      "b",
      "grep '^alice:' /etc/passwd; cat /home/alice/.ssh/authorized_keys; stat -c '%U %a' /home/alice/.ssh/authorized_keys; ls /root/.ssh 2>&1 | wc -l",
    );
    expect(out).toContain("alice:x:1000:1000::/home/alice:/bin/sh");
    expect(out).toContain(aliceKey);
    expect(out).toContain("alice 600");
  });

  it("says on the console when the image has no sshd, and never shows the hash anywhere on the host", async () => {
    const console = readFileSync(host.rt.state.consoleLog("a"), "utf8");
    expect(console).toContain("this image has no /usr/sbin/sshd");
    // The host keeps it only where it needs it to boot the guest again: the
    // instance's record and its staged set-up, both readable by their owner alone.
    const holding = filesHolding(host.stateDir, hash.slice(20));
    expect(holding.filter((f) => f.path.endsWith(".log") || /console/.test(f.path))).toEqual([]);
    expect(holding.length).toBeGreaterThan(0);
    for (const f of holding) expect(f, f.path).toMatchObject({ mode: 0o600 });
  });

  it("a changed login restarts the guest in place and replaces the last one", async () => {
    const [, other] = keyPair(host.dir, "other");
    const spec = host.rt.instances.get("a")!.spec;
    const { plan } = await host.rt.updateInstance({ ...spec, login: { sshPublicKeys: [other] } });
    expect(plan.kind).toBe("restart");
    const out = await host.sh("a", "cat /root/.ssh/authorized_keys; grep '^root:' /etc/shadow | cut -d: -f2");
    // The hash set at the last boot stays in /etc/shadow (on the guest's disk) until another is given.
    expect(out.split("\n")).toEqual([other, hash, ""]);
  });

  it("a key with a line break, a clear-text password and a bad user are refused naming the field, before any side effect", async () => {
    const spec = { name: "c", rootDisk: "a-root" };
    await expect(
      host.rt.createInstance({ ...spec, login: { sshPublicKeys: [`${rootKey}\nssh-ed25519 AAAA evil`] } }),
    ).rejects.toThrow(/instance\/login\/sshPublicKeys\/0/);
    const bad = host.rt.createInstance({ ...spec, login: { passwordHash: "hunter2-in-clear" } });
    await expect(bad).rejects.toThrow(/instance\/login\/passwordHash/);
    await expect(bad).rejects.not.toThrow(/hunter2/);
    await expect(host.rt.createInstance({ ...spec, login: { user: "Root;x" } })).rejects.toThrow(
      /instance\/login\/user/,
    );
    expect(host.rt.instances.get("c")).toBeUndefined();
    expect(existsSync(join(host.stateDir, "instances", "c"))).toBe(false);
  });
});

/**
 * SSH from the host into a Debian guest with openssh-server, over a host
 * link: the key given logs in as root, another key does not. The base is
 * built once and cached (bench/debian-base.ts measures a cold build).
 */
describe.runIf(hasNetAdmin())("login over SSH into a Debian guest", () => {
  const host = new TestHost("login-ssh");
  const id = Math.floor(Math.random() * 200) + 20;
  const tap = `ufl${process.pid % 10000}${id}`.slice(0, 15);
  const subnet = `10.214.${id}`;
  let keyFile: string;
  let otherFile: string;
  const sshWith = (key: string, command: string) =>
    ssh({ key, address: `${subnet}.2`, knownHosts: join(host.dir, "known_hosts") }, command);

  beforeAll(async () => {
    const [file, pub] = keyPair(host.dir, "user");
    keyFile = file;
    otherFile = keyPair(host.dir, "intruder")[0];
    await host.rt.ensureBase({
      name: "deb-ssh",
      source: { kind: "debian", suite: "bookworm", packages: ["openssh-server"] },
    });
    await host.rt.ensureNetwork({ name: "hl", hostInterface: { name: tap, ipv4: `${subnet}.1/24` } });
    await host.rt.ensureDisk({ name: "s-root", kind: "overlay", base: "deb-ssh" });
    await host.rt.createInstance({
      name: "s",
      rootDisk: "s-root",
      memoryMiB: 128,
      nics: [{ network: "hl", ipv4: `${subnet}.2/24` }],
      login: { sshPublicKeys: [pub] },
    });
    // Ready means umlfleet's init is done, not that the guest's own services are: wait until sshd
    // listens on port 22 (0016; LISTEN is 0A) before connecting (a loaded CI run was refused once).
    await host.sh(
      "s",
      "i=0; until cat /proc/net/tcp /proc/net/tcp6 2>/dev/null | grep -q ':0016 [0-9A-F]*:0000 0A'; do i=$((i+1)); [ $i -lt 600 ] || exit 1; sleep 0.1; done",
    );
  });
  afterAll(() => host.destroy());

  it("the key given logs in as root", () => {
    const r = sshWith(keyFile, "id -u; hostname");
    expect(r.stdout.split("\n"), r.stderr).toEqual(["0", "s", ""]);
  });

  it("another key does not", () => {
    const r = sshWith(otherFile, "echo should-not-run");
    expect(r.status).toBe(255);
    expect(r.stderr).toMatch(/Permission denied/);
    expect(r.stdout).not.toContain("should-not-run");
  });

  it("the guest made its own host keys (none came with the shared base)", async () => {
    const out = await host.sh("s", "ls /etc/ssh/ssh_host_ed25519_key.pub && echo ok");
    expect(out).toContain("ok");
  });
});
