import { randomBytes } from "node:crypto";
import { mkdirSync, readdirSync, readFileSync, readlinkSync, statSync, writeFileSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { inPidNamespaceOf, TestHost } from "../helpers/runtime";

/** What each fd of `pid` names, as the host sees it ("" for one closed meanwhile). */
function fdTargets(pid: number): string[] {
  try {
    return readdirSync(`/proc/${pid}/fd`).map((fd) => {
      try {
        return readlinkSync(`/proc/${pid}/fd/${fd}`);
      } catch {
        return "";
      }
    });
  } catch {
    return [];
  }
}

/** A shell line mounting the guest's whole sandbox (hostfs with `..`, measured to reach its root) at /mnt/x. */
const MOUNT_ROOT =
  "mkdir -p /mnt/x; grep -q ' /mnt/x ' /proc/mounts || mount -t hostfs none /mnt/x -o /../../..";
const MOUNT_PROC =
  "mkdir -p /mnt/p; grep -q ' /mnt/p ' /proc/mounts || mount -t hostfs none /mnt/p -o /../../../proc";
/** Files under the sandbox's root but its /proc and /dev (busybox grep has no --exclude-dir). */
const FILES = "find /mnt/x \\( -path /mnt/x/proc -o -path /mnt/x/dev \\) -prune -o -type f -print";

/**
 * Routes from inside a guest as root towards what is not its own, beyond
 * isolation.test.ts (hostfs `..`, symlinks) and guest-attacks.test.ts (links
 * where the host acts): the whole sandbox as the guest sees it, /proc of its
 * UML process, its RAM file, the fds its process holds, hard links, signals.
 * Each probe has a control where access IS allowed, so a probe that silently
 * stopped working fails.
 */
describe("isolation routes: what a guest's root reaches through its own process", () => {
  const host = new TestHost("routes");
  const token = `route-secret-${randomBytes(8).toString("hex")}`;
  const secretDir = `${host.dir}/secret`;
  const rwShare = `${host.dir}/rw`;
  const kernelPid = (n: string) => host.rt.instances.get(n)!.sandbox!.pid;

  beforeAll(async () => {
    mkdirSync(secretDir, { recursive: true });
    writeFileSync(`${secretDir}/token.txt`, token);
    mkdirSync(rwShare, { recursive: true });
    writeFileSync(`${rwShare}/mine.txt`, "the share's own file\n");
    await host.lab(["a", "b"], {
      extra: (n) =>
        n === "a"
          ? { shares: [{ name: "rw", hostPath: rwShare, guestPath: "/mnt/rw", readOnly: false }] }
          : {},
    });
    // The secret in b's overlay, its console log and its RAM.
    await host.sh(
      "b",
      `echo ${token} > /root/b-private && sync && echo ${token} > /dev/console && echo ${token} > /tmp/in-ram`,
    );
  });
  afterAll(() => host.destroy());

  it("the whole sandbox, listed and grepped from the guest, holds none of b's files, the state folder's or the host's", async () => {
    // Control: the token in a's own share is found by the same walk.
    await host.sh("a", `echo ${token} > /mnt/rw/control-token`);
    const walk = await host.sh(
      "a",
      `${MOUNT_ROOT}; find /mnt/x \\( -path /mnt/x/proc -o -path /mnt/x/dev \\) -prune -o -print 2>/dev/null; echo GREP; ${FILES} | xargs grep -l -e ${token} 2>/dev/null; true`,
      120_000,
    );
    const [list, hits] = walk.split("GREP\n") as [string, string];
    const paths = list
      .split("\n")
      .filter(Boolean)
      .map((p) => p.slice("/mnt/x".length) || "/");
    expect(hits.trim().split("\n")).toEqual([`/mnt/x/umlfleet-shares/rw/control-token`]);
    // Its own vm/ folder (disks, mconsole socket folder) is there; nothing else of the state folder is.
    const vmA = host.rt.state.vmDir("a");
    expect(paths).toContain(vmA);
    expect(paths.some((p) => p.startsWith(`${vmA}/`))).toBe(true);
    const state = paths.filter((p) => p.startsWith(`${host.stateDir}/`));
    for (const p of state) {
      const allowed = [
        vmA,
        `${host.rt.state.instanceDir("a")}/links`,
        `${host.stateDir}/images`,
        `${host.stateDir}/switches`,
      ]; // its NICs' plug folder, its base (read-only), its switch folder
      const ok = allowed.some((d) => p === d || p.startsWith(`${d}/`) || `${d}/`.startsWith(`${p}/`)); // or their ancestors (mount points)
      expect(ok, p).toBe(true);
    }
    for (const p of paths) {
      expect(p).not.toMatch(/instances\/b\b/);
      expect(p).not.toMatch(/console\.log|instance\.json|\/fifo\/|sandbox\.json|\/disks\//);
      expect(p.startsWith("/etc") || p.startsWith("/home") || p.startsWith(secretDir), p).toBe(false);
    }
  });

  it("b's mconsole folder is not in a's sandbox; a's own is", async () => {
    const out = await host.sh(
      "a",
      `${MOUNT_ROOT}; ls -a /mnt/x${host.rt.state.vmDir("a")}/ 2>&1; echo ---; ls -a /mnt/x${host.rt.state.vmDir("b")}/ 2>&1; true`,
    );
    const [own, theirs] = out.split("---\n") as [string, string];
    expect(own).toMatch(/\bu\b/); // UML's umid folder, holding its mconsole socket
    expect(theirs).toMatch(/No such file or directory/);
  });

  it("/proc of its UML process through hostfs: only its own sandbox's processes, and read-only (no write to its kernel process's memory)", async () => {
    const pid = kernelPid("a");
    const before = readFileSync(`/proc/${pid}/cmdline`, "utf8");
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const argStart = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[45]); // field 48: arg_start
    const out = await host.sh(
      "a",
      `${MOUNT_PROC}; echo COUNT=$(ls /mnt/p | grep -cE '^[0-9]+$'); ls /mnt/p/1/; for p in $(ls /mnt/p | grep -E '^[0-9]+$'); do readlink /mnt/p/$p/exe; done; echo MEM; printf XYZ | dd of=/mnt/p/1/mem bs=1 seek=${argStart + 1} conv=notrunc 2>&1; echo comm > /mnt/p/1/comm 2>&1; true`,
    );
    const [listing, mem] = out.split("MEM\n") as [string, string];
    const lines = listing.split("\n").filter(Boolean);
    const count = Number(/^COUNT=(\d+)$/m.exec(listing)?.[1]);
    // Control: the route is real (its process's /proc folder, with mem, is listed).
    expect(lines).toContain("mem");
    expect(count, out).toBeGreaterThan(0);
    // Its processes come and go as the guest runs commands (a host process per guest address space): compare with the host's.
    expect(inPidNamespaceOf(pid).length).toBeGreaterThan(0);
    expect(count).toBeLessThan(readdirSync("/proc").filter((d) => /^\d+$/.test(d)).length);
    // Every process it sees is its own kernel (or a helper of it): no host shell, node or another guest.
    const exes = lines.filter((l) => l.startsWith("/"));
    expect(exes.length).toBeGreaterThan(0);
    for (const exe of exes) expect(exe).toMatch(/\/linux$|vde_plug$|uml_mconsole$/);
    expect(mem).toMatch(/Read-only file system/);
    expect(readFileSync(`/proc/${pid}/cmdline`, "utf8")).toBe(before);
  });

  it("its RAM file lives in a /tmp of its own: what it writes there reaches no other guest's, and b's RAM file is not there", async () => {
    const ram = (n: string) => fdTargets(kernelPid(n)).filter((t) => /^\/tmp\/.*\(deleted\)$/.test(t));
    expect(ram("a").length).toBeGreaterThan(0); // the route exists: UML's memory file, unlinked, in /tmp
    expect(ram("b").length).toBeGreaterThan(0);
    const marker = `marker-${randomBytes(4).toString("hex")}`;
    const out = await host.sh(
      "a",
      `${MOUNT_ROOT}; ls -a /mnt/x/tmp; echo x > /mnt/x/tmp/${marker}; ls /mnt/x/tmp`,
    );
    expect(out).toContain(marker);
    const tmpOf = (n: string) => `/proc/${kernelPid(n)}/root/tmp`;
    // Control: the host sees a's marker in a's /tmp ...
    expect(readdirSync(tmpOf("a"))).toContain(marker);
    // ... and not in b's, which is another file system.
    expect(readdirSync(tmpOf("b"))).not.toContain(marker);
    expect(statSync(tmpOf("a")).dev).not.toBe(statSync(tmpOf("b")).dev);
    expect(statSync(tmpOf("a")).dev).not.toBe(statSync("/tmp").dev);
  });

  it("the fds its processes hold name only its own files; through /proc/1/fd nothing reopens (a plain symlink to the guest)", async () => {
    const own = [host.rt.state.instanceDir("a"), `${host.stateDir}/images/`, "/tmp/", "/dev/"];
    // "/" and "/proc": the sandbox's own root and proc.
    const isOwn = (t: string) => t === "/" || t === "/proc" || own.some((o) => t.startsWith(o));
    const pids = inPidNamespaceOf(kernelPid("a"));
    for (const p of pids)
      for (const t of fdTargets(p).filter((x) => x.startsWith("/")))
        expect(isOwn(t), `pid ${p}: ${t}`).toBe(true);
    // No share fd is left open in the sandbox (bwrap bound and closed them): a ro share cannot be reopened rw.
    for (const p of pids) for (const t of fdTargets(p)) expect(t).not.toContain(rwShare);
    const fds = readdirSync(`/proc/${kernelPid("a")}/fd`);
    const baseFd = fds.find((fd) => {
      try {
        return readlinkSync(`/proc/${kernelPid("a")}/fd/${fd}`).startsWith(`${host.stateDir}/images/`);
      } catch {
        return false;
      }
    });
    expect(baseFd).toBeDefined();
    // hostfs hands /proc/1/fd/N over as a symlink, resolved in the guest's own tree: no magic-link reopen of the host file.
    const out = await host.sh(
      "a",
      `${MOUNT_PROC}; readlink /mnt/p/1/fd/${baseFd}; head -c 512 /mnt/p/1/fd/${baseFd} 2>&1 | wc -c; printf x | dd of=/mnt/p/1/fd/${baseFd} bs=1 seek=100 conv=notrunc 2>&1; true`,
    );
    expect(out).toContain(`${host.stateDir}/images/`); // control: the route is there, the link names the base
    expect(out).not.toMatch(/^512$/m);
    expect(out).toMatch(/No such file or directory/);
  });

  it("hard links: made inside its share, never to a file outside it (another mount), so no host file enters the share", async () => {
    const out = await host.sh(
      "a",
      `${MOUNT_ROOT}; ln /mnt/rw/mine.txt /mnt/rw/mine-again && echo LINKED; ` +
        `ln /mnt/x${host.rt.state.vmDir("a")}/disk-a-root /mnt/rw/stolen-disk 2>&1; ` +
        `ln /mnt/x$(ls -d /mnt/x${host.stateDir}/images/* | head -1 | sed 's#^/mnt/x##') /mnt/rw/stolen-base 2>&1; ` +
        `ln /mnt/x/usr/bin/vde_plug /mnt/rw/stolen-bin 2>&1; true`,
    );
    expect(out).toContain("LINKED"); // control: hard links work where allowed
    expect(statSync(`${rwShare}/mine.txt`).nlink).toBe(2);
    const names = readdirSync(rwShare);
    for (const n of ["stolen-disk", "stolen-base", "stolen-bin"]) expect(names).not.toContain(n);
    expect(out).toMatch(/cross-device|Invalid cross-device link|not permitted/i);
  });

  it("signals: the guest's kill acts in its own kernel only; b's host processes are not reachable and stay up", async () => {
    const bPid = kernelPid("b");
    const out = await host.sh(
      "a",
      `kill -0 1 && echo OWN-INIT; kill -9 ${bPid} 2>&1; kill -9 ${bPid + 1} 2>&1; true`,
    );
    expect(out).toContain("OWN-INIT"); // control: kill works in the guest
    expect(() => process.kill(bPid, 0)).not.toThrow();
    expect(await host.sh("b", "echo alive")).toContain("alive");
  });
});

const uidOf = (path: string) => statSync(path).uid;

/**
 * Guests of two host users (runAs, root only): each sees its shared switch
 * folder (libvdeplug needs it), but the folder is sticky, so neither can
 * remove or replace the other's socket there.
 */
describe.runIf(process.getuid?.() === 0)("isolation routes: guests of two host users on one network", () => {
  const host = new TestHost("routes-uids");

  beforeAll(async () => {
    await host.lab(["c", "d"], { extra: () => ({ runAs: { pool: true } }) });
  });
  afterAll(() => host.destroy());

  it("neither can remove or replace the other's socket in their switch folder; each can its own files there", async () => {
    const dUid = host.rt.instances.get("d")!.hostIds!.uid;
    const cUid = host.rt.instances.get("c")!.hostIds!.uid;
    expect(dUid).not.toBe(cUid);
    const switchDir = host.rt.networks.get("lan")!.switchDir;
    const ofD = readdirSync(switchDir).filter((f) => uidOf(`${switchDir}/${f}`) === dUid);
    expect(ofD.length).toBeGreaterThan(0); // d's client socket(s)
    const victim = ofD[0]!;
    const out = await host.sh(
      "c",
      `${MOUNT_ROOT}; S=/mnt/x${switchDir}; echo x > $S/c-own && rm $S/c-own && echo OWN-OK; rm -f $S/${victim} 2>&1; mv $S/${victim} $S/moved 2>&1; true`,
    );
    expect(out).toContain("OWN-OK");
    expect(out).toMatch(/not permitted|Permission denied/);
    expect(readdirSync(switchDir)).toContain(victim);
    await host.sh("c", "ping -c 1 -W 5 10.0.0.2");
  });

  it("neither sees the other's vm folder or processes", async () => {
    const out = await host.sh(
      "c",
      `${MOUNT_ROOT}; ls /mnt/x${host.rt.state.vmDir("d")} 2>&1; ls /mnt/x${host.rt.state.vmDir("c")} >/dev/null && echo OWN-OK; true`,
    );
    expect(out).toContain("OWN-OK");
    expect(out).toMatch(/No such file or directory/);
  });
});
