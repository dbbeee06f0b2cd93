import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import {
  chmodSync,
  copyFileSync,
  createReadStream,
  existsSync,
  lutimesSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
  constants,
} from "node:fs";
import { dirname, join } from "node:path";
import { refuseIfInUse, UmlfleetError } from "../errors";
import type { BaseSpec } from "../spec";
import { GUEST_INIT } from "../uml/argv";
import { run } from "./process";
import { readJson, STATE_SCHEMA_VERSION, writeJson, type StateDir } from "./state";

export interface BaseRecord {
  schemaVersion: number;
  spec: BaseSpec;
  /** sha256 of spec + umlfleet's guest files: equal recipes are built once. */
  recipeHash: string;
  /** sha256 of the image bytes; the image is images/<imageSha>.img. */
  imageSha: string;
  imagePath: string;
  sizeBytes: number;
}

const GUEST_DIR = join(__dirname, "guest");
const BUSYBOX = "/bin/busybox";

export function sha256File(file: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const h = createHash("sha256");
    createReadStream(file)
      .on("data", (d) => h.update(d))
      .on("end", () => resolve(h.digest("hex")))
      .on("error", reject);
  });
}

function recipeHash(spec: BaseSpec): string {
  const h = createHash("sha256").update(JSON.stringify(spec));
  if (spec.source.kind !== "image") {
    h.update(readFileSync(join(guestDir(), "init")));
    h.update(String(statSync(BUSYBOX).size));
  }
  return h.digest("hex");
}

/** src/host/guest in a checkout, or next to dist/src/host in a build. */
function guestDir(): string {
  if (existsSync(join(GUEST_DIR, "init"))) return GUEST_DIR;
  // dist/src/host -> src/host/guest
  return join(__dirname, "..", "..", "..", "src", "host", "guest");
}

/** A deterministic UUID from a hash, so the same recipe yields the same image bytes. */
const uuidFrom = (hex: string) =>
  `${hex.slice(0, 8)}-${hex.slice(8, 12)}-4${hex.slice(13, 16)}-8${hex.slice(17, 20)}-${hex.slice(20, 32)}`;

/** Root filesystems: built or imported once, content-addressed, read-only. */
export class Images {
  constructor(private readonly state: StateDir) {}

  get(name: string): BaseRecord | undefined {
    return readJson<BaseRecord>(this.state.baseRecord(name));
  }

  require(name: string, field = "/base"): BaseRecord {
    const r = this.get(name);
    if (!r || !existsSync(r.imagePath)) {
      throw new UmlfleetError("UMLFLEET_NOT_FOUND", `${field}: base ${JSON.stringify(name)} does not exist`, {
        field,
        value: name,
      });
    }
    return r;
  }

