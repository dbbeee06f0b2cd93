import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import {
  chmodSync,
  constants,
  copyFileSync,
  existsSync,
  lstatSync,
  lutimesSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { dirname, join } from "node:path";
import { InvalidSpecError, UmlfleetError } from "../errors";
import { run } from "../process";
import type { BaseSpec } from "../spec";
import { GUEST_INIT } from "../uml/argv";
import { DEBIAN_EPOCH, ensureDebianTree } from "./distro";
import { readTarEntries, type TarEntry } from "./tar";

/**
 * How a base's image is made from its recipe: a busybox tree, a directory
 * tree, a Debian tree (src/host/distro.ts) or an imported image file, with umlfleet's init, as ext4 built by
 * mke2fs -d without root. Reproducible: the same recipe gives the same bytes
 * (fixed times, UUID and hash seed from the recipe, ctimes reset), which is
 * what lets a damaged image be restored and a base be built alike on any host.
 */
const GUEST_DIR = join(__dirname, "guest");
const BUSYBOX = "/bin/busybox";

/** sha256 of the spec and of umlfleet's guest files: equal recipes are built once, and alike. */
export function recipeHash(spec: BaseSpec): string {
  // A Debian image does not carry its base's name (label and UUID come from
  // the source alone): two bases with one source share one image file.
  const h = createHash("sha256").update(JSON.stringify(spec.source.kind === "debian" ? spec.source : spec));
  if (spec.source.kind !== "image") {
    h.update(readFileSync(join(guestDir(), "init")));
    h.update(readFileSync(join(guestDir(), "fstab")));
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
    const timeoutMs = opts.timeoutMs ?? 600_000;
    let owners = new Map<string, TarEntry>();
    if (spec.source.kind === "directory") {
      await run("cp", ["-a", "--", `${spec.source.path}/.`, root], { timeoutMs, signal: opts.signal });
    } else if (spec.source.kind === "debian") {
      // The tree comes from the cache (built once per source, for any state folder).
      const tree = await ensureDebianTree(spec.source, opts);
      owners = await stageTarRoot(root, tree.tarPath, timeoutMs, opts.signal);
      writeFiles(root, spec.source.files ?? []);
    } else {
      stageBusyboxRoot(root, spec.source.files ?? []);
    }
    injectGuestFiles(root);
    const epoch = spec.source.kind === "debian" ? DEBIAN_EPOCH : 1;
    normalizeTimes(root, epoch);
    const sizeMiB = spec.source.sizeMiB ?? DEFAULT_SIZE_MIB[spec.source.kind];
    const uuid = uuidFrom(recipe);
    const label = spec.source.kind === "debian" ? `debian-${spec.source.suite}` : spec.name;
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
        label.slice(0, 16),
        "-U",
        uuid,
        "-E",
        `hash_seed=${uuid},root_owner=0:0`,
        img,
        `${sizeMiB}M`,
      ],
      { timeoutMs, env: { ...process.env, E2FSPROGS_FAKE_TIME: "1" }, signal: opts.signal },
    );
    await fixInodes(img, root, { epoch, owners, timeoutMs, signal: opts.signal });
  }
}

const DEFAULT_SIZE_MIB: Record<BaseSpec["source"]["kind"], number> = {
  busybox: 64,
  directory: 512,
  debian: 1024,
  image: 0,
};

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
  writeFiles(root, files);
}

/**
 * Files a base spec injects, written over whatever the tree holds at their
 * paths (a link there is replaced, not followed). A folder on the way that is
 * a symbolic link is refused: a Debian tree has absolute ones (/var/run ->
 * /run), which followed here would lead out of the staged tree into the host.
 */
function writeFiles(root: string, files: { path: string; content: string; mode?: number }[]): void {
  files.forEach((f, i) => {
    const parts = f.path.split("/").filter(Boolean);
    for (let n = 1; n < parts.length; n++) {
      const dir = `/${parts.slice(0, n).join("/")}`;
      if (lstatSync(join(root, dir), { throwIfNoEntry: false })?.isSymbolicLink()) {
        throw new InvalidSpecError("base", [
          {
            field: `/source/files/${i}/path`,
            value: f.path,
            message: `${dir} is a symbolic link in the tree; name the path it leads to instead`,
          },
        ]);
      }
    }
    const target = join(root, f.path);
    mkdirSync(dirname(target), { recursive: true });
    rmSync(target, { force: true });
    writeFileSync(target, f.content, { mode: f.mode ?? 0o644 });
    chmodSync(target, f.mode ?? 0o644);
  });
}

