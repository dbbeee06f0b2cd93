import { spawnSync } from "node:child_process";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { hasNetAdmin } from "../../src/host/host-link";
import { keyPair, ssh } from "../helpers/ssh";
import { haveCli, useExample } from "./example-harness";

const USERS = ["alice", "bob", "carol"];

/** Bytes a file holds on disk (allocated blocks, not its apparent size). */
const allocated = (file: string) => statSync(file).blocks * 512;
const filesIn = (dir: string) => readdirSync(dir).filter((f) => !f.startsWith("."));

/**
 * examples/classroom: one machine per user over one Debian base, each user
 * root in their own machine over SSH through a host link, and nowhere else.
 * The host link needs CAP_NET_ADMIN (CI runs as root).
 */
describe.skipIf(!haveCli || !hasNetAdmin())("examples/classroom", () => {
  const ex = useExample("classroom");
  const id = Math.floor(Math.random() * 200) + 20;
  const subnet = `10.215.${id}`;
  const keys: Record<string, string> = {};
  const pubs: Record<string, string> = {};
  const addresses: Record<string, string> = {};
  const as = (keyOf: string, machine: string, command: string) =>
    ssh(
      { key: keys[keyOf]!, address: addresses[machine]!, knownHosts: join(ex.dir, "known_hosts") },
      command,
    );
  const asOwn = (user: string, command: string) => {
    const r = as(user, user, command);
    if (r.status !== 0) throw new Error(`${user}: ssh exited ${r.status}: ${command}\n${r.stderr}`);
    return r.stdout;
  };

  it("brings up one machine per user, and each user is root in their own over SSH", () => {
    const users = USERS.map((name) => {
      const [file, pub] = keyPair(ex.dir, name);
      keys[name] = file;
      pubs[name] = pub;
      return { name, sshPublicKey: pub };
    });
    const up = ex.ok(ex.pulumi("up", { users, tap: `ufc${process.pid % 10000}${id}`.slice(0, 15), subnet }));
    Object.assign(addresses, up.outputs!.addresses);
    for (const u of USERS) expect(asOwn(u, "id -u; hostname").split("\n")).toEqual(["0", u, ""]);
  });

  it("a user's key opens no other machine", () => {
    for (const [user, other] of [
      ["alice", "bob"],
      ["bob", "carol"],
      ["carol", "alice"],
    ] as const) {
      const r = as(user, other, "echo should-not-run");
      expect(r.status, `${user} -> ${other}`).toBe(255);
      expect(r.stderr).toMatch(/Permission denied/);
      expect(r.stdout).not.toContain("should-not-run");
    }
  });

  it("no user sees another's processes or files, however they look", () => {
    // Alice leaves a file and a running process with her name on them.
    asOwn(
      "alice",
      "echo alice-private >/root/alice-secret; cp /bin/sleep /tmp/alice-marker; (/tmp/alice-marker 600 >/dev/null 2>&1 &)",
    );
    expect(asOwn("alice", "ps -e -o comm=")).toContain("alice-marker");
    expect(asOwn("alice", "cat /root/alice-secret")).toBe("alice-private\n");
    // Bob, root in his own machine, tries: his processes, his disks, his whole
    // filesystem, and the host through hostfs (the host folder his machine may mount).
    const look = asOwn(
      "bob",
      [
        "ps -e -o comm=",
        "echo --disks; ls /dev/ | grep -E '^ubd' || true",
        "echo --find; find / -xdev -name 'alice-*' 2>/dev/null || true",
        "echo --hostfs; mkdir -p /mnt/h && mount -t hostfs none /mnt/h && (find /mnt/h 2>&1; cat /mnt/h/*/login.keys; grep -rs alice-private /mnt/h); umount /mnt/h 2>/dev/null; true",
      ].join("; "),
    );
    expect(look).not.toContain("alice-marker");
    expect(look).not.toContain("alice-secret");
    expect(look).not.toContain("alice-private");
    expect(look.split("--disks")[1]!.split("--find")[0]!.trim()).toBe("ubda");
    // The one host folder his machine can mount holds only his own set-up (his own key).
    const hostfs = look.split("--hostfs")[1]!;
    expect(hostfs).toContain(pubs.bob!);
    expect(hostfs).not.toContain(pubs.alice!);
  });

  it("on the host, each machine's kernel runs as a uid of its own, which cannot signal another's", () => {
    const rt = ex.rt();
    const kernels = USERS.map((u) => rt.instances.get(u)!.sandbox!.pid);
    const uids = kernels.map((pid) =>
      Number(/^Uid:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"))![1]),
    );
    expect(new Set(uids).size).toBe(USERS.length);
    for (const u of uids) expect(u).toBeGreaterThanOrEqual(2100000000);
    const kill = (uid: number, pid: number) =>
      spawnSync("setpriv", [`--reuid=${uid}`, `--regid=${uid}`, "--clear-groups", "kill", "-0", String(pid)])
        .status;
    expect(kill(uids[0]!, kernels[0]!)).toBe(0);
    expect(kill(uids[0]!, kernels[1]!)).not.toBe(0);
  });

  it("uses one base image plus small overlays on disk", () => {
    const images = join(ex.stateDir, "images");
    const disks = join(ex.stateDir, "disks");
    const imageFiles = filesIn(images).filter((f) => f.endsWith(".img"));
    expect(imageFiles).toHaveLength(1);
    const baseBytes = allocated(join(images, imageFiles[0]!));
    const overlays = USERS.map((u) => allocated(join(disks, `${u}-root.img`)));
    const MiB = 1024 * 1024;
    console.log(
      `classroom disk use: base ${(baseBytes / MiB).toFixed(1)} MiB, overlays ${overlays
        .map((b) => (b / MiB).toFixed(1))
        .join(", ")} MiB`,
    );
    for (const o of overlays) expect(o).toBeLessThan(64 * MiB);
    expect(baseBytes).toBeGreaterThan(100 * MiB);
    expect(overlays.reduce((a, b) => a + b, 0)).toBeLessThan(baseBytes);
  });

  it("destroys to a clean host", () => ex.destroyClean());
});
