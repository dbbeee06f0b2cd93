import { describe, expect, it } from "vitest";
import { SerialSession } from "../helpers/serial-session";
import { haveCli, useExample } from "./example-harness";

/**
 * examples/distro-lab: Debian bookworm built by mmdebstrap, at a login prompt.
 * The tree comes from umlfleet's cache after the first run on a machine (a
 * cold build is bench/debian-base.ts's to measure).
 */
describe.skipIf(!haveCli)("examples/distro-lab", () => {
  const ex = useExample("distro-lab");
  let loginLine: { in: string; out: string };

  it("boots bookworm with apt, as /etc/os-release says", async () => {
    const up = ex.ok(ex.pulumi("up"));
    loginLine = up.outputs!.loginLine as { in: string; out: string };
    const out = await ex.sh(
      "debian",
      "cat /etc/os-release; apt-get --version | head -1; dpkg -s apt | grep Status",
    );
    expect(out).toMatch(/^PRETTY_NAME="Debian GNU\/Linux 12 \(bookworm\)"$/m);
    expect(out).toMatch(/^VERSION_CODENAME=bookworm$/m);
    expect(out).toMatch(/^apt 2\.6/m);
    expect(out).toContain("Status: install ok installed");
  });

  it("Debian's login answers on the serial line: root's password from the secret logs in, a wrong one does not", async () => {
    const tty = new SerialSession(loginLine);
    try {
      tty.send("");
      await tty.expect(/login: $/);
      tty.send("root");
      await tty.expect(/Password: $/);
      tty.send("wrong");
      await tty.expect(/Login incorrect/, 60_000);
      await tty.expect(/login: $/, 60_000);
      tty.send("root");
      await tty.expect(/Password: $/);
      tty.send("distrolab");
      await tty.expect(/# $/, 60_000);
      tty.send("grep VERSION_CODENAME /etc/os-release; id -un");
      const out = await tty.expect(/^root\r?$/m);
      expect(out).toMatch(/^VERSION_CODENAME=bookworm\r?$/m);
      tty.send("exit");
      await tty.expect(/login: $/);
    } finally {
      tty.close();
    }
  });

  it("keeps the password hash out of the stack's state in clear", () => {
    const exported = JSON.stringify(ex.ok(ex.pulumi("export")).deployment);
    expect(exported).not.toContain("Xa7SfZhbkLsq9");
    expect(exported).toContain("4dabf18193072939515e22adb298388d"); // Pulumi's secret signature
  });

  it("destroys to a clean host", () => ex.destroyClean());
});
