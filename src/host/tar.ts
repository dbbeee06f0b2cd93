import { closeSync, openSync, readSync } from "node:fs";

/** One member of a tar archive, as its headers describe it. */
export interface TarEntry {
  /** The member's path as stored, without a leading "./" or "/" (the root is ""). */
  path: string;
  type: "file" | "hardlink" | "symlink" | "char" | "block" | "dir" | "fifo";
  uid: number;
  gid: number;
  /** Permission bits with setuid, setgid and sticky (mode & 0o7777). */
  mode: number;
  /** Symlink target, or the member a hard link points at. */
  linkTarget?: string;
}

const BLOCK = 512;
const TYPES: Record<string, TarEntry["type"]> = {
  "0": "file",
  "\0": "file",
  "7": "file",
  "1": "hardlink",
  "2": "symlink",
  "3": "char",
  "4": "block",
  "5": "dir",
  "6": "fifo",
};

/** A numeric header field: octal text, or GNU's base-256 (high bit set) for large values. */
function num(buf: Buffer, off: number, len: number): number {
  if ((buf[off]! & 0x80) !== 0) {
    let v = 0;
    for (let i = 1; i < len; i++) v = v * 256 + buf[off + i]!;
    return v;
  }
  const s = buf
    .toString("latin1", off, off + len)
    .replace(/[\0 ]+$/, "")
    .trim();
  return s ? parseInt(s, 8) : 0;
}

function str(buf: Buffer, off: number, len: number): string {
  const end = buf.indexOf(0, off);
  return buf.toString("utf8", off, end < 0 || end > off + len ? off + len : end);
}

/** "key=value" records of a pax extended header ("<len> key=value\n" each). */
function paxRecords(data: Buffer): Record<string, string> {
  const out: Record<string, string> = {};
  let i = 0;
  while (i < data.length) {
    const sp = data.indexOf(0x20, i);
    if (sp < 0) break;
    const len = parseInt(data.toString("latin1", i, sp), 10);
    if (!(len > 0)) break;
    const rec = data.toString("utf8", sp + 1, i + len - 1);
    const eq = rec.indexOf("=");
    if (eq > 0) out[rec.slice(0, eq)] = rec.slice(eq + 1);
    i += len;
  }
  return out;
}

const clean = (p: string) => p.replace(/^\.?\/+/, "").replace(/\/+$/, "");

/**
 * The members of a tar file (ustar, GNU and pax headers), read header by
 * header without extracting anything: what a tool that extracts without
 * privilege loses (owners) is recovered from here.
 */
export function readTarEntries(file: string): TarEntry[] {
  const fd = openSync(file, "r");
  const out: TarEntry[] = [];
  const header = Buffer.alloc(BLOCK);
  let pos = 0;
  let longName: string | undefined;
  let longLink: string | undefined;
  let pax: Record<string, string> = {};
  const readData = (size: number): Buffer => {
    const data = Buffer.alloc(size);
    if (size > 0 && readSync(fd, data, 0, size, pos) !== size) throw new Error(`${file}: truncated tar`);
    return data;
  };
  try {
    for (;;) {
      if (readSync(fd, header, 0, BLOCK, pos) < BLOCK) break;
      pos += BLOCK;
      if (header.every((b) => b === 0)) break;
      const size = num(header, 124, 12);
      const flag = String.fromCharCode(header[156]!);
      const dataBlocks = Math.ceil(size / BLOCK) * BLOCK;
      if (flag === "L" || flag === "K" || flag === "x" || flag === "g") {
        const data = readData(size);
        pos += dataBlocks;
        if (flag === "L") longName = str(data, 0, data.length);
        else if (flag === "K") longLink = str(data, 0, data.length);
        else if (flag === "x") pax = { ...pax, ...paxRecords(data) };
        continue;
      }
      const magic = header.toString("latin1", 257, 263);
      const prefix = magic === "ustar\0" ? str(header, 345, 155) : "";
      const name = pax.path ?? longName ?? (prefix ? `${prefix}/` : "") + str(header, 0, 100);
      const link = pax.linkpath ?? longLink ?? str(header, 157, 100);
      const type = TYPES[flag];
      if (type) {
        out.push({
          path: clean(name),
          type,
          uid: pax.uid !== undefined ? Number(pax.uid) : num(header, 108, 8),
          gid: pax.gid !== undefined ? Number(pax.gid) : num(header, 116, 8),
          mode: num(header, 100, 8) & 0o7777,
          ...(type === "symlink"
            ? { linkTarget: link }
            : type === "hardlink"
              ? { linkTarget: clean(link) }
              : {}),
        });
      }
      // Only regular files (and types we do not know) carry data blocks.
      pos += type === undefined || type === "file" ? dataBlocks : 0;
      longName = longLink = undefined;
      pax = {};
    }
  } finally {
    closeSync(fd);
  }
  return out;
}
