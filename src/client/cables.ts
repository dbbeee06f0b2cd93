import type { CableInfo, CableSpec, UdpEndpoint } from "../host/cables";
import { rawCall } from "./blobs";
import type { Transport } from "./transport";

/** The cable routes of an agent (src/agent/cables-route.ts). */
export const cableCalls = (t: Transport) => ({
  prepare: async (name: string) =>
    (await rawCall<{ publicKey: string }>(t, "POST", "/v1/cables/prepare", { json: { name } }))!.publicKey,
  reserve: async (name: string, peerHost: string) =>
    (await rawCall<UdpEndpoint>(t, "POST", "/v1/cables/reserve", { json: { name, peerHost } }))!,
  ensure: async (spec: CableSpec) =>
    (await rawCall<CableInfo>(t, "POST", "/v1/cables/ensure", { json: spec }))!,
  info: (name: string) => rawCall<CableInfo>(t, "POST", "/v1/cables/info", { json: { name } }),
  remove: async (name: string) => {
    await rawCall(t, "POST", "/v1/cables/remove", { json: { name } });
  },
  allowEnd: async (name: string, network: string, publicKey: string) => {
    await rawCall(t, "POST", "/v1/cable-ends/allow", { json: { name, network, publicKey } });
  },
  removeEnd: async (name: string) => {
    await rawCall(t, "POST", "/v1/cable-ends/remove", { json: { name } });
  },
});
export type CableCalls = ReturnType<typeof cableCalls>;
