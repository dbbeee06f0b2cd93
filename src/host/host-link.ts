import { existsSync, readFileSync } from "node:fs";
import { UmlfleetError } from "../errors";
import { parseCidr } from "../net-address";
import type { HostInterfaceSpec } from "../spec";
import { run } from "../process";

/**
 * The host's own end of a network: a TAP interface that the network's
 * vde_switch attaches to (`vde_switch -t <tap>`). The tap is persistent and
 * owned by the user running umlfleet, so the switch, in its sandbox without
 * capabilities, may attach to it (drivers/net/tun.c: a tap's owner needs no
 * CAP_NET_ADMIN). Making a tap, giving it an address and bringing it up do
 * need CAP_NET_ADMIN: umlfleet does them when it has it (e.g. as root), and
 * otherwise uses a tap that root made for the user once. What umlfleet made,
 * it removes with the network, so destroying leaves the host as it was.
 */
export interface HostLinkRecord {
  name: string;
  /** umlfleet made the tap: it is deleted with the network. */
  created: boolean;
  /** The address umlfleet added to a tap it did not make: removed with the network. */
  addressAdded?: string;
}

/** CAP_NET_ADMIN (bit 12) in this process's effective set. */
export function hasNetAdmin(status = safeRead("/proc/self/status")): boolean {
  const hex = /^CapEff:\s*([0-9a-f]+)$/m.exec(status)?.[1];
  return hex !== undefined && ((BigInt(`0x${hex}`) >> 12n) & 1n) === 1n;
}

const uid = () => process.getuid?.() ?? 0;

/** The commands root runs once so that a user without CAP_NET_ADMIN can have this host link. */
export function rootSetup(spec: HostInterfaceSpec, user = uid()): string {
  return [
    `ip tuntap add dev ${spec.name} mode tap user ${user}`,
    ...(spec.ipv4 ? [`ip addr add ${spec.ipv4} dev ${spec.name}`] : []),
    `ip link set ${spec.name} up`,
  ].join(" && ");
}

interface TapFacts {
  exists: boolean;
  isTap: boolean;
  owner: number;
  up: boolean;
  ipv4: string[];
}

async function tapFacts(name: string): Promise<TapFacts> {
  const dir = `/sys/class/net/${name}`;
  if (!existsSync(dir)) return { exists: false, isTap: false, owner: -1, up: false, ipv4: [] };
  // tun_flags exists for tun and tap devices only; IFF_TAP is 0x0002.
  const flags = safeRead(`${dir}/tun_flags`);
  const isTap = flags !== "" && (parseInt(flags, 16) & 0x2) !== 0;
  const owner = Number(safeRead(`${dir}/owner`).trim() || "-1");
  const up = (parseInt(safeRead(`${dir}/flags`) || "0", 16) & 0x1) !== 0;
  const r = await run("ip", ["-j", "-4", "addr", "show", "dev", name], {
    timeoutMs: 10_000,
    allowFailure: true,
  });
  let ipv4: string[] = [];
  try {
    const parsed = JSON.parse(r.stdout || "[]") as { addr_info?: { local: string; prefixlen: number }[] }[];
    ipv4 = parsed.flatMap((i) => (i.addr_info ?? []).map((a) => `${a.local}/${a.prefixlen}`));
  } catch {
    /* no JSON: no address we can see */
  }
  return { exists: true, isTap, owner, up, ipv4 };
}

/**
 * Check that this host can give `network` its host link, before anything is
 * made: the name is free or a tap this user may attach to, no other network
 * of the state folder uses it, and what must be made or set can be (else
 * UMLFLEET_PERMISSION_DENIED with the commands root runs once).
 */
