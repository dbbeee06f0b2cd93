import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import {
  chmodSync,
  constants,
  copyFileSync,
  existsSync,
  lutimesSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { dirname, join } from "node:path";
import { run } from "../process";
import type { BaseSpec } from "../spec";
import { GUEST_INIT } from "../uml/argv";

/**
 * How a base's image is made from its recipe: a busybox tree, a directory
 * tree or an imported image file, with umlfleet's init, as ext4 built by
 * mke2fs -d without root. Reproducible: the same recipe gives the same bytes
 * (fixed times, UUID and hash seed from the recipe, ctimes reset), which is
 * what lets a damaged image be restored and a base be built alike on any host.
 */
const GUEST_DIR = join(__dirname, "guest");
const BUSYBOX = "/bin/busybox";

/** sha256 of the spec and of umlfleet's guest files: equal recipes are built once, and alike. */
export function recipeHash(spec: BaseSpec): string {
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

/** Build the image of `spec` into `img`, using `work` for the staged tree. */
export async function buildImage(
  spec: BaseSpec,
  recipe: string,
  work: string,
  img: string,
  opts: { timeoutMs?: number; signal?: AbortSignal },
): Promise<void> {
  if (spec.source.kind === "image") {
    copyFileSync(spec.source.path, img, constants.COPYFILE_FICLONE);
  } else {
    const root = join(work, "root");
    if (spec.source.kind === "directory") {
      await run("cp", ["-a", "--", `${spec.source.path}/.`, root], {
        timeoutMs: opts.timeoutMs ?? 600_000,
        signal: opts.signal,
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
      {
        timeoutMs: opts.timeoutMs ?? 600_000,
        env: { ...process.env, E2FSPROGS_FAKE_TIME: "1" },
        signal: opts.signal,
      },
    );
    await fixCtimes(img, root, opts.timeoutMs ?? 600_000, opts.signal);
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

/**
 * mke2fs -d copies each file's ctime (whole seconds), which no tool can set:
 * two builds of one recipe a second apart gave different bytes (measured).
 * One debugfs pass sets every staged path's ctime to the fixed time the
 * other timestamps have, and its owner to root, so equal recipes give equal
 * bytes on any host, whoever builds them.
 */
async function fixCtimes(img: string, root: string, timeoutMs: number, signal?: AbortSignal): Promise<void> {
  const paths = ["/"];
  const walk = (dir: string, rel: string) => {
    for (const e of readdirSync(dir, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : 1))) {
      const p = `${rel}/${e.name}`;
      paths.push(p);
      if (e.isDirectory()) walk(join(dir, e.name), p);
    }
  };
  walk(root, "");
  // Paths come from our own staging tree; debugfs reads one command per line.
  // Owner 0:0 too: mke2fs -d copies the staging user's uid and gid, so the
  // same recipe built by two users (two target hosts) gave different bytes (measured).
  const commands = paths
    .map((p) =>
      ["ctime 19700101000001", "uid 0", "gid 0"].map((f) => `set_inode_field "${p}" ${f}\n`).join(""),
    )
    .join("");
  // E2FSPROGS_FAKE_TIME: debugfs would stamp the superblock with the time of writing.
  await run("debugfs", ["-w", "-f", "-", img], {
    timeoutMs,
    input: commands,
    env: { ...process.env, E2FSPROGS_FAKE_TIME: "1" },
    signal,
  });
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
