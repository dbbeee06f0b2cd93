import { closeSync, constants, fstatSync, lstatSync, openSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { MAX_FILE_BYTES } from "./feature-checks";
import { LabError, parseLabConf, parseLabDep } from "./lab-conf";
import type { LabFolder, LabTreeFile } from "./lab-plan";

/**
 * Reads a Netkit/Kathará lab folder on the machine running the Pulumi
 * program: lab.conf, lab.dep, the `.startup` scripts and the `<machine>/` and
 * `shared/` trees of the machines lab.conf names (other entries are not
 * read, as Kathará ignores them). A symbolic link in a tree is an error, not
 * followed: it could name any file of this machine.
 */

// The guest path rules of schema/common.json guestPath, and the folders files may not go to.
const GUEST_PATH = /^\/(?!.*(^|\/)\.{1,2}(\/|$))[A-Za-z0-9._+@/-]+$/;
const RESERVED = /^\/(proc|sys|dev|umlfleet)(\/|$)/;
/** The most entries walked in one tree: far more than an instance takes (64 files). */
const MAX_WALK = 256;

const utf8 = new TextDecoder("utf-8", { fatal: true });

/** One regular file's text, opened without following a link; `null` when it is not there. */
function readText(path: string, label: string): string | null {
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY | constants.O_NOFOLLOW);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === "ENOENT") return null;
    if (code === "ELOOP")
      throw new LabError(label, undefined, "a symbolic link: umlfleet does not follow links in a lab folder");
    throw new LabError(label, undefined, `cannot read: ${(e as Error).message}`);
  }
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) throw new LabError(label, undefined, "not a regular file");
    if (st.size > MAX_FILE_BYTES)
      throw new LabError(label, undefined, `${st.size} bytes: at most ${MAX_FILE_BYTES}`);
    const bytes = readFileSync(fd);
    try {
      return utf8.decode(bytes);
    } catch {
      throw new LabError(
        label,
        undefined,
        "not UTF-8 text: umlfleet copies text files only (put binaries in the base)",
      );
    }
  } finally {
    closeSync(fd);
  }
}

/** A tree's regular files, with their guest paths and permission bits. */
function readTree(dir: string, root: string): LabTreeFile[] {
  const out: LabTreeFile[] = [];
  let walked = 0;
  const walk = (rel: string) => {
    const here = join(dir, root, rel);
    for (const entry of readdirSync(here).sort()) {
      if (++walked > MAX_WALK)
        throw new LabError(join(dir, root), undefined, `more than ${MAX_WALK} entries`);
      const relPath = rel ? `${rel}/${entry}` : entry;
      const label = join(dir, root, relPath);
      const st = lstatSync(label);
      if (st.isSymbolicLink())
        throw new LabError(
          label,
          undefined,
          "a symbolic link: umlfleet does not follow links in a lab folder",
        );
      if (st.isDirectory()) {
        walk(relPath);
        continue;
      }
      if (!st.isFile()) throw new LabError(label, undefined, "not a regular file or folder");
      const path = `/${relPath}`;
      if (!GUEST_PATH.test(path) || RESERVED.test(path))
        throw new LabError(
          label,
          undefined,
          `its guest path ${JSON.stringify(path)} must hold only letters, digits and ._+@/- and not be under /proc, /sys, /dev or /umlfleet`,
        );
      out.push({
        path,
        content: readText(label, label)!,
        mode: st.mode & 0o7777,
        from: `${root}/${relPath}`,
      });
    }
  };
  walk("");
  return out;
}

const isDir = (p: string) => {
  try {
    return lstatSync(p).isDirectory();
  } catch {
    return false;
  }
};

/** Reads and parses the lab folder `dir`; errors name the file (and line). */
export function readLabFolder(dir: string): LabFolder {
  const confFile = join(dir, "lab.conf");
  const confText = readText(confFile, confFile);
  if (confText === null) throw new LabError(confFile, undefined, "no lab.conf in the lab folder");
  const conf = parseLabConf(confText, confFile);
  const depFile = join(dir, "lab.dep");
  const depText = readText(depFile, depFile);
  const deps =
    depText === null
      ? new Map<string, string[]>()
      : parseLabDep(
          depText,
          conf.machines.map((m) => m.name),
          depFile,
        );
  const startups = new Map<string, string>();
  const trees = new Map<string, LabTreeFile[]>();
  for (const who of ["shared", ...conf.machines.map((m) => m.name)]) {
    const file = join(dir, `${who}.startup`);
    const text = readText(file, file);
    if (text !== null) startups.set(who, text);
    const tree = join(dir, who);
    if (isDir(tree)) trees.set(who, readTree(dir, who));
    else {
      try {
        if (lstatSync(tree).isSymbolicLink())
          throw new LabError(
            tree,
            undefined,
            "a symbolic link: umlfleet does not follow links in a lab folder",
          );
      } catch (e) {
        if (e instanceof LabError) throw e;
      }
    }
  }
  return { dir, conf, deps, startups, trees };
}
