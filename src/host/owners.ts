import { UmlfleetError } from "../errors";

/**
 * Who made a resource of a state folder. Names are per state folder, and
 * several Pulumi stacks (a class, CI runs of several branches) share one, so
 * every record lists the stacks that own it (`<project>/<stack>`, passed by
 * the provider as CallOptions.owner):
 *
 * - a base is shareable: each stack that ensures it is an owner, and it is
 *   removed with its last owner;
 * - everything else (instances, disks, networks, serial links, group members)
 *   is its one owner's: another stack's create, update or remove is refused
 *   with UMLFLEET_CONFLICT, before any side effect.
 *
 * A record without `owners` (made before owners were recorded, or by a caller
 * naming none: tools, tests) is anyone's, as before; a caller naming no owner
 * is never refused (destroyAll, `umlfleet gc`).
 */
export interface Owned {
  owners?: string[];
}

/** The longest owner id accepted (Pulumi's project and stack names are far shorter). */
const MAX_OWNER_LENGTH = 512;

/** An owner id reaches records and messages only: a printable string, checked before any side effect. */
export function checkOwner(owner: unknown): string | undefined {
  if (owner === undefined) return undefined;
  // Control characters would forge lines in messages and logs.
  if (
    typeof owner !== "string" ||
    owner === "" ||
    owner.length > MAX_OWNER_LENGTH ||
    /[\x00-\x1f\x7f]/.test(owner)
  )
    throw new UmlfleetError(
      "UMLFLEET_INVALID_SPEC",
      `owner: must be a printable string of 1 to ${MAX_OWNER_LENGTH} characters, such as "<project>/<stack>" (got ${JSON.stringify(owner)?.slice(0, 80)})`,
      { field: "owner", value: owner },
    );
  return owner;
}

/** The owners of a record after `owner` ensured it (unchanged when it names none). */
export function claimed(existing: Owned | undefined, owner: string | undefined): string[] | undefined {
  if (owner === undefined) return existing?.owners;
  const owners = existing?.owners ?? [];
  return owners.includes(owner) ? owners : [...owners, owner];
}

/** Is `owner` one that may change this record (its owner, or any caller for a record owned by none)? */
export function mayChange(existing: Owned | undefined, owner: string | undefined): boolean {
  const owners = existing?.owners;
  return owner === undefined || owners === undefined || owners.length === 0 || owners.includes(owner);
}

/**
 * Refuse `owner`'s create, update or remove of another stack's resource (not
 * a base: bases are shared), naming the resource, its owner and the fixes.
 */
export function refuseForeign(
  kind: string,
  name: string,
  existing: Owned | undefined,
  owner: string | undefined,
  op: "create" | "change" | "remove",
  stateDir: string,
): void {
  if (mayChange(existing, owner)) return;
  const owners = existing!.owners!;
  const whose = owners.map((o) => JSON.stringify(o)).join(", ");
  const fix =
    op === "remove"
      ? `it is left as it is; to drop it from stack ${JSON.stringify(owner)} without touching the host, run \`pulumi state delete\` on its URN there`
      : `names are per host state folder (${stateDir}): give this one another name, or another stateDir`;
  throw new UmlfleetError(
    "UMLFLEET_CONFLICT",
    `${kind} ${JSON.stringify(name)} belongs to stack ${whose}, not to ${JSON.stringify(owner)}, on this host; ${fix}`,
    { kind, name, owners, owner, stateDir },
  );
}

/** `record` with `owners` set, or without the field when there are none to record. */
export function withOwners<T extends Owned>(record: T, owners: string[] | undefined): T {
  const rest = { ...record };
  delete rest.owners;
  return owners === undefined ? rest : { ...rest, owners };
}

/** Per kind and name, the owners of the records in `names` that list any. */
export function ownersOf<K extends string>(
  names: Record<K, string[]>,
  records: Record<K, { get(name: string): Owned | undefined }>,
): Partial<Record<K, Record<string, string[]>>> {
  const out: Partial<Record<K, Record<string, string[]>>> = {};
  for (const kind of Object.keys(names) as K[]) {
    const byName: Record<string, string[]> = {};
    for (const name of names[kind]) {
      const o = records[kind].get(name)?.owners;
      if (o) byName[name] = o;
    }
    if (Object.keys(byName).length) out[kind] = byName;
  }
  return out;
}

/** What an instance uses of other resources, by name. */
interface Uses {
  rootDisk?: string;
  swapDisk?: string;
  disks?: { disk: string }[];
  nics?: { network: string }[];
}

/**
 * An instance of `owner` may use only disks and networks of its own stack
 * (or of no one's): another stack's disk would hand it that stack's data, its
 * network that stack's guests. Refused with UMLFLEET_CONFLICT before any side effect.
 */
export function refuseForeignUses(
  what: string,
  s: Uses,
  owner: string | undefined,
  records: { disks: { get(n: string): Owned | undefined }; networks: { get(n: string): Owned | undefined } },
  stateDir: string,
): void {
  if (owner === undefined) return;
  for (const d of [s.rootDisk, s.swapDisk, ...(s.disks ?? []).map((x) => x.disk)])
    if (d) refuseForeign(`${what}: disk`, d, records.disks.get(d), owner, "change", stateDir);
  for (const n of s.nics ?? [])
    refuseForeign(`${what}: network`, n.network, records.networks.get(n.network), owner, "change", stateDir);
}
