/**
 * What a crash leaves in a state folder, found and removed without touching
 * anything a stack owns. A resource with a record is owned (by the stack that
 * declared it: refresh reports it, up repairs it, destroy removes it); a
 * resource whose lock a live process holds is being made or removed right now.
 * Everything else of ours is debris:
 * - a process that names or holds a path of a resource with no record (a guest
 *   booted by a create killed before its record was written), or a serial-line
 *   relay that no link record lists;
 * - an instance or switch folder, a disk file, an image no base uses, a temp
 *   file of an interrupted atomic write, a lock whose owner is dead.
 */
import { existsSync, readdirSync, readlinkSync, readFileSync, rmSync, statSync } from "node:fs";
import { join } from "node:path";
import { isAlive, killPids, processStartTicks, waitFor, type ProcessIdentity } from "../process";
import { removeTree } from "./sandbox";
import { readJson, withLock, type StateDir } from "./state";

export interface Debris {
  /** process | instance-folder | switch-folder | disk-file | image | temp-file | lock */
  kind: "process" | "instance-folder" | "switch-folder" | "disk-file" | "image" | "temp-file" | "lock";
  path: string;
  /** For processes: the pid, its command and what it belonged to. */
  pid?: number;
  command?: string;
  /** The resource lock to hold while removing it (so no create races the clean-up). */
  lockKey?: string;
  reason: string;
}

/** Temp files older than this are from a writer that is gone (writes take milliseconds). */
const TEMP_AGE_MS = 60_000;

interface OurProcess {
  pid: number;
  command: string;
  /** State-folder paths in its arguments. */
  named: string[];
  /** State-folder paths among its open files. */
  held: string[];
}

/** Every process (but this one) that names or holds a path under `root`. */
function processesUsing(root: string): OurProcess[] {
  const prefix = `${root}/`;
  const out: OurProcess[] = [];
  for (const e of readdirSync("/proc")) {
    if (!/^\d+$/.test(e) || Number(e) === process.pid) continue;
    let argv: string[];
    try {
      argv = readFileSync(`/proc/${e}/cmdline`, "utf8").split("\0");
    } catch {
      continue; // exited meanwhile
    }
    const named = argv.filter((a) => a.includes(prefix));
    const held: string[] = [];
    try {
      for (const fd of readdirSync(`/proc/${e}/fd`)) {
        try {
          const target = readlinkSync(`/proc/${e}/fd/${fd}`);
          if (target.startsWith(prefix)) held.push(target);
        } catch {
          /* closed meanwhile */
        }
      }
    } catch {
      /* another user's process: its arguments still tell */
    }
    if (named.length + held.length > 0)
      out.push({ pid: Number(e), command: argv.join(" ").trim(), named, held });
  }
  return out;
}

/** The resource a state-folder path belongs to, as its lock key and record file. */
function ownerOf(state: StateDir, path: string): { lockKey: string; record: string } | undefined {
  const rel = path.slice(state.root.length + 1);
  let m = /^instances\/([^/]+)/.exec(rel);
  if (m) return { lockKey: `instance-${m[1]}`, record: state.instanceRecord(m[1]!) };
  m = /^switches\/([^/]+)/.exec(rel) ?? /^networks\/([^/]+)\.run(\/|$)/.exec(rel);
  if (m) return { lockKey: `network-${m[1]}`, record: state.networkRecord(m[1]!) };
  m = /^disks\/([^/]+)\.img$/.exec(rel);
  if (m) return { lockKey: `disk-${m[1]}`, record: state.diskRecord(m[1]!) };
  return undefined;
}

function lockHeld(state: StateDir, key: string): boolean {
  const owner = readJsonQuiet<ProcessIdentity>(join(state.lockDir(key), "owner.json"));
  // A lock folder without an owner yet is being taken: count it as held.
  return existsSync(state.lockDir(key)) && (owner === undefined || isAlive(owner));
}

function readJsonQuiet<T>(file: string): T | undefined {
  try {
    return readJson<T>(file);
  } catch {
    return undefined;
  }
}

const entries = (dir: string) => (existsSync(dir) ? readdirSync(dir) : []);

