import { UmlfleetError } from "../errors";
import { allowCableEnd, CABLE_NAME, Cables, removeCableEnd, type CableSpec } from "../host/cables";
import type { HostDriver } from "../host/driver";
import { findOnPath } from "../host/sandbox";
import { StateDir } from "../host/state";

/**
 * Cables of networks that span hosts (src/host/cables.ts), beside the
 * HostDriver routes: POST /v1/cables/{prepare,reserve,ensure,info,remove} on
 * a host that runs a cable end (SSH: the first host; UDP: both), POST
 * /v1/cable-ends/{allow,remove} on the host an SSH cable's far end plugs
 * into. Every body is checked here before any side effect.
 */
export const CABLE_PREFIXES = ["/v1/cables/", "/v1/cable-ends/"];

const HOST = /^[A-Za-z0-9][A-Za-z0-9.:-]{0,252}$/;
const USER = /^[a-z_][a-z0-9_-]{0,31}$/;
const NETWORK = /^[a-z][a-z0-9-]{0,31}$/;
const PUBLIC_KEY = /^(ssh-ed25519|ssh-rsa|ecdsa-sha2-nistp(256|384|521)) [A-Za-z0-9+/]+={0,3}$/;

function field(body: Record<string, unknown>, name: string, re: RegExp): string {
  const v = body[name];
  if (typeof v !== "string" || !re.test(v))
    throw new UmlfleetError(
      "UMLFLEET_INVALID_SPEC",
      `cable/${name}: must match ${re.source} (got ${JSON.stringify(v)?.slice(0, 80)})`,
      {
        field: `/${name}`,
      },
    );
  return v;
}

export async function handleCable(
  driver: HostDriver,
  path: string,
  body: Record<string, unknown>,
): Promise<unknown> {
  const cables = new Cables(new StateDir(driver.stateDir), () => undefined);
  const switchOf = async (network: string) => {
    const n = await driver.networkInfo(network);
    if (!n?.running)
      throw new UmlfleetError(
        "UMLFLEET_NOT_FOUND",
        `network ${JSON.stringify(network)} is not running on this host`,
        {
          field: "network",
          value: network,
        },
      );
    return n.switchDir;
  };
  const name = field(body, "name", CABLE_NAME);
  switch (path) {
    case "/v1/cables/prepare":
      return { publicKey: await cables.prepare(name) };
    case "/v1/cables/reserve":
      return cables.reserve(name, field(body, "peerHost", HOST));
    case "/v1/cables/info":
      return cables.info(name);
    case "/v1/cables/remove":
      return cables.remove(name);
    case "/v1/cables/ensure": {
      const network = field(body, "network", NETWORK);
      const kind = body.kind ?? "ssh";
      if (kind !== "ssh" && kind !== "udp")
        throw new UmlfleetError(
          "UMLFLEET_INVALID_SPEC",
          `cable/kind: "ssh" or "udp" (got ${JSON.stringify(kind)?.slice(0, 80)})`,
          { field: "/kind" },
        );
      const peer = body.peer as Record<string, unknown> | undefined;
      if (!peer || typeof peer !== "object")
        throw new UmlfleetError(
          "UMLFLEET_INVALID_SPEC",
          `cable/peer: must be an object {host, port${kind === "ssh" ? ", user, hostKey" : ""}}`,
          { field: "/peer" },
        );
      const port = peer.port;
      if (typeof port !== "number" || !Number.isInteger(port) || port < 1 || port > 65535)
        throw new UmlfleetError(
          "UMLFLEET_INVALID_SPEC",
          `cable/peer/port: an integer 1-65535 (got ${JSON.stringify(port)})`,
          { field: "/peer/port" },
        );
      const host = field(peer, "host", HOST);
      const spec: CableSpec =
        kind === "udp"
          ? { name, network, kind, peer: { host, port } }
          : {
              name,
              network,
              peer: {
                host,
                port,
                user: field(peer, "user", USER),
                hostKey: field(peer, "hostKey", PUBLIC_KEY),
              },
            };
      const switchDir = await switchOf(network);
      return new Cables(new StateDir(driver.stateDir), () => switchDir).ensure(spec);
    }
    case "/v1/cable-ends/allow": {
      const network = field(body, "network", NETWORK);
      const publicKey = field(body, "publicKey", PUBLIC_KEY);
      allowCableEnd(driver.stateDir, name, publicKey, await switchOf(network), findOnPath("vde_plug"));
      return undefined;
    }
    case "/v1/cable-ends/remove":
      removeCableEnd(driver.stateDir, name);
      return undefined;
    default:
      throw new UmlfleetError("UMLFLEET_UNKNOWN_ROUTE", `no such route: ${path.slice(0, 100)}`, {
        route: path.slice(0, 100),
      });
  }
}
