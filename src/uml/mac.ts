import { createHash } from "node:crypto";

/**
 * A deterministic, locally administered unicast MAC for NIC `index` of an
 * instance on a network, so a lab gets the same addresses on every `up`.
 * Prefix 52:54 as QEMU/libvirt use; the rest from sha256 of the names.
 */
export function deterministicMac(instance: string, index: number, network: string): string {
  const h = createHash("sha256").update(`${instance}\0${index}\0${network}`).digest();
  const bytes = [0x52, 0x54, h[0]!, h[1]!, h[2]!, h[3]!];
  return bytes.map((b) => b.toString(16).padStart(2, "0")).join(":");
}
