/**
 * A Network that spans hosts (`hosts: [a, b, c]`): one vde_switch of the
 * same name on each, joined in a star by cables from the first host to
 * each other one (docs/hosts.md: cables run on the hosts, so they outlive
 * `pulumi up`). `cable: "ssh"` (the default): over SSH with a key per cable
 * made on the first host and let in on the far one for one command only, so
 * they need no open port. `cable: "udp"`: a vde_plug on each end sending
 * frames as datagrams to the other, unencrypted, for trusted networks.
 */
import { createHash } from "node:crypto";
import { UmlfleetError } from "../src/errors";
import type { NetworkSpec } from "../src/spec";
import { cablesOn, driverFor, type HostRef } from "./driver-factory";

type Props = Record<string, unknown>;
export type SpanHost = HostRef & { stateDir: string };

export const CABLE_KINDS = ["ssh", "udp"] as const;
export type CableKind = (typeof CABLE_KINDS)[number];

/** The hosts of a spanning network's inputs, or undefined for a network on one host. */
export function spanHosts(props: Props): SpanHost[] | undefined {
  return Array.isArray(props.hosts) && props.hosts.length > 0 ? (props.hosts as SpanHost[]) : undefined;
}

/** Problems with `hosts`, before any step. */
export function spanProblems(hosts: unknown): string[] {
  if (!Array.isArray(hosts)) return ["must be a list of Hosts"];
  const out: string[] = [];
  if (hosts.length < 2) out.push(`a network across hosts needs at least 2 (got ${hosts.length})`);
  const ids = new Set<string>();
  hosts.forEach((h: Partial<SpanHost>, i) => {
    if (!h?.ssh)
      out.push(
        `/${i}: ${h?.hostId ?? "?"} is not a target host over ssh (the local host cannot take part yet)`,
      );
    else if (i > 0 && (!h.ssh.hostKey || !h.ssh.user))
      out.push(
        `/${i}: ${h.hostId}: a cable reaches it, so it needs ssh.user and ssh.hostKey (the cable pins the key)`,
      );
    if (h?.hostId && ids.has(`${h.hostId} ${h.stateDir}`)) out.push(`/${i}: ${h.hostId} is named twice`);
    ids.add(`${h?.hostId} ${h?.stateDir}`);
  });
  return out;
}

const on = (h: SpanHost) => ({
  host: { hostId: h.hostId, ...(h.ssh ? { ssh: h.ssh } : {}) },
  stateDir: h.stateDir,
});

/** The cable from the first host to `peer`: named by the network and the peer. */
export const cableName = (network: string, peer: SpanHost) =>
  `${network}-${createHash("sha256").update(`${peer.hostId} ${peer.stateDir}`).digest("hex").slice(0, 8)}`;

/** Make (or repair) every switch and cable; the outputs. Each switch is `owner`'s (src/host/owners.ts). */
export async function applySpan(
  hosts: SpanHost[],
  spec: NetworkSpec,
  signal: AbortSignal,
  owner?: string,
  kind: CableKind = "ssh",
): Promise<Props> {
  const switches = await Promise.all(
    hosts.map((h) => driverFor(on(h)).ensureNetwork(spec, { signal, owner })),
  );
  const [hub, ...peers] = hosts;
  const hubCables = await cablesOn(on(hub!));
  // Each cable at once: they share nothing but the first host's agent.
  const cables = await Promise.all(
    peers.map(async (peer) => {
      const name = cableName(spec.name, peer);
      const peerCables = await cablesOn(on(peer));
      const peerAt = peer.ssh!.host;
      let up: boolean;
      if (kind === "udp") {
        // The other kind's far end goes (a network switched from ssh keeps no key let in).
        await peerCables.removeEnd(name);
        // Both ends reserve a port first: each needs the other's to start.
        const hubEnd = await hubCables.reserve(name, peerAt);
        const peerEnd = await peerCables.reserve(name, hubEnd.address);
        await peerCables.ensure({
          name,
          network: spec.name,
          kind,
          peer: { host: hubEnd.address, port: hubEnd.port },
        });
        // To the address the peer's end listens on (its own, toward the hub): no NAT between them.
        const info = await hubCables.ensure({
          name,
          network: spec.name,
          kind,
          peer: { host: peerEnd.address, port: peerEnd.port },
        });
        up = info.up && ((await peerCables.info(name))?.up ?? false);
      } else {
        await peerCables.remove(name);
        const publicKey = await hubCables.prepare(name);
        await peerCables.allowEnd(name, spec.name, publicKey);
        const info = await hubCables.ensure({
          name,
          network: spec.name,
          peer: {
            host: peerAt,
            port: peer.ssh!.port ?? 22,
            user: peer.ssh!.user!,
            hostKey: peer.ssh!.hostKey!,
          },
        });
        up = info.up;
      }
      return { name, from: hub!.hostId, to: peer.hostId, kind, up };
    }),
  );
  return outputs(hosts, switches, cables);
}