export async function checkHostLink(
  network: string,
  spec: HostInterfaceSpec,
  others: readonly { network: string; hostInterface?: HostInterfaceSpec }[],
  netAdmin = hasNetAdmin(),
): Promise<void> {
  const field = "/hostInterface/name";
  const taken = others.find((o) => o.network !== network && o.hostInterface?.name === spec.name);
  if (taken)
    throw new UmlfleetError(
      "UMLFLEET_CONFLICT",
      `network/${network}${field}: ${JSON.stringify(spec.name)} is network ${taken.network}'s host link`,
      { field, value: spec.name },
    );
  const t = await tapFacts(spec.name);
  if (t.exists && !t.isTap)
    throw new UmlfleetError(
      "UMLFLEET_CONFLICT",
      `network/${network}${field}: the host has an interface ${JSON.stringify(spec.name)} that is not a tap; name another`,
      { field, value: spec.name },
    );
  if (t.exists && t.owner !== -1 && t.owner !== uid() && !netAdmin)
    throw new UmlfleetError(
      "UMLFLEET_PERMISSION_DENIED",
      `network/${network}${field}: tap ${spec.name} belongs to uid ${t.owner}, not to this user (uid ${uid()})`,
      { field, value: spec.name },
    );
  const hasAddress = !spec.ipv4 || t.ipv4.includes(spec.ipv4);
  if (!netAdmin && (!t.exists || !hasAddress || !t.up)) {
    const what = !t.exists
      ? `there is no tap ${spec.name}`
      : !hasAddress
        ? `tap ${spec.name} lacks ${spec.ipv4}`
        : `tap ${spec.name} is down`;
    throw new UmlfleetError(
      "UMLFLEET_PERMISSION_DENIED",
      `network/${network}/hostInterface: ${what}, and making or setting it needs CAP_NET_ADMIN, which this process lacks ` +
        `(run as root, or have root run once: ${rootSetup(spec)})`,
      { field: "/hostInterface", value: spec },
    );
  }
  if (spec.ipv4) {
    const want = parseCidr(spec.ipv4);
    const clash = t.ipv4.find((a) => a !== spec.ipv4 && parseCidr(a)?.value === want?.value);
    if (clash)
      throw new UmlfleetError(
        "UMLFLEET_CONFLICT",
        `network/${network}/hostInterface/ipv4: tap ${spec.name} has ${clash}, not ${spec.ipv4}`,
        { field: "/hostInterface/ipv4", value: spec.ipv4 },
      );
  }
}

/** Make (or adopt) the tap, give it its address, bring it up. checkHostLink first. `previous`: the record of the switch's last start. */
export async function openHostLink(
  spec: HostInterfaceSpec,
  previous?: HostLinkRecord,
): Promise<HostLinkRecord> {
  const t = await tapFacts(spec.name);
  // A switch started again (repaired) keeps what its first start made, to undo it at the end.
  const rec: HostLinkRecord = {
    name: spec.name,
    created: !t.exists || previous?.created === true,
    ...(previous?.addressAdded ? { addressAdded: previous.addressAdded } : {}),
  };
  const ip = (...args: string[]) => run("ip", args, { timeoutMs: 10_000 });
  try {
    if (!t.exists) await ip("tuntap", "add", "dev", spec.name, "mode", "tap", "user", String(uid()));
    if (spec.ipv4 && !t.ipv4.includes(spec.ipv4)) {
      await ip("addr", "add", spec.ipv4, "dev", spec.name);
      if (!rec.created) rec.addressAdded = spec.ipv4;
    }
    if (!t.up) await ip("link", "set", spec.name, "up");
  } catch (e) {
    await closeHostLink(rec);
    throw e;
  }
  return rec;
}

/** Undo what openHostLink did: delete a tap it made, or remove the address it added. Best effort. */
export async function closeHostLink(rec: HostLinkRecord): Promise<void> {
  const ip = (...args: string[]) => run("ip", args, { timeoutMs: 10_000, allowFailure: true });
  if (rec.created) {
    if (existsSync(`/sys/class/net/${rec.name}`)) await ip("link", "del", rec.name);
  } else if (rec.addressAdded) await ip("addr", "del", rec.addressAdded, "dev", rec.name);
}

function safeRead(path: string): string {
  try {
    return readFileSync(path, "utf8");
  } catch {
    return "";
  }
}
