import { createHash } from "node:crypto";
import {
  chmodSync,
  createReadStream,
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  renameSync,
  rmSync,
  statSync,
  utimesSync,
} from "node:fs";
import { join } from "node:path";
import { refuseIfInUse, UmlfleetError } from "../errors";
import type { BaseSpec } from "../spec";
import { buildImage, recipeHash } from "./base-build";
import { claimed, withOwners, type Owned } from "./owners";
import { readJson, STATE_SCHEMA_VERSION, writeJson, type StateDir } from "./state";

/**
 * What an image file looked like when its content was last hashed: a content
 * check is needed again only when one of these differs. A byte changed in
 * place with the mtime put back still moves the ctime, which no user can set;
 * a touch or chmod moves it too, and the re-hash then tells content from metadata.
 */
interface ImageStamp {
  sha256: string;
  dev: string;
  ino: string;
  sizeBytes: string;
  mtimeNs: string;
  ctimeNs: string;
  mode: number;
}

/** A base image's state against its recorded content. */
export type ImageIntegrity =
  | { ok: true }
  | { ok: false; file: string; problem: "missing" | "changed"; actualSha?: string; message: string };

export interface BaseRecord extends Owned {
  schemaVersion: number;
  spec: BaseSpec;
  /** sha256 of spec + umlfleet's guest files: equal recipes are built once. */
  recipeHash: string;
  /** sha256 of the image bytes; the image is images/<imageSha>.img. */
  imageSha: string;
  imagePath: string;
  sizeBytes: number;
}

export function sha256File(file: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const h = createHash("sha256");
    createReadStream(file)
      .on("data", (d) => h.update(d))
      .on("end", () => resolve(h.digest("hex")))
      .on("error", reject);
  });
}

/** Root filesystems: built or imported once, content-addressed, read-only. */
export class Images {
  constructor(private readonly state: StateDir) {}

  get(name: string): BaseRecord | undefined {
    return readJson<BaseRecord>(this.state.baseRecord(name));
  }

  /** The base's record (its image may be gone or changed: verify() tells). */
  require(name: string, field = "/base"): BaseRecord {
    const r = this.get(name);
    if (!r) {
      throw new UmlfleetError("UMLFLEET_NOT_FOUND", `${field}: base ${JSON.stringify(name)} does not exist`, {
        field,
        value: name,
      });
    }
    return r;
  }

  /**
   * Is the base's image still the bytes recorded when it was made? Cheap when
   * nothing about the file changed (one lstat); otherwise the file is hashed.
   * Content intact but mtime or mode moved (a touch, a chmod): both are put
   * back, since overlays record the mtime (UML refuses a COW whose backing
   * file's mtime changed). Changes nothing when the content differs.
   */
  async integrity(r: BaseRecord): Promise<ImageIntegrity> {
    return this.imageIntegrity(r.imageSha, r.imagePath, `base ${JSON.stringify(r.spec.name)}`);
  }

  private async imageIntegrity(sha: string, file: string, label: string): Promise<ImageIntegrity> {
    const st = lstatSync(file, { bigint: true, throwIfNoEntry: false });
    const recorded = `sha256 ${sha.slice(0, 16)}... recorded`;
    if (!st?.isFile())
      return {
        ok: false,
        file,
        problem: "missing",
        message: `${label}: its image ${file} is missing (${recorded})`,
      };
    const stamp = readJson<ImageStamp>(this.stampFile(sha));
    if (stamp && sameFile(stamp, st) && stamp.sha256 === sha) return { ok: true };
    const actual = await sha256File(file);
    if (actual !== sha)
      return {
        ok: false,
        file,
        problem: "changed",
        actualSha: actual,
        message: `${label}: its image ${file} changed (content sha256 ${actual.slice(0, 16)}..., ${recorded})`,
      };
    // The same bytes: put back what the overlays and the sandbox rely on.
    if (stamp && stamp.mtimeNs !== String(st.mtimeNs)) setMtimeNs(file, BigInt(stamp.mtimeNs));
    if ((Number(st.mode) & 0o777) !== 0o444) chmodSync(file, 0o444);
    this.writeStamp(sha, file);
    return { ok: true };
  }

  /**
   * Throw UMLFLEET_BASE_CHANGED, naming the file and how to recover, unless
   * the base's image holds its recorded bytes. Called before anything boots
   * over a base or is made over it.
   */
  async verify(r: BaseRecord, field = "/base"): Promise<void> {
    const i = await this.integrity(r);
    if (i.ok) return;
    throw new UmlfleetError(
      "UMLFLEET_BASE_CHANGED",
      `${field}: ${i.message}; nothing boots over it and no overlay is made over it. To recover: restore the file ` +
        `(\`pulumi refresh\` then \`pulumi up\` rebuild it from its recipe when that gives the recorded bytes), ` +
        `or replace the base in the program (its overlays and instances are made anew, their data lost)`,
      {
        field,
        base: r.spec.name,
        file: i.file,
        problem: i.problem,
        recordedSha: r.imageSha,
        actualSha: i.actualSha,
      },
    );
  }

