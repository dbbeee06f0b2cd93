import { isIPv4, isIPv6 } from "node:net";

/**
 * IPv4 and IPv6 addresses and networks as numbers, for the checks a schema
 * cannot make: is a gateway or a route's next hop inside the subnet of the
 * NIC it leaves by. Pure: no IO.
 */
export interface IpAddress {
  family: 4 | 6;
  /** The address as an unsigned 32- or 128-bit number. */
  value: bigint;
}
export interface IpNetwork extends IpAddress {
  prefix: number;
}

const bits = (family: 4 | 6) => (family === 4 ? 32 : 128);

/** An address ("10.0.0.1", "fd00::1"), or undefined when it is not one. */
export function parseAddress(text: string): IpAddress | undefined {
  if (isIPv4(text)) {
    return { family: 4, value: text.split(".").reduce((v, part) => (v << 8n) | BigInt(Number(part)), 0n) };
  }
  if (!isIPv6(text)) return undefined;
  // An embedded IPv4 tail ("::ffff:10.0.0.1") is two groups.
  let t = text.toLowerCase();
  const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(t);
  if (v4) {
    const n = parseAddress(v4[1]!)!.value;
    t = `${t.slice(0, v4.index)}${(n >> 16n).toString(16)}:${(n & 0xffffn).toString(16)}`;
  }
  const [head = "", tail] = t.split("::");
  const groups = (s: string) => (s === "" ? [] : s.split(":"));
  const h = groups(head);
  const tl = tail === undefined ? [] : groups(tail);
  const all = tail === undefined ? h : [...h, ...Array<string>(8 - h.length - tl.length).fill("0"), ...tl];
  return { family: 6, value: all.reduce((v, g) => (v << 16n) | BigInt(parseInt(g, 16)), 0n) };
}

/** "10.0.1.1/24" -> the address with its prefix; undefined when it is not one. */
export function parseCidr(text: string): IpNetwork | undefined {
  const slash = text.lastIndexOf("/");
  if (slash < 0) return undefined;
  const a = parseAddress(text.slice(0, slash));
  const prefixText = text.slice(slash + 1);
  if (!a || !/^\d{1,3}$/.test(prefixText)) return undefined;
  const prefix = Number(prefixText);
  return prefix <= bits(a.family) ? { ...a, prefix } : undefined;
}

/** Does `addr` lie in the subnet of `net` (same family, same leading `prefix` bits)? */
export function inSubnet(addr: IpAddress, net: IpNetwork): boolean {
  if (addr.family !== net.family) return false;
  const shift = BigInt(bits(net.family) - net.prefix);
  return addr.value >> shift === net.value >> shift;
}

/** IPv6 link-local (fe80::/10): on every IPv6 link, so a next hop there needs no subnet. */
export function isLinkLocal6(addr: IpAddress): boolean {
  return addr.family === 6 && addr.value >> 118n === 0x3fan;
}
