import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { readPcap, summarizeFrame } from "../../src/pcap";
import { haveCli, useExample } from "./example-harness";

/** examples/honeypot: a weak guest on a captured network, attacked from the guest beside it. */
describe.skipIf(!haveCli)("examples/honeypot", () => {
  const ex = useExample("honeypot");
  const capturePath = join(ex.dir, "honeypot.pcap");
  const ATTACKER = "10.40.0.66";
  const HONEYPOT = "10.40.0.10";
  const COMMAND = "uname -n";

  it("an attack from the attacker guest gets a root shell, and shows in the parsed capture and in the honeypot's console log", async () => {
    const r = ex.ok(ex.pulumi("up", { capturePath }));
    expect(r.outputs?.capture).toBe(capturePath);
    const loot = await ex.sh("attacker", `(echo id; echo '${COMMAND}'; sleep 2) | nc ${HONEYPOT} 23`);
    expect(loot).toContain("uid=0(root)");
    expect(loot).toContain("honeypot");

    // The capture, parsed as pcap and decoded frame by frame (the writer may lag the guests a moment).
    const toService = () =>
      readPcap(readFileSync(capturePath))
        .records.map((rec) => summarizeFrame(rec.frame))
        .filter((f) => f.protocol === "tcp" && f.src === ATTACKER && f.dst === HONEYPOT && f.dstPort === 23);
    await expect.poll(() => toService().some((f) => f.payload?.toString().includes(COMMAND))).toBe(true);
    const packets = toService();
    // The handshake's SYN (without ACK), then data with the command in it.
    expect(packets.some((f) => (f.tcpFlags! & 0x12) === 0x02)).toBe(true);
    expect(packets.map((f) => f.payload?.toString() ?? "").join("")).toContain(`id\n${COMMAND}\n`);

    const log = readFileSync(String(r.outputs?.honeypotLog), "utf8");
    expect(log).toContain(`honeypot: command: ${COMMAND}`);
  });

  it("moving the service (a new startup script) previews as a restart, and up restarts the honeypot in place", async () => {
    const next = { capturePath, port: 2323 };
    const p = ex.ok(ex.pulumi("preview", next));
    expect(p.summary).toMatchObject({ update: 1 });
    expect(p.summary!.replace ?? 0).toBe(0);
    expect(p.stdout).toMatch(/change\s+: "restart: startup restart"/);
    const before = ex.rt().instanceStatus("honeypot").bootCount;
    await ex.sh("honeypot", "echo kept > /root/proof && sync");
    ex.ok(ex.pulumi("up", next));
    expect(ex.rt().instanceStatus("honeypot").bootCount).toBe(before + 1);
    expect(await ex.sh("honeypot", "cat /root/proof")).toContain("kept");
    expect(await ex.sh("attacker", `(echo id; sleep 2) | nc ${HONEYPOT} 2323`)).toContain("uid=0(root)");
  });

  it("destroys to a clean host (the capture file, the lab's product, stays)", () => {
    ex.destroyClean();
    expect(readPcap(readFileSync(capturePath)).records.length).toBeGreaterThan(0);
  });
});