  private stampFile(sha: string): string {
    return this.state.image(sha).replace(/\.img$/, ".stamp");
  }

  private writeStamp(sha: string, file: string): void {
    const st = lstatSync(file, { bigint: true });
    const stamp: ImageStamp = {
      sha256: sha,
      dev: String(st.dev),
      ino: String(st.ino),
      sizeBytes: String(st.size),
      mtimeNs: String(st.mtimeNs),
      ctimeNs: String(st.ctimeNs),
      mode: Number(st.mode) & 0o7777,
    };
    writeJson(this.stampFile(sha), stamp);
  }

  /**
   * Build or import the base; a no-op when a base of that name and recipe
   * exists. Bases are shared: `owner` is added to its owners (owners.ts).
   */
  async ensure(
    spec: BaseSpec,
    opts: { timeoutMs?: number; overlays?: string[]; signal?: AbortSignal; owner?: string } = {},
  ): Promise<BaseRecord> {
    const r = await this.ensureImage(spec, opts);
    const owners = claimed(r, opts.owner);
    if (JSON.stringify(owners) === JSON.stringify(r.owners)) return r;
    const record = withOwners(r, owners);
    writeJson(this.state.baseRecord(spec.name), record);
    return record;
  }

  private async ensureImage(
    spec: BaseSpec,
    opts: { timeoutMs?: number; overlays?: string[]; signal?: AbortSignal; owner?: string },
  ): Promise<BaseRecord> {
    const recipe = recipeHash(spec);
    const existing = this.get(spec.name);
    let damaged: Exclude<ImageIntegrity, { ok: true }> | undefined;
    // Built from this same spec by another umlfleet (whose guest files, such as
    // its init, differed): the image is kept, since overlays are bound to its
    // bytes; guests keep that init until the base is replaced.
    if (
      existing &&
      existing.recipeHash !== recipe &&
      canonical(existing.spec) === canonical(spec) &&
      (await this.integrity(existing)).ok
    )
      return existing;
    if (existing && existing.recipeHash !== recipe && existsSync(existing.imagePath)) {
      // Another stack's: a base is shared only with the same source.
      const others = (existing.owners ?? []).filter((o) => o !== opts.owner);
      throw new UmlfleetError(
        "UMLFLEET_CONFLICT",
        others.length
          ? `base ${JSON.stringify(spec.name)} exists with another source, owned by stack ${others.map((o) => JSON.stringify(o)).join(", ")}; bases are shared only with the same source: give this one another name, or another stateDir (${this.state.root})`
          : `base ${JSON.stringify(spec.name)} exists with another source; remove it first (its overlays would lose their backing)`,
        { name: spec.name, ...(others.length ? { owners: existing.owners } : {}) },
      );
    }
    if (existing && existing.recipeHash === recipe) {
      const i = await this.integrity(existing);
      if (i.ok) return existing;
      // Missing or changed: rebuilt from its recipe below, and put back only
      // as the recorded bytes while overlays are bound to them.
      damaged = i;
    }
    if (spec.source.kind === "image" || spec.source.kind === "directory") {
      const p = spec.source.path;
      const st = statSync(p, { throwIfNoEntry: false });
      const wantDir = spec.source.kind === "directory";
      if (!st || (wantDir ? !st.isDirectory() : !st.isFile())) {
        throw new UmlfleetError(
          "UMLFLEET_NOT_FOUND",
          `/source/path: ${JSON.stringify(p)} is not an existing ${wantDir ? "directory" : "file"}`,
          { field: "/source/path", value: p },
        );
      }
    }
    // Another base of this state folder built from the same Debian source:
    // its image is this one's (images carry no base name), so no second build.
    if (spec.source.kind === "debian" && !damaged) {
      for (const other of this.state.list("bases")) {
        const r = other === spec.name ? undefined : this.get(other);
        if (r?.recipeHash !== recipe || !(await this.integrity(r)).ok) continue;
        // Its image, not its owners: this base is its own stacks'.
        const record: BaseRecord = withOwners({ ...r, spec }, this.get(spec.name)?.owners);
        writeJson(this.state.baseRecord(spec.name), record);
        return record;
      }
    }
    mkdirSync(this.state.images(), { recursive: true, mode: 0o700 });
    const work = mkdtempSync(join(this.state.images(), ".build-"));
    try {
      const img = join(work, "image");
      await buildImage(spec, recipe, work, img, opts);
      const sha = await sha256File(img);
      if (damaged && existing && sha !== existing.imageSha && (opts.overlays ?? []).length > 0) {
        throw new UmlfleetError(
          "UMLFLEET_BASE_CHANGED",
          `${damaged.message}, and its recipe now gives other bytes (sha256 ${sha.slice(0, 16)}...), so it cannot be ` +
            `restored; overlays ${opts.overlays!.join(", ")} were made over the recorded bytes. Restore the file, or ` +
            `replace the base in the program (its overlays and instances are made anew, their data lost)`,
          { base: spec.name, file: damaged.file, recordedSha: existing.imageSha, rebuiltSha: sha },
        );
      }
      const target = this.state.image(sha);
      await this.install(img, sha, target);
      const record: BaseRecord = {
        schemaVersion: STATE_SCHEMA_VERSION,
        spec,
        recipeHash: recipe,
        imageSha: sha,
        imagePath: target,
        sizeBytes: statSync(target).size,
        ...(existing?.owners ? { owners: existing.owners } : {}),
      };
      writeJson(this.state.baseRecord(spec.name), record);
      return record;
    } finally {
      rmSync(work, { recursive: true, force: true });
    }
  }

