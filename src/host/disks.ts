import {
  closeSync,
  ftruncateSync,
  lstatSync,
  mkdirSync,
  openSync,
  rmSync,
  statSync,
  constants,
} from "node:fs";
import { createHash } from "node:crypto";
import { dirname } from "node:path";
import type { DiskInfo } from "./driver";
import { refuseIfInUse, UmlfleetError } from "../errors";
import type { DiskSpec } from "../spec";
import { cowLayout, createCowFile, cowMismatch, readCowHeader } from "../uml/cow";
import type { Images } from "./images";
import { run } from "../process";
import { claimed, refuseForeign, withOwners, type Owned } from "./owners";
import { readJson, STATE_SCHEMA_VERSION, stateWriteError, writeJsonAsync, type StateDir } from "./state";

export interface DiskRecord extends Owned {
  schemaVersion: number;
  spec: DiskSpec;
  path: string;
  /** overlay: the base image path its COW header names. */
  backingPath?: string;
  /** Logical size in bytes (for an overlay: its base's size). */
  sizeBytes: number;
}

/** Block-device files: COW overlays over a base, blank disks, swap disks. */
export class Disks {
  constructor(
    private readonly state: StateDir,
    private readonly images: Images,
  ) {}

  get(name: string): DiskRecord | undefined {
    return readJson<DiskRecord>(this.state.diskRecord(name));
  }

  /** The disk as the driver reports it; a damaged file is named in `problem`. */
  info(name: string): DiskInfo | undefined {
    const r = this.get(name);
    if (!r) return undefined;
    const st = statSync(r.path, { throwIfNoEntry: false });
    const problem = this.problem(r);
    return {
      name,
      path: r.path,
      sizeBytes: r.sizeBytes,
      ...(r.backingPath ? { backingPath: r.backingPath } : {}),
      // The file's identity: a disk made again under the same name gets a new one.
      diskId: st
        ? createHash("sha256").update(`${r.path}\0${st.birthtimeMs}\0${st.ino}`).digest("hex").slice(0, 16)
        : "",
      ...(problem ? { problem } : {}),
    };
  }

  require(name: string, field: string): DiskRecord {
    const r = this.get(name);
    if (r) this.refuseDamaged(r, field);
    if (!r) {
      throw new UmlfleetError("UMLFLEET_NOT_FOUND", `${field}: disk ${JSON.stringify(name)} does not exist`, {
        field,
        value: name,
      });
    }
    return r;
  }

  /** Names of overlays bound to `base` (with their owners). */
  overlaysOf(base: string): string[];
  overlaysOf(base: string, owners: true): { name: string; owners?: string[] }[];
  overlaysOf(base: string, owners = false): string[] | { name: string; owners?: string[] }[] {
    const found = this.state.list("disks").flatMap((d) => {
      const r = this.get(d);
      return r?.spec.base === base ? [{ name: d, ...(r.owners ? { owners: r.owners } : {}) }] : [];
    });
    return owners ? found : found.map((d) => d.name);
  }

  /**
   * Create the disk; a no-op when it exists as specified. Never touches
   * existing data. Another stack's disk is refused (owners.ts).
   */
  async ensure(spec: DiskSpec, signal?: AbortSignal, owner?: string): Promise<DiskRecord> {
    const existing = this.get(spec.name);
    refuseForeign("disk", spec.name, existing, owner, "create", this.state.root);
    const owners = claimed(existing, owner);
    // A damaged disk is never silently made anew: its data is gone, and the
    // caller must say so (refresh reports it as drift; up replaces it).
    if (existing) this.refuseDamaged(existing, "/name");
    if (existing) {
      if (JSON.stringify(existing.spec) !== JSON.stringify(spec)) {
        throw new UmlfleetError(
          "UMLFLEET_CONFLICT",
          `disk ${JSON.stringify(spec.name)} exists with another spec; its data is kept: remove it first to replace it`,
          { name: spec.name, existing: existing.spec, wanted: spec },
        );
      }
      if (spec.kind === "overlay") await this.verifyOverlay(existing);
      if (JSON.stringify(owners) === JSON.stringify(existing.owners)) return existing;
      const adopted = withOwners(existing, owners);
      await writeJsonAsync(this.state.diskRecord(spec.name), adopted);
      return adopted;
    }
    const path = this.state.diskFile(spec.name);
    mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
    rmSync(path, { force: true }); // a file without a record is a crashed create
    let record: DiskRecord;
    try {
      if (spec.kind === "overlay") {
        const base = this.images.require(spec.base!, "/base");
        await this.images.verify(base); // never an overlay over bytes other than the recorded ones
        createCowFile(path, base.imagePath);
        record = {
          schemaVersion: STATE_SCHEMA_VERSION,
          spec,
          path,
          backingPath: base.imagePath,
          sizeBytes: base.sizeBytes,
          ...(owners ? { owners } : {}),
        };
      } else {
        const sizeBytes = spec.sizeMiB! * 1024 * 1024;
        const fd = openSync(
          path,
          constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW,
          0o600,
        );
        try {
          ftruncateSync(fd, sizeBytes);
        } finally {
          closeSync(fd);
        }
        if (spec.kind === "blank" && spec.format === "ext4") {
          await run("mke2fs", ["-q", "-F", "-t", "ext4", "-L", spec.name.slice(0, 16), path], {
            timeoutMs: 300_000,
            signal,
          });
        }
        record = {
          schemaVersion: STATE_SCHEMA_VERSION,
          spec,
          path,
          sizeBytes,
          ...(owners ? { owners } : {}),
        };
      }
      await writeJsonAsync(this.state.diskRecord(spec.name), record);
      return record;
    } catch (e) {
      rmSync(path, { force: true });
      throw stateWriteError(e, path);
    }
  }

