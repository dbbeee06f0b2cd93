import { chownSync, lchownSync, lstatSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { UmlfleetError } from "../errors";
import { uidPool } from "../feature-checks";
import { run } from "../process";
import type { InstanceSpec } from "../spec";

/**
 * The host user a guest's UML process runs as (an instance's `runAs`). The
 * sandbox is set up as whoever runs umlfleet, then `setpriv` inside it drops
 * to this uid and gid, with no supplementary group and no capability, and
 * execs the kernel (sandbox.ts): one guest's processes then cannot be
 * signalled, traced or read by another's, and its disks, vm/ folder and
 * set-up are files only its uid may open.
 */
export interface HostIds {
  uid: number;
  gid: number;
}

/**
 * Who asks: an instance (`key`: state folder and name) and the uids the
 * records of the other instances of its state folder hold.
 */
export interface Claim {
  key: string;
  others: readonly (number | undefined)[];
}

/** Pool uids picked by this process and not yet in a record (guests of a group boot at once). */
const picked = new Map<string, number>();

/**
 * The ids `spec.runAs` names, or undefined when it names none. A pool uid is
 * the lowest of the pool not held by another instance of this state folder
 * and running no process (another state folder's guests). Throws, naming the
 * field, when the account does not exist, the pool is used up, or this
 * process may not switch to the uid (it needs to be root).
 */
export async function resolveHostIds(
  spec: InstanceSpec,
  claim: Claim,
  recorded?: HostIds,
): Promise<HostIds | undefined> {
  const r = spec.runAs;
  picked.delete(claim.key);
  if (!r) return undefined;
  let ids: HostIds;
  if (r.user !== undefined) {
    const out = await run("getent", ["passwd", r.user], { allowFailure: true, timeoutMs: 10_000 });
    const f = out.stdout.trim().split(":");
    if (out.exitCode !== 0 || f.length < 4)
      throw new UmlfleetError(
        "UMLFLEET_NOT_FOUND",
        `/runAs/user: ${JSON.stringify(r.user)} is no account on this host`,
        {
          field: "/runAs/user",
          value: r.user,
        },
      );
    ids = { uid: Number(f[2]), gid: Number(f[3]) };
  } else if (r.uid !== undefined) {
    ids = { uid: r.uid, gid: r.uid };
  } else if (recorded && inPool(recorded.uid)) {
    ids = recorded; // the uid this instance booted with last time stays its own
  } else {
    // Picked and noted in one turn of the event loop: no other boot can pick it meanwhile.
    const held = new Set([...claim.others, ...picked.values()].filter((u) => u !== undefined));
    ids = freePoolIds(held);
    picked.set(claim.key, ids.uid);
  }
  const me = process.getuid?.() ?? 0;
  if (me !== 0 && ids.uid !== me)
    throw new UmlfleetError(
      "UMLFLEET_PERMISSION_DENIED",
      `/runAs: running a guest as uid ${ids.uid} needs umlfleet to run as root (CAP_SETUID); it runs as uid ${me}`,
      { field: "/runAs", uid: ids.uid },
    );
  return ids;
}

function inPool(uid: number): boolean {
  const p = uidPool();
  return uid >= p.from && uid <= p.to;
}

function freePoolIds(held: ReadonlySet<number>): HostIds {
  const p = uidPool();
  const busy = processUids();
  for (let uid = p.from; uid <= p.to; uid++) if (!held.has(uid) && !busy.has(uid)) return { uid, gid: uid };
  throw new UmlfleetError(
    "UMLFLEET_CONFLICT",
    `/runAs/pool: every uid of the pool ${p.from}-${p.to} is in use (UMLFLEET_UID_POOL sets a larger one)`,
    { field: "/runAs/pool", pool: p },
  );
}

/** The real uids of every process on the host (owner of /proc/<pid>). */
function processUids(): Set<number> {
  const out = new Set<number>();
  for (const e of readdirSync("/proc")) {
    if (!/^\d+$/.test(e)) continue;
    try {
      out.add(lstatSync(join("/proc", e)).uid);
    } catch {
      /* gone meanwhile */
    }
  }
  return out;
}

/**
 * Give files the guest's process must write to its ids: its vm/ folder, its
 * disks (hard links in vm/: the inode is the disk's), its set-up folder.
 * Entries are changed without following a link (the guest may have planted
 * one in vm/ since an earlier boot; the runtime removed vm/ before this boot).
 */
export function handOver(paths: readonly string[], ids: HostIds | undefined): void {
  if (!ids) return;
  for (const p of paths) lchownSync(p, ids.uid, ids.gid);
}

/** A staged set-up folder and what it holds (host-only, made by the runtime just now). */
export function handOverTree(dir: string, ids: HostIds | undefined): void {
  if (!ids) return;
  chownSync(dir, ids.uid, ids.gid);
  for (const e of readdirSync(dir, { recursive: true, withFileTypes: true }))
    lchownSync(join(e.parentPath, e.name), ids.uid, ids.gid);
}
