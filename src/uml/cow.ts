import { closeSync, fstatSync, ftruncateSync, openSync, readSync, writeSync, constants } from "node:fs";
import { UmlfleetError } from "../errors";

/**
 * UML COW v3 header (arch/um/drivers/cow_user.c), packed, big-endian:
 * magic u32 @0, version u32 @4, backing mtime u32 @8, backing size u64 @12,
 * sector size u32 @20, alignment u32 @24, format u32 @28 (0 = bitmap),
 * backing path char[4096] @32. Bitmap at roundup(4128, alignment), one bit per
 * sector; data at roundup(bitmap end, alignment). UML refuses the COW when the
 * backing file's mtime or size no longer match.
 */
export const COW_MAGIC = 0x4f4f4f4d;
export const COW_VERSION = 3;
export const COW_HEADER_SIZE = 4128;
const PATH_LEN = 4096;

export interface CowHeader {
  backingMtimeSec: number;
  backingSizeBytes: bigint;
  sectorSize: number;
  alignment: number;
  backingPath: string;
}

export interface CowLayout {
  bitmapOffset: number;
  bitmapBytes: number;
  dataOffset: number;
  /** The file size UML gives a fresh COW: dataOffset + backing size (sparse). */
  fileSizeBytes: bigint;
}

const roundUp = (n: number, to: number) => Math.ceil(n / to) * to;

export function cowLayout(h: Pick<CowHeader, "backingSizeBytes" | "sectorSize" | "alignment">): CowLayout {
  const sectors = Number((h.backingSizeBytes + BigInt(h.sectorSize) - 1n) / BigInt(h.sectorSize));
  const bitmapOffset = roundUp(COW_HEADER_SIZE, h.alignment);
  const bitmapBytes = Math.ceil(sectors / 8);
  const dataOffset = roundUp(bitmapOffset + bitmapBytes, h.alignment);
  return { bitmapOffset, bitmapBytes, dataOffset, fileSizeBytes: BigInt(dataOffset) + h.backingSizeBytes };
}

export function encodeCowHeader(h: CowHeader): Buffer {
  const path = Buffer.from(h.backingPath, "utf8");
  if (path.length >= PATH_LEN) {
    throw new UmlfleetError("UMLFLEET_COW_CORRUPT", `backing path longer than ${PATH_LEN - 1} bytes`, {
      backingPath: h.backingPath,
    });
  }
  const buf = Buffer.alloc(COW_HEADER_SIZE);
  buf.writeUInt32BE(COW_MAGIC, 0);
  buf.writeUInt32BE(COW_VERSION, 4);
  buf.writeUInt32BE(h.backingMtimeSec >>> 0, 8);
  buf.writeBigUInt64BE(h.backingSizeBytes, 12);
  buf.writeUInt32BE(h.sectorSize, 20);
  buf.writeUInt32BE(h.alignment, 24);
  buf.writeUInt32BE(0, 28);
  path.copy(buf, 32);
  return buf;
}

export function decodeCowHeader(buf: Buffer, file = "<buffer>"): CowHeader {
  const bad = (why: string) =>
    new UmlfleetError("UMLFLEET_COW_CORRUPT", `${file} is not a UML COW v3 file: ${why}`, { file });
  if (buf.length < COW_HEADER_SIZE) throw bad(`only ${buf.length} bytes`);
  if (buf.readUInt32BE(0) !== COW_MAGIC) throw bad(`magic 0x${buf.readUInt32BE(0).toString(16)}`);
  if (buf.readUInt32BE(4) !== COW_VERSION) throw bad(`version ${buf.readUInt32BE(4)}`);
  const format = buf.readUInt32BE(28);
  if (format !== 0) throw bad(`format ${format}`);
  const sectorSize = buf.readUInt32BE(20);
  const alignment = buf.readUInt32BE(24);
  if (sectorSize === 0 || alignment === 0) throw bad("zero sector size or alignment");
  const pathBytes = buf.subarray(32, 32 + PATH_LEN);
  const end = pathBytes.indexOf(0);
  return {
    backingMtimeSec: buf.readUInt32BE(8),
    backingSizeBytes: buf.readBigUInt64BE(12),
    sectorSize,
    alignment,
    backingPath: pathBytes.subarray(0, end < 0 ? pathBytes.length : end).toString("utf8"),
  };
}

export function readCowHeader(file: string): CowHeader {
  const fd = openSync(file, constants.O_RDONLY | constants.O_NOFOLLOW);
  try {
    const buf = Buffer.alloc(COW_HEADER_SIZE);
    const n = readSync(fd, buf, 0, COW_HEADER_SIZE, 0);
    return decodeCowHeader(buf.subarray(0, n), file);
  } finally {
    closeSync(fd);
  }
}

/**
 * Create a fresh, sparse COW over `backingPath` exactly as UML would (same
 * header, same size), so an overlay is bound to its base before first boot.
 * Fails if `file` exists.
 */
export function createCowFile(file: string, backingPath: string): CowHeader {
  const bfd = openSync(backingPath, constants.O_RDONLY);
  let st;
  try {
    st = fstatSync(bfd, { bigint: true });
  } finally {
    closeSync(bfd);
  }
  const header: CowHeader = {
    backingMtimeSec: Number(st.mtimeMs / 1000n),
    backingSizeBytes: st.size,
    sectorSize: 512,
    alignment: 4096,
    backingPath,
  };
  const layout = cowLayout(header);
  const fd = openSync(
    file,
    constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW,
    0o600,
  );
  try {
    writeSync(fd, encodeCowHeader(header), 0, COW_HEADER_SIZE, 0);
    ftruncateSync(fd, Number(layout.fileSizeBytes));
  } finally {
    closeSync(fd);
  }
  return header;
}

/** Why `header` no longer fits the backing file as it is now, or null if it fits. */
export function cowMismatch(
  header: CowHeader,
  backing: { path: string; mtimeSec: number; sizeBytes: bigint },
): string | null {
  if (header.backingPath !== backing.path) return `it belongs to ${header.backingPath}, not ${backing.path}`;
  if (header.backingSizeBytes !== backing.sizeBytes)
    return `backing size changed from ${header.backingSizeBytes} to ${backing.sizeBytes} bytes`;
  if (header.backingMtimeSec !== backing.mtimeSec >>> 0)
    return `backing mtime changed from ${header.backingMtimeSec} to ${backing.mtimeSec}`;
  return null;
}
