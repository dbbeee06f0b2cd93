import { existsSync, readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { cacheRoot, ensureDebianTree } from "../../src/host/distro";
import { processesMentioning, TestHost } from "../helpers/runtime";

/**
 * A Debian bookworm minbase built by mmdebstrap (unshare mode) from the host's
 * apt mirror, booted with umlfleet's init. The tree comes from umlfleet's
 * cache when an earlier run built it (a cold build is measured in
 * bench/debian-base.ts, not here).
 */
describe("debian bases", () => {
  const host = new TestHost("debian");
  const source = { kind: "debian", suite: "bookworm" } as const;

  beforeAll(async () => {
    await host.rt.ensureBase({ name: "deb", source });
    await host.rt.ensureDisk({ name: "d-root", kind: "overlay", base: "deb" });
    await host.rt.createInstance({ name: "d", rootDisk: "d-root", memoryMiB: 128 });
  });
  afterAll(() => host.destroy());

  it("boots bookworm with apt in it", async () => {
    const out = await host.sh("d", "cat /etc/os-release; apt --version; dpkg-query -W -f '${Status}\\n' apt");
    expect(out).toMatch(/^VERSION_CODENAME=bookworm$/m);
    expect(out).toMatch(/^ID=debian$/m);
    expect(out).toMatch(/^apt 2\.\d/m);
    expect(out).toContain("install ok installed");
  });

  it("keeps the owners and modes the packages gave, though it was staged without them", async () => {
    // shadow's group is 42, su is setuid root: both come from the tar's headers.
    const out = await host.sh("d", "stat -c '%n %u %g %a' /etc/shadow /usr/bin/su /var/mail /root");
    expect(out).toContain("/etc/shadow 0 42 640");
    expect(out).toContain("/usr/bin/su 0 0 4755");
    expect(out).toContain("/var/mail 0 8 2775");
    expect(out).toContain("/root 0 0 700");
  });

  it("has no SSH host keys or build host names baked in", async () => {
    const out = await host.sh(
      "d",
      "cat /etc/hostname; wc -c </etc/resolv.conf; ls /etc/ssh 2>&1 | grep -c _key || true",
    );
    expect(out.split("\n").map((l) => l.trim())).toEqual(["debian", "0", "0", ""]);
  });

  it("shares one cached tree and one image between bases of the same source", async () => {
    const deb = host.rt.images.get("deb")!;
    const again = await host.rt.ensureBase({ name: "deb2", source });
    expect(again.imagePath).toBe(deb.imagePath);
    const cached = join(cacheRoot(), "debian");
    expect(existsSync(cached)).toBe(true);
    await host.rt.removeBase("deb2");
    expect(existsSync(deb.imagePath)).toBe(true);
  });

  it("a file under a folder that is a symbolic link in the tree is refused naming the field", async () => {
    await expect(
      host.rt.ensureBase({
        name: "bad",
        source: { ...source, files: [{ path: "/var/run/escape", content: "x" }] },
      }),
    ).rejects.toThrow(/base\/source\/files\/0\/path: \/var\/run is a symbolic link/);
    expect(existsSync("/run/escape")).toBe(false);
    expect(host.rt.images.get("bad")).toBeUndefined();
  });

  it("a cancelled cold build stops mmdebstrap and leaves no process and no partial tree", async () => {
    const cache = join(host.dir, "cold-cache");
    const build = ensureDebianTree(
      { ...source, packages: ["hello"] },
      { signal: AbortSignal.timeout(3000), env: { ...process.env, UMLFLEET_CACHE: cache } },
    );
    await expect(build).rejects.toMatchObject({ code: "UMLFLEET_CANCELLED" });
    expect(processesMentioning(cache)).toEqual([]);
    expect(readdirSync(join(cache, "debian")).filter((e) => e !== "locks")).toEqual([]);
  });

  it("is 1024 MiB by default, of which the guest sees most free", async () => {
    expect(statSync(host.rt.images.get("deb")!.imagePath).size).toBe(1024 * 1024 * 1024);
    const used = Number(await host.sh("d", "df -k / | awk 'NR==2 {print $3}'"));
    expect(used).toBeGreaterThan(50 * 1024);
    expect(used).toBeLessThan(400 * 1024);
  });
});
