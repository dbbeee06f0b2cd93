/**
 * The classic pcap file format (libpcap 2.4, microsecond timestamps, little
 * endian, Ethernet link type), as capture files are written (capture-writer.ts)
 * and read by tcpdump, Wireshark and tests. Pure: no IO.
 */

const MAGIC_US = 0xa1b2c3d4;
const LINKTYPE_ETHERNET = 1;
/** Records are whole frames: a snapshot length that says so. */
export const PCAP_SNAPLEN = 262144;

/** The 24-byte global header. */
export function pcapHeader(): Buffer {
  const b = Buffer.alloc(24);
  b.writeUInt32LE(MAGIC_US, 0);
  b.writeUInt16LE(2, 4);
  b.writeUInt16LE(4, 6);
  b.writeInt32LE(0, 8); // thiszone
  b.writeUInt32LE(0, 12); // sigfigs
  b.writeUInt32LE(PCAP_SNAPLEN, 16);
  b.writeUInt32LE(LINKTYPE_ETHERNET, 20);
  return b;
}

/** One record: a 16-byte header (time, captured and original length) and the frame. */
export function pcapRecord(timeUs: bigint, frame: Buffer): Buffer {
  const b = Buffer.alloc(16 + frame.length);
  b.writeUInt32LE(Number(timeUs / 1_000_000n), 0);
  b.writeUInt32LE(Number(timeUs % 1_000_000n), 4);
  b.writeUInt32LE(frame.length, 8);
  b.writeUInt32LE(frame.length, 12);
  frame.copy(b, 16);
  return b;
}

/** Is this the start of a pcap file this module writes (microsecond, little endian)? */
export const isPcap = (head: Buffer) => head.length >= 4 && head.readUInt32LE(0) === MAGIC_US;

export interface PcapFile {
  snaplen: number;
  linkType: number;
  records: { timeUs: bigint; originalLength: number; frame: Buffer }[];
}

/** Parse a whole pcap file (either byte order, microsecond or nanosecond). Throws on a malformed one. */
export function readPcap(data: Buffer): PcapFile {
  if (data.length < 24) throw new Error(`pcap: ${data.length} bytes, shorter than a header`);
  const magicLE = data.readUInt32LE(0);
  const le = magicLE === 0xa1b2c3d4 || magicLE === 0xa1b23c4d;
  const be = data.readUInt32BE(0) === 0xa1b2c3d4 || data.readUInt32BE(0) === 0xa1b23c4d;
  if (!le && !be) throw new Error(`pcap: bad magic 0x${magicLE.toString(16)}`);
  const u32 = (at: number) => (le ? data.readUInt32LE(at) : data.readUInt32BE(at));
  const nano = (le ? magicLE : data.readUInt32BE(0)) === 0xa1b23c4d;
  const file: PcapFile = { snaplen: u32(16), linkType: u32(20), records: [] };
  let at = 24;
  while (at < data.length) {
    if (data.length - at < 16) throw new Error(`pcap: a record header cut short at byte ${at}`);
    const caplen = u32(at + 8);
    if (data.length - at - 16 < caplen)
      throw new Error(`pcap: a record of ${caplen} bytes cut short at byte ${at}`);
    const sub = BigInt(u32(at + 4));
    file.records.push({
      timeUs: BigInt(u32(at)) * 1_000_000n + (nano ? sub / 1000n : sub),
      originalLength: u32(at + 12),
      frame: data.subarray(at + 16, at + 16 + caplen),
    });
    at += 16 + caplen;
  }
  return file;
}

/** What a test or a lab wants from an Ethernet frame: addresses and ports of IPv4 TCP/UDP/ICMP. */
export interface FrameSummary {
  etherType: number;
  src?: string;
  dst?: string;
  protocol?: "tcp" | "udp" | "icmp" | number;
  srcPort?: number;
  dstPort?: number;
  /** TCP flags byte (SYN 0x02, ACK 0x10, PSH 0x08, FIN 0x01). */
  tcpFlags?: number;
  /** The transport payload (TCP/UDP data, or the ICMP message). */
  payload?: Buffer;
}

/** Decode an Ethernet II frame carrying IPv4 (one 802.1Q tag is skipped). */
export function summarizeFrame(frame: Buffer): FrameSummary {
  if (frame.length < 14) return { etherType: -1 };
  let off = 12;
  let etherType = frame.readUInt16BE(off);
  if (etherType === 0x8100 && frame.length >= 18) {
    off += 4;
    etherType = frame.readUInt16BE(off);
  }
  const ip = off + 2;
  if (etherType !== 0x0800 || frame.length < ip + 20) return { etherType };
  const ihl = (frame[ip]! & 0x0f) * 4;
  const total = Math.min(frame.readUInt16BE(ip + 2), frame.length - ip);
  const proto = frame[ip + 9]!;
  const addr = (at: number) => [...frame.subarray(at, at + 4)].join(".");
  const out: FrameSummary = {
    etherType,
    src: addr(ip + 12),
    dst: addr(ip + 16),
    protocol: proto === 6 ? "tcp" : proto === 17 ? "udp" : proto === 1 ? "icmp" : proto,
  };
  const l4 = ip + ihl;
  const end = ip + total;
  if (proto === 6 && end >= l4 + 20) {
    const dataOff = (frame[l4 + 12]! >> 4) * 4;
    Object.assign(out, {
      srcPort: frame.readUInt16BE(l4),
      dstPort: frame.readUInt16BE(l4 + 2),
      tcpFlags: frame[l4 + 13]!,
      payload: frame.subarray(Math.min(l4 + dataOff, end), end),
    });
  } else if (proto === 17 && end >= l4 + 8) {
    Object.assign(out, {
      srcPort: frame.readUInt16BE(l4),
      dstPort: frame.readUInt16BE(l4 + 2),
      payload: frame.subarray(l4 + 8, end),
    });
  } else if (proto === 1) out.payload = frame.subarray(l4, end);
  return out;
}
