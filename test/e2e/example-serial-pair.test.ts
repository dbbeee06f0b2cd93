import { describe, expect, it } from "vitest";
import { haveCli, useExample } from "./example-harness";

/** examples/serial-pair: a login over a null-modem cable, no network at all. */
describe.skipIf(!haveCli)("examples/serial-pair", () => {
  const ex = useExample("serial-pair");

  it("the terminal logs in to the console server over the serial line, and a command's output comes back", async () => {
    ex.ok(ex.pulumi("up"));
    for (const m of ["console-server", "terminal"])
      expect(await ex.sh(m, "ls /sys/class/net")).not.toMatch(/eth|vec/);
    const session = await ex.sh(
      "terminal",
      `serial-login /dev/ttyS1 root serialpass 'echo "I am $(uname -n), answer=$((6 * 7))"'`,
      60_000,
    );
    expect(session).toMatch(/login:/);
    expect(session).toMatch(/Password:/);
    expect(session).toContain("I am console-server, answer=42");
  });

  it("a wrong password gets no shell", async () => {
    const r = await ex.rt().exec("terminal", "serial-login /dev/ttyS1 root wrong 'echo should-not-run'", {
      timeoutMs: 60_000,
    });
    expect(r.exitCode).not.toBe(0);
    expect(r.output).not.toContain("should-not-run");
    expect(r.output).toContain("Login incorrect");
  });

  it("destroys to a clean host", () => ex.destroyClean());
});