  /**
   * Put built bytes at their content address. An intact image already there
   * (another base with the same bytes) is kept. One that is missing or
   * changed is replaced, with the mtime it was recorded with: overlays record
   * their backing file's mtime, and UML refuses one that moved.
   */
  private async install(img: string, sha: string, target: string): Promise<void> {
    const there = existsSync(target) ? await this.imageIntegrity(sha, target, "image") : undefined;
    if (there?.ok) {
      rmSync(img);
      return;
    }
    const stamp = readJson<ImageStamp>(this.stampFile(sha));
    if (stamp) setMtimeNs(img, BigInt(stamp.mtimeNs));
    chmodSync(img, 0o444);
    renameSync(img, target);
    this.writeStamp(sha, target);
  }

  /**
   * `owner` lets go of the base (owners.ts). A base some stack owns is
   * removed only when no owner is left and no other stack's overlay is over
   * it: those stacks keep it, as its owners; overlays that no stack owns
   * (made by a tool or an older umlfleet) keep it too, as a base of no one's.
   * A base of no one's is removed as before, unless overlays are over it
   * (UMLFLEET_IN_USE); `allOwners` (destroyAll) treats every base so.
   * Removing it removes the record, and its image when no other base shares it.
   */
  remove(
    name: string,
    overlays: { name: string; owners?: string[] }[],
    owner?: string,
    allOwners = false,
  ): void {
    const r = this.get(name);
    if (!r) return;
    if (!allOwners && r.owners?.length) {
      const left = r.owners.filter((o) => o !== owner);
      const users = overlays.flatMap((d) => d.owners ?? []).filter((o) => o !== owner);
      const keepers = [...new Set([...left, ...users])];
      const unowned = overlays.filter((d) => !d.owners?.length);
      // The remover's own overlays still there: its remove fails below, as before.
      const keptByUnowned = overlays.length > 0 && unowned.length === overlays.length;
      if (keepers.length > 0 || keptByUnowned) {
        if (JSON.stringify(keepers) !== JSON.stringify(r.owners))
          writeJson(this.state.baseRecord(name), withOwners(r, keepers.length ? keepers : undefined));
        return;
      }
    }
    refuseIfInUse(
      "base",
      name,
      overlays.map((d) => d.name),
      "disks",
    );
    rmSync(this.state.baseRecord(name), { force: true });
    const shared = this.state.list("bases").some((b) => this.get(b)?.imageSha === r.imageSha);
    if (!shared) {
      rmSync(r.imagePath, { force: true });
      rmSync(this.stampFile(r.imageSha), { force: true });
    }
  }
}

/** Does the file still look as it did when stamped (same inode, size, times and mode)? */
function sameFile(stamp: ImageStamp, st: import("node:fs").BigIntStats): boolean {
  return (
    stamp.dev === String(st.dev) &&
    stamp.ino === String(st.ino) &&
    stamp.sizeBytes === String(st.size) &&
    stamp.mtimeNs === String(st.mtimeNs) &&
    stamp.ctimeNs === String(st.ctimeNs) &&
    stamp.mode === (Number(st.mode) & 0o7777)
  );
}

/** Set a file's atime and mtime to `ns` nanoseconds since the epoch (whole seconds are what COW headers keep). */
function setMtimeNs(file: string, ns: bigint): void {
  const secs = Number(ns / 1000n) / 1e6;
  utimesSync(file, secs, secs);
}

/** JSON with object keys sorted: equal specs compare equal whatever order their fields were written in. */
function canonical(v: unknown): string {
  return JSON.stringify(v, (_k, x: unknown) =>
    x && typeof x === "object" && !Array.isArray(x)
      ? Object.fromEntries(Object.entries(x as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : 1)))
      : x,
  );
}
