import { homedir, tmpdir } from "node:os";
import type { FieldProblem } from "./errors";
import {
  inSubnet,
  isLinkLocal6,
  parseAddress,
  parseCidr,
  type IpAddress,
  type IpNetwork,
} from "./net-address";
import type { InstanceSpec, NetworkSpec } from "./spec";

/**
 * Rules for guest set-up (files, startup, addresses and routes) and for a
 * network's host link and capture that a JSON Schema cannot say. Pure apart
 * from reading the environment for the capture folders; run by SpecValidator
 * after the schema, so every value here already has its schema's shape.
 */

/** The largest startup script, in bytes (UTF-8). */
export const MAX_STARTUP_BYTES = 64 * 1024;
/** The largest file, in bytes (content, or a source file's size at boot). */
export const MAX_FILE_BYTES = 1024 * 1024;
/** All files of an instance together, in bytes. */
export const MAX_FILES_BYTES = 4 * 1024 * 1024;

/**
 * Folders a capture file may be written in: `$UMLFLEET_CAPTURE_DIRS`
 * (absolute paths separated by ':') when set, else the user's home folder and
 * the temp folder. The host writes there as the user running umlfleet, so a
 * program cannot aim a capture at a system file; the runtime also refuses the
 * state folder and share folders (their contents belong to guests).
 */
export function captureRoots(env: NodeJS.ProcessEnv = process.env): string[] {
  const listed = env.UMLFLEET_CAPTURE_DIRS;
  const roots = listed !== undefined ? listed.split(":") : [homedir(), tmpdir()];
  return roots.map((r) => r.replace(/\/+$/, "")).filter((r) => r.startsWith("/") && r !== "");
}

export const under = (path: string, root: string) => path.startsWith(`${root}/`);

/**
 * The host uids guests may run as by number (runAs uid or pool):
 * `$UMLFLEET_UID_POOL` ("FROM-TO"), else 2100000000-2100009999, far above
 * the ranges useradd and /etc/subuid hand out, so no person's account or
 * user namespace holds one of them. A malformed setting gives an empty pool.
 */
export function uidPool(env: NodeJS.ProcessEnv = process.env): { from: number; to: number } {
  const m = /^(\d{1,10})-(\d{1,10})$/.exec(env.UMLFLEET_UID_POOL ?? "2100000000-2100009999");
  const from = Number(m?.[1] ?? 1);
  const to = Number(m?.[2] ?? 0);
  return from >= 1000 && to <= 4294967294 && from <= to ? { from, to } : { from: 1, to: 0 };
}

