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

  it("destroys to a clean host (the capture file, the lab's product, stays)", () => {
    ex.destroyClean();
    expect(readPcap(readFileSync(capturePath)).records.length).toBeGreaterThan(0);
  });
});