/** The debris in a state folder (nothing is changed). */
export function findDebris(state: StateDir): Debris[] {
  const root = state.root;
  const out: Debris[] = [];
  const orphaned = (o: { lockKey: string; record: string }) =>
    !existsSync(o.record) && !lockHeld(state, o.lockKey);

  // Serial-line relays are ours only through the FIFOs they hold (`cat` names nothing).
  const relays = new Set<number>();
  for (const l of entries(join(root, "links"))) {
    const r = readJsonQuiet<{ relays?: ProcessIdentity[] }>(join(root, "links", l));
    for (const p of r?.relays ?? []) if (isAlive(p)) relays.add(p.pid);
  }
  for (const p of processesUsing(root)) {
    const paths = [...p.named, ...p.held];
    const owners = paths.map((x) => ownerOf(state, x)).filter((o) => o !== undefined);
    const onlyFifos = p.named.length === 0 && p.held.every((h) => /\/instances\/[^/]+\/fifo\//.test(h));
    if (onlyFifos && p.held.length > 0) {
      const linkLocked = entries(join(root, "locks")).some(
        (k) => k.startsWith("link-") && lockHeld(state, k),
      );
      if (!relays.has(p.pid) && !linkLocked)
        out.push({
          kind: "process",
          path: p.held[0]!,
          pid: p.pid,
          command: p.command,
          reason: "a serial-line relay no link lists",
        });
      continue;
    }
    const orphan = owners.find(orphaned);
    if (owners.length > 0 && owners.every(orphaned))
      out.push({
        kind: "process",
        path: paths[0]!,
        pid: p.pid,
        command: p.command,
        lockKey: orphan?.lockKey,
        reason: "belongs to a resource with no record",
      });
  }

  for (const name of entries(join(root, "instances"))) {
    const o = { lockKey: `instance-${name}`, record: state.instanceRecord(name) };
    if (orphaned(o))
      out.push({
        kind: "instance-folder",
        path: state.instanceDir(name),
        lockKey: o.lockKey,
        reason: "an instance folder with no record",
      });
  }
  for (const name of entries(state.switches())) {
    const o = { lockKey: `network-${name}`, record: state.networkRecord(name) };
    if (orphaned(o))
      out.push({
        kind: "switch-folder",
        path: state.switchDir(name),
        lockKey: o.lockKey,
        reason: "a switch folder with no network record",
      });
  }
  for (const f of entries(join(root, "networks"))) {
    const m = /^(.+)\.run$/.exec(f);
    const o = m && { lockKey: `network-${m[1]}`, record: state.networkRecord(m[1]!) };
    if (o && orphaned(o))
      out.push({
        kind: "switch-folder",
        path: join(root, "networks", f),
        lockKey: o.lockKey,
        reason: "a switch's run folder with no network record",
      });
  }
  for (const f of entries(join(root, "disks"))) {
    const m = /^(.+)\.img$/.exec(f);
    const o = m && { lockKey: `disk-${m[1]}`, record: state.diskRecord(m[1]!) };
    if (o && orphaned(o))
      out.push({
        kind: "disk-file",
        path: join(root, "disks", f),
        lockKey: o.lockKey,
        reason: "a disk file with no record",
      });
  }

  // Images are shared by content: one no base record names is debris, unless a base is being made.
  const used = new Set(
    entries(join(root, "bases")).map(
      (b) => readJsonQuiet<{ imageSha?: string }>(join(root, "bases", b))?.imageSha,
    ),
  );
  const baseBusy = entries(join(root, "locks")).some((k) => k.startsWith("base-") && lockHeld(state, k));
  for (const f of entries(state.images())) {
    const m = /^([0-9a-f]{64})\.(img|stamp)$/.exec(f);
    if (m && !used.has(m[1]) && !baseBusy)
      out.push({ kind: "image", path: join(state.images(), f), reason: "an image no base record uses" });
  }

  // Temp files of atomic writes whose writer is gone, in the folders records live in
  // (never in vm/ or switch folders: guests write there).
  const recordDirs = [
    ...["bases", "disks", "networks", "links", "images"].map((d) => join(root, d)),
    ...entries(join(root, "instances")).map((n) => state.instanceDir(n)),
    ...entries(join(root, "locks")).map((k) => join(root, "locks", k)),
  ];
  for (const dir of recordDirs)
    for (const e of entries(dir)) {
      const m = /\.tmp-(\d+)-[a-z0-9]+$/.exec(e);
      const st = m && statSync(join(dir, e), { throwIfNoEntry: false });
      if (
        st &&
        st.isFile() &&
        processStartTicks(Number(m[1])) === null &&
        Date.now() - st.mtimeMs > TEMP_AGE_MS
      )
        out.push({ kind: "temp-file", path: join(dir, e), reason: "an interrupted write's temp file" });
    }

  for (const key of entries(join(root, "locks"))) {
    const owner = readJsonQuiet<ProcessIdentity>(join(state.lockDir(key), "owner.json"));
    if (owner && !isAlive(owner))
      out.push({ kind: "lock", path: state.lockDir(key), reason: "a lock whose owner is dead" });
  }
  return out;
}

/**
 * Remove `debris` (from findDebris): processes first, then files. Each
 * resource's leftovers are removed under its lock, after checking again that
 * it still has no record, so a create that started meanwhile is left alone.
 * Returns what was removed.
 */
export async function removeDebris(state: StateDir, debris: readonly Debris[]): Promise<Debris[]> {
  const removed: Debris[] = [];
  const order: Debris["kind"][] = [
    "process",
    "instance-folder",
    "switch-folder",
    "disk-file",
    "image",
    "temp-file",
    "lock",
  ];
  const sorted = [...debris].sort((a, b) => order.indexOf(a.kind) - order.indexOf(b.kind));
  for (const d of sorted) {
    const act = async () => {
      const owner = d.lockKey ? ownerOf(state, d.path) : undefined;
      if (owner && existsSync(owner.record)) return; // made meanwhile: owned now
      if (d.kind === "process" && d.pid !== undefined) {
        killPids([d.pid]);
        await waitFor(() => processStartTicks(d.pid!) === null, 10_000, 10);
      } else if (d.kind === "instance-folder" || d.kind === "switch-folder") {
        await removeTree(d.path); // guest-writable trees: never walked by us (docs/security.md)
      } else rmSync(d.path, { recursive: true, force: true });
      removed.push(d);
    };
    if (d.lockKey) await withLock(state, d.lockKey, act, 10_000);
    else await act();
  }
  state.pruneIfEmpty();
  return removed;
}
