import type { HostDriver } from "../host/driver";

/**
 * The wire between AgentClient and umlfleet-agent: one route per HostDriver
 * method, `POST /v1/<method>` with body `{args: [...], timeoutMs?}` (the
 * method's positional arguments but its CallOptions; schema/agent.json), and
 * `GET /v1/version`. Success is 200 `{result}` (`{}` for undefined); an error
 * is the status of its code (src/errors.ts STATUS_CODES) with body
 * `{statusCode, code, error, message, details}`.
 */
export const API_VERSION = 1;

/** The HostDriver methods that are routes (every method: the driver is all functions but stateDir). */
export type DriverMethod = Exclude<keyof HostDriver, "stateDir">;

/**
 * Whether a call may be sent again after the transport failed under it (the
 * connection dropped, the agent died): the agent may or may not have done it.
 * Every route converges (ensure*, remove*, start/stop, createInstance adopts
 * an instance that exists with its spec, updateInstance applied twice changes
 * nothing the second time, applyGroup), or only reads; the agent also aborts
 * and cleans up a call whose connection closed. The one exception is exec: a
 * script may not be idempotent, so it is never sent twice.
 */
/** `args`: how many positional arguments the method takes before its CallOptions. */
export const ROUTES: Record<DriverMethod, { idempotent: boolean; args: number }> = {
  hostFacts: { idempotent: true, args: 0 },
  inventory: { idempotent: true, args: 0 },
  ensureKernel: { idempotent: true, args: 1 },
  kernelInfo: { idempotent: true, args: 1 },
  ensureBase: { idempotent: true, args: 1 },
  baseInfo: { idempotent: true, args: 1 },
  removeBase: { idempotent: true, args: 1 },
  ensureDisk: { idempotent: true, args: 1 },
  diskInfo: { idempotent: true, args: 1 },
  removeDisk: { idempotent: true, args: 1 },
  ensureNetwork: { idempotent: true, args: 1 },
  networkInfo: { idempotent: true, args: 1 },
  removeNetwork: { idempotent: true, args: 1 },
  ensureSerialLink: { idempotent: true, args: 1 },
  serialLinkInfo: { idempotent: true, args: 1 },
  removeSerialLink: { idempotent: true, args: 1 },
  createInstance: { idempotent: true, args: 1 },
  planInstance: { idempotent: true, args: 1 },
  updateInstance: { idempotent: true, args: 1 },
  startInstance: { idempotent: true, args: 1 },
  stopInstance: { idempotent: true, args: 1 },
  removeInstance: { idempotent: true, args: 1 },
  instanceInfo: { idempotent: true, args: 1 },
  exec: { idempotent: false, args: 2 },
  applyGroup: { idempotent: true, args: 2 },
  removeGroup: { idempotent: true, args: 1 },
  groupInfo: { idempotent: true, args: 1 },
};

export const isDriverMethod = (m: string): m is DriverMethod => Object.hasOwn(ROUTES, m);

/** What GET /v1/version answers. */
export interface VersionInfo {
  version: string;
  api: number;
  stateDir: string;
}

/** A request body larger than this is refused with 413 (specs are a few KiB). */
export const MAX_BODY_BYTES = 1024 * 1024;
