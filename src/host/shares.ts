import { closeSync, constants, existsSync, openSync, readlinkSync, realpathSync, statSync } from "node:fs";
import { dirname, sep } from "node:path";
import { UmlfleetError } from "../errors";
import type { ShareSpec } from "../spec";

/** One instance's declared shares, as another instance's check sees them. */
export interface ShareOwner {
  instance: string;
  shares: readonly ShareSpec[];
}

/** A share checked on the host: the real folder its hostPath names now. */
export interface CheckedShare {
  name: string;
  hostPath: string;
  realPath: string;
  readOnly: boolean;
  field: string;
}

/**
 * Check an instance's shares before anything is bound: each hostPath must name
 * an existing folder; none may hold, or lie in, the state folder (a guest
 * would see every other guest's disks and logs); and no two shares, of this
 * instance or any other on the host, may nest when either is read-write. A
 * guest with a read-write share can replace any folder inside it with a link
 * to anything on the host, and the sandbox of a guest sharing that inner
 * folder would then bind what the link names (measured before this check: a
 * read-only share of a folder inside another guest's read-write share became
 * a host secret folder at the next boot). Equal paths do not nest: neither
 * guest can replace the folder it was given, so one folder shared by many is
 * fine. Paths are compared after resolving links, so a link in a hostPath
 * cannot hide a nesting. Throws naming the field (and the other instance).
 */
export function checkShares(
  instance: string,
  shares: readonly ShareSpec[],
  others: readonly ShareOwner[],
  stateRoot: string,
): CheckedShare[] {
  const state = realPathOf(stateRoot);
  const mine = shares.map((sh, i) => {
    const field = `/shares/${i}/hostPath`;
    const st = statSync(sh.hostPath, { throwIfNoEntry: false });
    if (!st?.isDirectory()) {
      throw new UmlfleetError(
        "UMLFLEET_NOT_FOUND",
        `${field}: ${JSON.stringify(sh.hostPath)} is not an existing directory`,
        {
          field,
          value: sh.hostPath,
        },
      );
    }
    const realPath = realpathSync(sh.hostPath);
    if (nests(realPath, state) || nests(state, realPath) || realPath === state) {
      throw new UmlfleetError(
        "UMLFLEET_INVALID_SPEC",
        `${field}: ${JSON.stringify(sh.hostPath)} overlaps umlfleet's state folder ${state}: a guest would reach other guests' disks and logs`,
        { field, value: sh.hostPath },
      );
    }
    return { name: sh.name, hostPath: sh.hostPath, realPath, readOnly: sh.readOnly ?? true, field };
  });
  const theirs = others
    .filter((o) => o.instance !== instance)
    .flatMap((o) =>
      o.shares.flatMap((sh, i) => {
        const realPath = realPathIfAny(sh.hostPath);
        return realPath
          ? [
              {
                instance: o.instance,
                field: `/shares/${i}/hostPath`,
                realPath,
                readOnly: sh.readOnly ?? true,
              },
            ]
          : [];
      }),
    );
  const all = [...mine.map((m) => ({ ...m, instance })), ...theirs];
  for (const a of mine) {
    for (const b of all) {
      if (b.instance === instance && b.field === a.field) continue;
      if (a.readOnly && b.readOnly) continue;
      const inner = nests(a.realPath, b.realPath) ? a : nests(b.realPath, a.realPath) ? b : undefined;
      if (!inner) continue;
      const outer = inner === a ? b : a;
      const who = (x: { field: string }, name: string) =>
        `${name === instance ? "this instance's" : `instance ${name}'s`} ${x.field}`;
      throw new UmlfleetError(
        "UMLFLEET_CONFLICT",
        `${a.field}: ${JSON.stringify(a.hostPath)} nests with ${who(b, b.instance)} (${b.realPath}): ` +
          `${inner.realPath} lies inside ${outer.readOnly ? "" : "read-write "}share ${outer.realPath}, and a guest that can write a folder ` +
          `can replace the folders in it with links; share folders that do not nest`,
        {
          field: a.field,
          value: a.hostPath,
          other: { instance: b.instance, field: b.field, path: b.realPath },
        },
      );
    }
  }
  return mine;
}

/**
 * Open a checked share for binding by fd: the sandbox binds the folder this
 * fd holds, whatever its path names by then. The fd is checked to be the
 * folder that was checked: opened without following a link in the last
 * component, and its path as the kernel knows it must still be the checked
 * real path (a component swapped for a link in between leads elsewhere). A
 * mismatch fails closed (UMLFLEET_CONFLICT), binding nothing.
 */
export function openShare(share: CheckedShare): number {
  const changed = (now: string) =>
    new UmlfleetError(
      "UMLFLEET_CONFLICT",
      `${share.field}: ${JSON.stringify(share.hostPath)} changed while it was being bound (checked ${share.realPath}, now ${now}); nothing was bound`,
      { field: share.field, value: share.hostPath },
    );
  let fd: number;
  try {
    fd = openSync(share.realPath, constants.O_RDONLY | constants.O_DIRECTORY | constants.O_NOFOLLOW);
  } catch (e) {
    // A link (ELOOP, or ENOTDIR with O_DIRECTORY) or nothing where the folder was.
    throw changed((e as NodeJS.ErrnoException).code ?? String(e));
  }
  let opened: string;
  try {
    opened = readlinkSync(`/proc/self/fd/${fd}`);
  } catch (e) {
    closeSync(fd);
    throw e;
  }
  if (opened !== share.realPath) {
    closeSync(fd);
    throw changed(opened);
  }
  return fd;
}

/** True when `inner` lies strictly inside `outer`. */
export const nests = (inner: string, outer: string) =>
  inner.startsWith(outer === sep ? sep : `${outer}${sep}`);

function realPathIfAny(p: string): string | undefined {
  try {
    return realpathSync(p);
  } catch {
    return undefined;
  }
}

/** The real path of `p`, or of its nearest existing ancestor joined with the rest. */
function realPathOf(p: string): string {
  if (existsSync(p)) return realpathSync(p);
  const parent = dirname(p);
  return parent === p ? p : `${realPathOf(parent).replace(/\/$/, "")}/${p.slice(parent.length + 1)}`;
}