  /**
   * Check before boot that an overlay still belongs to its base: the base's
   * image holds its recorded bytes (UMLFLEET_BASE_CHANGED otherwise), and has
   * the path, size and mtime the COW header records (UML refuses the COW
   * otherwise, with a far less clear message, after boot has begun).
   */
  async verifyOverlay(r: DiskRecord, field = "/rootDisk"): Promise<void> {
    this.refuseDamaged(r, field);
    if (r.spec.kind !== "overlay") return;
    // Both files named: the overlay that would boot, and the base under it.
    const where = `${field} (overlay ${r.path} of disk ${JSON.stringify(r.spec.name)})`;
    const base = this.images.require(r.spec.base!, where);
    await this.images.verify(base, where);
    const header = readCowHeader(r.path);
    const st = statSync(base.imagePath, { bigint: true });
    const why = cowMismatch(header, {
      path: base.imagePath,
      mtimeSec: Number(st.mtimeMs / 1000n),
      sizeBytes: st.size,
    });
    if (why) {
      throw new UmlfleetError(
        "UMLFLEET_BASE_MISMATCH",
        `${field}: overlay ${JSON.stringify(r.spec.name)} (${r.path}) does not fit base ${JSON.stringify(r.spec.base)} (${base.imagePath}): ${why}`,
        { field, disk: r.spec.name, file: r.path, base: r.spec.base, baseFile: base.imagePath, reason: why },
      );
    }
  }

  /**
   * What is wrong with the disk's file, judged by its size and (overlay) its
   * COW header, not its mtime: gone, not a regular file, shorter than made,
   * or a header no longer over the recorded base image. Undefined when
   * nothing is. No side effect: refresh reports it as the Disk's drift.
   */
  problem(r: DiskRecord): string | undefined {
    const st = lstatSync(r.path, { bigint: true, throwIfNoEntry: false });
    if (!st) return `disk file ${r.path} is missing: the data in it is gone`;
    if (!st.isFile()) return `disk file ${r.path} is not a regular file`;
    if (r.spec.kind !== "overlay") {
      return st.size < BigInt(r.sizeBytes)
        ? `disk file ${r.path} is truncated to ${st.size} of its ${r.sizeBytes} bytes: the data past that is gone`
        : undefined;
    }
    let header;
    try {
      header = readCowHeader(r.path);
    } catch (e) {
      return `overlay ${r.path} is damaged (${e instanceof Error ? e.message : String(e)}): the data in it is lost`;
    }
    if (header.backingPath !== r.backingPath)
      return `overlay ${r.path} names ${header.backingPath} as its base, not ${r.backingPath}`;
    const need = cowLayout(header).fileSizeBytes;
    if (st.size < need)
      return `overlay ${r.path} is truncated to ${st.size} of its ${need} bytes: the data past that is gone`;
    return undefined;
  }

  private refuseDamaged(r: DiskRecord, field: string): void {
    const why = this.problem(r);
    if (!why) return;
    throw new UmlfleetError(
      "UMLFLEET_DISK_DAMAGED",
      `${field}: ${why}; nothing boots on it. Restore the file from a copy, or replace the disk ` +
        "(`pulumi refresh` then `pulumi up` make a new, empty one)",
      { field, disk: r.spec.name, file: r.path, problem: why },
    );
  }

  remove(name: string, usedBy: string[], owner?: string): void {
    refuseForeign("disk", name, this.get(name), owner, "remove", this.state.root);
    refuseIfInUse("disk", name, usedBy, "instances");
    rmSync(this.state.diskFile(name), { force: true });
    rmSync(this.state.diskRecord(name), { force: true });
  }

  /** Bytes the disk file really occupies on the host (sparse files count only written blocks). */
  allocatedBytes(name: string): number {
    const st = statSync(this.state.diskFile(name));
    return st.blocks * 512;
  }
}