export function instanceFeatureProblems(s: InstanceSpec): FieldProblem[] {
  const problems: FieldProblem[] = [];
  const add = (field: string, value: unknown, message: string) => {
    problems.push({ field, value, message });
  };
  const usesInit = (s.readiness ?? "marker") === "marker";
  const needsInit = (field: string, value: unknown) =>
    add(field, value, "needs umlfleet's init (readiness \"marker\"); an image's own init never reads it");

  // Addresses, gateways and routes, NIC by NIC: a next hop must be reachable on its NIC.
  const gateways: Record<4 | 6, number | undefined> = { 4: undefined, 6: undefined };
  (s.nics ?? []).forEach((nic, i) => {
    const at = `/nics/${i}`;
    const nets: IpNetwork[] = [];
    if (nic.ipv4) nets.push(parseCidr(nic.ipv4)!);
    if (nic.ipv6 !== undefined) {
      const v6 = parseCidr(nic.ipv6);
      if (!v6 || v6.family !== 6) add(`${at}/ipv6`, nic.ipv6, "is not an IPv6 address with prefix length");
      else nets.push(v6);
      if (!usesInit) needsInit(`${at}/ipv6`, nic.ipv6);
    }
    if (nic.mtu !== undefined && !usesInit) needsInit(`${at}/mtu`, nic.mtu);
    const hop = (field: string, value: string): IpAddress | undefined => {
      const a = parseAddress(value);
      if (!a) {
        add(field, value, "is not an IPv4 or IPv6 address");
        return undefined;
      }
      if (isLinkLocal6(a) || nets.some((n) => inSubnet(a, n))) return a;
      const own = nets.filter((n) => n.family === a.family);
      add(
        field,
        value,
        own.length
          ? `is outside this NIC's subnet (${own.map((n) => (n.family === 4 ? nic.ipv4 : nic.ipv6)).join(", ")}): the guest could not reach it`
          : `needs an IPv${a.family} address on this NIC (set ${a.family === 4 ? "ipv4" : "ipv6"}): outside every subnet of the NIC, the guest could not reach it`,
      );
      return undefined;
    };
    if (nic.gateway !== undefined) {
      const a = hop(`${at}/gateway`, nic.gateway);
      if (a) {
        const other = gateways[a.family];
        if (other !== undefined)
          add(
            `${at}/gateway`,
            nic.gateway,
            `repeats the IPv${a.family} gateway of NIC ${other}: one default route per family`,
          );
        else gateways[a.family] = i;
      }
      if (!usesInit) needsInit(`${at}/gateway`, nic.gateway);
    }
    (nic.routes ?? []).forEach((r, j) => {
      const to = parseCidr(r.to);
      if (!to) add(`${at}/routes/${j}/to`, r.to, "is not an IPv4 or IPv6 network with prefix length");
      const via = hop(`${at}/routes/${j}/via`, r.via);
      if (to && via && to.family !== via.family)
        add(`${at}/routes/${j}/via`, r.via, `is IPv${via.family} while the route's "to" is IPv${to.family}`);
    });
    if (nic.routes?.length && !usesInit) needsInit(`${at}/routes`, nic.routes);
    const imp = nic.impairment;
    if (imp?.jitterMs !== undefined && imp.jitterMs > (imp.delayMs ?? 0))
      add(
        `${at}/impairment/jitterMs`,
        imp.jitterMs,
        `is more than delayMs (${imp.delayMs ?? 0}): a frame's delay would go below zero`,
      );
  });

  // Files: distinct paths, none inside another, within the size limits.
  const files = s.files ?? [];
  let total = 0;
  const paths = new Map<string, number>();
  files.forEach((f, i) => {
    const at = `/files/${i}`;
    if (paths.has(f.path)) add(`${at}/path`, f.path, `repeats file ${paths.get(f.path)}`);
    paths.set(f.path, i);
    if (f.content !== undefined) {
      const bytes = Buffer.byteLength(f.content, "utf8");
      total += bytes;
      if (bytes > MAX_FILE_BYTES)
        add(`${at}/content`, `${f.content.slice(0, 40)}...`, `is ${bytes} bytes; at most ${MAX_FILE_BYTES}`);
    }
  });
  for (const [p, i] of paths) {
    const outer = [...paths.keys()].find((q) => under(p, q));
    if (outer)
      add(
        `/files/${i}/path`,
        p,
        `lies inside file ${paths.get(outer)} (${outer}), which is a file, not a folder`,
      );
  }
  if (total > MAX_FILES_BYTES)
    add("/files", `${files.length} files`, `hold ${total} bytes in all; at most ${MAX_FILES_BYTES}`);
  if (files.length && !usesInit) needsInit("/files", `${files.length} files`);

  if (s.startup !== undefined) {
    const bytes = Buffer.byteLength(s.startup, "utf8");
    if (bytes > MAX_STARTUP_BYTES)
      add("/startup", `${s.startup.slice(0, 40)}...`, `is ${bytes} bytes; at most ${MAX_STARTUP_BYTES}`);
    if (!usesInit) needsInit("/startup", `${s.startup.slice(0, 40)}`);
  }
  if (s.startupMustSucceed && s.startup === undefined)
    add("/startupMustSucceed", true, "needs a startup script");
  if (s.login !== undefined && !usesInit) needsInit("/login", `user ${s.login.user ?? "root"}`);
  const uid = s.runAs?.uid;
  if (uid !== undefined) {
    const pool = uidPool();
    if (uid < pool.from || uid > pool.to)
      add(
        "/runAs/uid",
        uid,
        pool.from > pool.to
          ? "needs a uid pool, and UMLFLEET_UID_POOL is not FROM-TO (at least 1000)"
          : `is outside the host's uid pool ${pool.from}-${pool.to} (UMLFLEET_UID_POOL); name a host account with runAs.user instead`,
      );
  }
  return problems;
}

export function networkFeatureProblems(s: NetworkSpec, roots: readonly string[]): FieldProblem[] {
  const problems: FieldProblem[] = [];
  if (s.capture) {
    const path = s.capture.path;
    if (!roots.some((r) => under(path, r)))
      problems.push({
        field: "/capture/path",
        value: path,
        message: `is outside the allowed capture folders (${roots.join(", ") || "none"}; set UMLFLEET_CAPTURE_DIRS to allow others)`,
      });
  }
  return problems;
}
