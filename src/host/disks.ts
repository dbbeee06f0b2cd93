import {
  closeSync,
  existsSync,
  ftruncateSync,
  mkdirSync,
  openSync,
  rmSync,
  statSync,
  constants,
} from "node:fs";
import { dirname } from "node:path";
import { refuseIfInUse, UmlfleetError } from "../errors";
import type { DiskSpec } from "../spec";
import { createCowFile, cowMismatch, readCowHeader } from "../uml/cow";
import type { Images } from "./images";
import { run } from "../process";
import { claimed, refuseForeign, withOwners, type Owned } from "./owners";
import { readJson, STATE_SCHEMA_VERSION, writeJsonAsync, type StateDir } from "./state";

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

  require(name: string, field: string): DiskRecord {
    const r = this.get(name);
    if (!r || !existsSync(r.path)) {
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
    if (existing && existsSync(existing.path)) {
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
      throw e;
    }
  }

  /**
   * Check before boot that an overlay still belongs to its base: the base's
   * image holds its recorded bytes (UMLFLEET_BASE_CHANGED otherwise), and has
   * the path, size and mtime the COW header records (UML refuses the COW
   * otherwise, with a far less clear message, after boot has begun).
   */
  async verifyOverlay(r: DiskRecord, field = "/rootDisk"): Promise<void> {
    if (r.spec.kind !== "overlay") return;
    const base = this.images.require(r.spec.base!, `${field} (base of ${r.spec.name})`);
    await this.images.verify(base, `${field} (base of ${r.spec.name})`);
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
        `${field}: overlay ${JSON.stringify(r.spec.name)} does not fit base ${JSON.stringify(r.spec.base)}: ${why}`,
        { field, disk: r.spec.name, base: r.spec.base, reason: why },
      );
    }
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