  /** Build or import the base; a no-op when a base of that name and recipe exists. */
  async ensure(spec: BaseSpec, opts: { timeoutMs?: number } = {}): Promise<BaseRecord> {
    const recipe = recipeHash(spec);
    const existing = this.get(spec.name);
    if (existing && existsSync(existing.imagePath)) {
      if (existing.recipeHash === recipe) return existing;
      throw new UmlfleetError(
        "UMLFLEET_CONFLICT",
        `base ${JSON.stringify(spec.name)} exists with another source; remove it first (its overlays would lose their backing)`,
        { name: spec.name },
      );
    }
    if (spec.source.kind !== "busybox") {
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
    mkdirSync(this.state.images(), { recursive: true, mode: 0o700 });
    const work = mkdtempSync(join(this.state.images(), ".build-"));
    try {
      const img = join(work, "image");
      if (spec.source.kind === "image") {
        copyFileSync(spec.source.path, img, constants.COPYFILE_FICLONE);
      } else {
        const root = join(work, "root");
        if (spec.source.kind === "directory") {
          await run("cp", ["-a", "--", `${spec.source.path}/.`, root], {
            timeoutMs: opts.timeoutMs ?? 600_000,
          });
        } else {
          stageBusyboxRoot(root, spec.source.files ?? []);
        }
        injectGuestFiles(root);
        normalizeTimes(root);
        const sizeMiB = spec.source.sizeMiB ?? (spec.source.kind === "busybox" ? 64 : 512);
        const uuid = uuidFrom(recipe);
        await run(
          "mke2fs",
          [
            "-q",
            "-F",
            "-t",
            "ext4",
            "-d",
            root,
            "-L",
            spec.name.slice(0, 16),
            "-U",
            uuid,
            "-E",
            `hash_seed=${uuid},root_owner=0:0`,
            img,
            `${sizeMiB}M`,
          ],
          { timeoutMs: opts.timeoutMs ?? 600_000, env: { ...process.env, E2FSPROGS_FAKE_TIME: "1" } },
        );
      }
      const sha = await sha256File(img);
      const target = this.state.image(sha);
      if (existsSync(target)) rmSync(img);
      else {
        chmodSync(img, 0o444);
        renameSync(img, target);
      }
      const record: BaseRecord = {
        schemaVersion: STATE_SCHEMA_VERSION,
        spec,
        recipeHash: recipe,
        imageSha: sha,
        imagePath: target,
        sizeBytes: statSync(target).size,
      };
      writeJson(this.state.baseRecord(spec.name), record);
      return record;
    } finally {
      rmSync(work, { recursive: true, force: true });
    }
  }

  /** Remove the base record, and its image when no other base shares it. */
  remove(name: string, usedBy: string[]): void {
    const r = this.get(name);
    if (!r) return;
    refuseIfInUse("base", name, usedBy, "disks");
    rmSync(this.state.baseRecord(name), { force: true });
    const shared = this.state.list("bases").some((b) => this.get(b)?.imageSha === r.imageSha);
    if (!shared) rmSync(r.imagePath, { force: true });
  }
}

function stageBusyboxRoot(root: string, files: { path: string; content: string; mode?: number }[]): void {
  for (const d of [
    "bin",
    "sbin",
    "usr/bin",
    "usr/sbin",
    "proc",
    "sys",
    "dev",
    "tmp",
    "run",
    "etc",
    "root",
    "mnt",
    "var/log",
  ]) {
    mkdirSync(join(root, d), { recursive: true });
  }
  copyFileSync(BUSYBOX, join(root, "bin/busybox"));
  // `busybox --list-full` names each applet's usual path (bin/sh, sbin/ip, ...).
  chmodSync(join(root, "bin/busybox"), 0o755);
  for (const applet of busyboxApplets()) {
    const target = join(root, applet);
    if (applet === "bin/busybox" || existsSync(target)) continue;
    mkdirSync(dirname(target), { recursive: true });
    const depth = applet.split("/").length - 1;
    symlinkSync(`${"../".repeat(depth)}bin/busybox`, target);
  }
  writeFileSync(join(root, "etc/passwd"), "root:x:0:0:root:/root:/bin/sh\n");
  writeFileSync(join(root, "etc/group"), "root:x:0:\n");
  writeFileSync(join(root, "etc/hosts"), "127.0.0.1 localhost\n");
  for (const f of files) {
    const target = join(root, f.path);
    mkdirSync(dirname(target), { recursive: true });
    writeFileSync(target, f.content, { mode: f.mode ?? 0o644 });
    chmodSync(target, f.mode ?? 0o644);
  }
}

let appletCache: string[] | undefined;
function busyboxApplets(): string[] {
  if (!appletCache) {
    appletCache = execFileSync(BUSYBOX, ["--list-full"], { encoding: "utf8" })
      .split("\n")
      .map((l) => l.trim())
      .filter((l) => /^[a-z/]+[a-z0-9_.[-]*$/.test(l) && !l.includes(".."));
  }
  return appletCache;
}

/** umlfleet's init and a busybox it can rely on, in /umlfleet of any built base. */
function injectGuestFiles(root: string): void {
  const dir = join(root, "umlfleet");
  mkdirSync(dir, { recursive: true });
  copyFileSync(BUSYBOX, join(dir, "busybox"));
  chmodSync(join(dir, "busybox"), 0o755);
  // Applets as a fallback for trees without their own tools (on PATH last).
  mkdirSync(join(dir, "bin"), { recursive: true });
  for (const applet of new Set(busyboxApplets().map((a) => a.split("/").pop()!))) {
    if (applet !== "busybox") symlinkSync("../busybox", join(dir, "bin", applet));
  }
  copyFileSync(join(guestDir(), "init"), join(root, GUEST_INIT.slice(1)));
  chmodSync(join(root, GUEST_INIT.slice(1)), 0o755);
}

/** Fixed timestamps, so equal recipes give equal bytes. */
function normalizeTimes(dir: string): void {
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) normalizeTimes(p);
    lutimesSync(p, 1, 1);
  }
  lutimesSync(dir, 1, 1);
}