/**
 * Extract a tarball to stage a root, as whoever runs umlfleet: no owners
 * (fixInodes sets them in the image from the tar's headers), no device nodes
 * (the guest's /dev is a devtmpfs the kernel mounts), no extended attributes.
 * Returns the members by path.
 */
async function stageTarRoot(
  root: string,
  tarPath: string,
  timeoutMs: number,
  signal?: AbortSignal,
): Promise<Map<string, TarEntry>> {
  const entries = readTarEntries(tarPath);
  for (const e of entries) {
    // debugfs reads one command per line (a quoted path, `""` for a quote inside).
    if (/[\n\r]/.test(e.path))
      throw new UmlfleetError(
        "UMLFLEET_COMMAND_FAILED",
        `${tarPath}: member path ${JSON.stringify(e.path)} cannot be staged`,
        { file: tarPath },
      );
  }
  mkdirSync(root, { recursive: true });
  await run(
    "tar",
    [
      "-x",
      "-f",
      tarPath,
      "-C",
      root,
      "--no-same-owner",
      "--preserve-permissions",
      "--no-xattrs",
      "--exclude=./dev/*",
    ],
    { timeoutMs, signal },
  );
  return new Map(entries.map((e) => [e.path, e]));
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
  copyFileSync(join(guestDir(), "fstab"), join(dir, "fstab"));
  chmodSync(join(dir, "fstab"), 0o644);
}

/**
 * mke2fs -d copies each file's ctime (whole seconds), which no tool can set:
 * two builds of one recipe a second apart gave different bytes (measured).
 * It also copies owners as staged, and a tree staged without privilege is
 * owned by whoever staged it. One debugfs pass sets every path's ctime to the
 * fixed time the other timestamps have, and its owner to what the tarball
 * recorded (root for everything else), so equal recipes give equal bytes on
 * any host, built by root or not.
 */
async function fixInodes(
  img: string,
  root: string,
  o: { epoch: number; owners: Map<string, TarEntry>; timeoutMs: number; signal?: AbortSignal },
): Promise<void> {
  const ctime = new Date(o.epoch * 1000).toISOString().replace(/[-:T]/g, "").slice(0, 14);
  const commands: string[] = [`set_inode_field "/" ctime ${ctime}`];
  const walk = (dir: string, rel: string) => {
    for (const e of readdirSync(dir, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : 1))) {
      const p = `${rel}/${e.name}`;
      // One command per line, the path quoted (debugfs reads `""` as a quote
      // and a backslash as itself; no staged name holds a line break).
      const q = `"${p.replace(/"/g, '""')}"`;
      commands.push(`set_inode_field ${q} ctime ${ctime}`);
      const st = lstatSync(join(dir, e.name));
      const want = o.owners.get(p.slice(1)) ?? { uid: 0, gid: 0 };
      if (st.uid !== want.uid) commands.push(`set_inode_field ${q} uid ${want.uid}`);
      if (st.gid !== want.gid) commands.push(`set_inode_field ${q} gid ${want.gid}`);
      if (e.isDirectory()) walk(join(dir, e.name), p);
    }
  };
  walk(root, "");
  // E2FSPROGS_FAKE_TIME: debugfs would stamp the superblock with the time of writing.
  await run("debugfs", ["-w", "-f", "-", img], {
    timeoutMs: o.timeoutMs,
    input: `${commands.join("\n")}\n`,
    env: { ...process.env, E2FSPROGS_FAKE_TIME: "1" },
    signal: o.signal,
  });
}

/** Fixed timestamps (`secs` since the epoch), so equal recipes give equal bytes. */
function normalizeTimes(dir: string, secs: number): void {
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) normalizeTimes(p, secs);
    lutimesSync(p, secs, secs);
  }
  lutimesSync(dir, secs, secs);
}