function outputs(
  hosts: SpanHost[],
  switches: ({ switchDir: string; running: boolean; pid?: number } | undefined)[],
  cables: { name: string; from: string; to: string; kind: CableKind; up: boolean }[],
): Props {
  return {
    switchDir: switches[0]?.switchDir ?? "",
    running: switches.every((s) => s?.running) && cables.every((c) => c.up),
    switches: hosts.map((h, i) => ({
      hostId: h.hostId,
      switchDir: switches[i]?.switchDir ?? "",
      running: switches[i]?.running ?? false,
    })),
    cables,
  };
}

/** What the hosts have of it: a broken switch or cable (either end) reads as `running: false` (drift the next up repairs). */
export async function readSpan(hosts: SpanHost[], name: string): Promise<Props | undefined> {
  const switches = await Promise.all(hosts.map((h) => driverFor(on(h)).networkInfo(name)));
  if (switches.every((s) => !s)) return undefined;
  const [hub, ...peers] = hosts;
  const hubCables = await cablesOn(on(hub!));
  const cables = [];
  for (const peer of peers) {
    const c = cableName(name, peer);
    const info = await hubCables.info(c);
    const kind = info?.kind ?? "ssh";
    const up =
      (info?.up ?? false) && (kind !== "udp" || ((await (await cablesOn(on(peer))).info(c))?.up ?? false));
    cables.push({ name: c, from: hub!.hostId, to: peer.hostId, kind, up });
  }
  return outputs(hosts, switches, cables);
}

/** Remove the cables, then every switch (another stack's switch is refused: the cables are gone by then). */
export async function removeSpan(
  hosts: SpanHost[],
  name: string,
  signal: AbortSignal,
  owner?: string,
): Promise<void> {
  const [hub, ...peers] = hosts;
  // Another stack's switches (and so their cables) are left alone: checked before a cable goes.
  if (owner !== undefined)
    for (const h of hosts) {
      const owners = (await driverFor(on(h)).inventory({ signal })).owners?.networks?.[name];
      if (owners?.length && !owners.includes(owner))
        throw new UmlfleetError(
          "UMLFLEET_CONFLICT",
          `network ${JSON.stringify(name)} on ${h.hostId} belongs to stack ${owners.map((o) => JSON.stringify(o)).join(", ")}, not to ${JSON.stringify(owner)}; it is left as it is, cables included; to drop it from stack ${JSON.stringify(owner)} without touching the hosts, run \`pulumi state delete\` on its URN there`,
          { kind: "network", name, owners, owner, host: h.hostId },
        );
    }
  const hubCables = await cablesOn(on(hub!));
  for (const peer of peers) {
    const c = cableName(name, peer);
    await hubCables.remove(c);
    // The far end of either kind: an SSH cable's key let in, a UDP cable's own vde_plug.
    const peerCables = await cablesOn(on(peer));
    await peerCables.removeEnd(c);
    await peerCables.remove(c);
  }
  await Promise.all(hosts.map((h) => driverFor(on(h)).removeNetwork(name, { signal, owner })));
}
