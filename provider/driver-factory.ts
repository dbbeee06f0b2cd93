/**
 * Where the provider gets a HostDriver for a resource: the only file in
 * provider/ that knows how hosts are reached. A resource without `host.ssh`
 * lives on the machine running the provider (LocalRuntime over its
 * `stateDir`); one with `host.ssh` on a target host, through an AgentClient
 * over the system ssh (src/client): one client (one SSH master connection)
 * per host and state folder per provider process, closed when it exits.
 */
import { createHash } from "node:crypto";
import { lstatSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { AgentClient, sshTransport, type Transport } from "../src/client";
import { deleteBlob, uploadBlob } from "../src/client/blobs";
import { cableCalls, type CableCalls } from "../src/client/cables";
import type { HostDriver } from "../src/host/driver";
import { LocalRuntime } from "../src/host/runtime";
import { StateDir } from "../src/host/state";
import { identify, isAlive, type ProcessIdentity } from "../src/process";
import type { HostSpec } from "../src/spec.generated";
import { SpecValidator } from "../src/validation";

/** Pulumi's placeholder for values not known until apply (preview). */
export const UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9";

export type SshSpec = NonNullable<HostSpec["ssh"]>;

/** What a resource's `host` input holds: a Host resource's identity and how to reach it. */
export interface HostRef {
  hostId: string;
  ssh?: SshSpec;
}

const validator = new SpecValidator();
const drivers = new Map<string, HostDriver>();
let makeDriver = (stateDir: string): HostDriver => new LocalRuntime({ stateDir }, validator);

/** The `ssh` of a resource's `host` input, when it names a target host (and is known). */
export function sshOf(props: { host?: unknown }): SshSpec | undefined {
  const h = props.host as Partial<HostRef> | undefined;
  return h && typeof h === "object" && h.ssh && typeof h.ssh === "object" ? h.ssh : undefined;
}

/** "local", or ssh://user@host:port: what identifies a host in messages and state. */
export function hostIdOf(ssh: SshSpec | undefined): string {
  if (!ssh) return "local";
  const host = ssh.host.includes(":") ? `[${ssh.host}]` : ssh.host;
  return `ssh://${ssh.user ? `${ssh.user}@` : ""}${host}:${ssh.port ?? 22}`;
}

/** The driver for a resource's inputs (or old outputs): one per host and state folder per provider process. */
export function driverFor(props: { stateDir?: unknown; host?: unknown }): HostDriver {
  const dir = typeof props.stateDir === "string" && props.stateDir !== UNKNOWN ? props.stateDir : undefined;
  const ssh = sshOf(props);
  if (ssh) return remoteDriver(ssh, dir);
  const local = dir ?? StateDir.defaultRoot();
  let d = drivers.get(local);
  if (!d) {
    d = makeDriver(local);
    drivers.set(local, d);
  }
  return d;
}

/** The agent's umlfleet version and state folder on a target host (connecting if need be). */
export async function remoteVersion(
  ssh: SshSpec,
  stateDir?: string,
): Promise<{ version: string; stateDir: string }> {
  const c = await remoteClient(ssh, stateDir);
  return { version: c.version.version, stateDir: c.version.stateDir };
}

/** The connected transport of a resource's target host. */
async function transportFor(props: { stateDir?: unknown; host?: unknown }): Promise<Transport> {
  const ssh = sshOf(props);
  if (!ssh) throw new Error("not a target host");
  const dir = typeof props.stateDir === "string" && props.stateDir !== UNKNOWN ? props.stateDir : undefined;
  await remoteClient(ssh, dir);
  return remotes.get(remoteKey(ssh, dir))!.transport;
}

/**
 * Send a file of the machine running the provider to a resource's target
 * host by content (sha256); its path there. Sent once per host: a file that
 * is there already is not sent again.
 */
export async function uploadFile(
  props: { stateDir?: unknown; host?: unknown },
  localPath: string,
): Promise<{ path: string; sha256: string }> {
  return uploadBlob(await transportFor(props), localPath);
}

/** Forget an uploaded file on a resource's target host. */
export async function removeUploaded(
  props: { stateDir?: unknown; host?: unknown },
  sha256: string,
): Promise<void> {
  await deleteBlob(await transportFor(props), sha256);
}

/** The cable routes of a resource's target host (src/agent/cables-route.ts). */
export async function cablesOn(props: { stateDir?: unknown; host?: unknown }): Promise<CableCalls> {
  return cableCalls(await transportFor(props));
}

/**
 * Tests only: serve every state folder with `factory` (a fake driver), or
 * LocalRuntime again when undefined. Drivers made so far are forgotten.
 */
export function useDriverFactory(factory?: (stateDir: string) => HostDriver): void {
  drivers.clear();
  makeDriver = factory ?? ((stateDir) => new LocalRuntime({ stateDir }, validator));
}

/** The state folder a resource that names none lives in (the local host's default). */
export function defaultStateDir(): string {
  return StateDir.defaultRoot();
}

// ---- target hosts ----------------------------------------------------------------

interface Remote {
  client: Promise<AgentClient>;
  transport: Transport;
  /** The private folder of the key file given to ssh, if any. */
  keyDir?: string;
}
const remotes = new Map<string, Remote>();

/**
 * Which client serves `ssh` and `stateDir`: everything that changes the
 * connection, the private key by hash only (never kept in clear here).
 */
function remoteKey(ssh: SshSpec, stateDir: string | undefined): string {
  const { privateKey, ...rest } = ssh;
  const keyHash = privateKey ? createHash("sha256").update(privateKey).digest("hex") : "";
  return JSON.stringify({ ...rest, keyHash, stateDir: stateDir ?? ssh.stateDir ?? "" });
}

function remoteClient(ssh: SshSpec, stateDir: string | undefined): Promise<AgentClient> {
  const key = remoteKey(ssh, stateDir);
  let r = remotes.get(key);
  if (!r) {
    const keyDir = ssh.privateKey ? writeKey(ssh.privateKey) : undefined;
    const transport = sshTransport({
      host: ssh.host,
      ...(ssh.port ? { port: ssh.port } : {}),
      ...(ssh.user ? { user: ssh.user } : {}),
      ...(keyDir ? { privateKeyPath: join(keyDir, "key") } : {}),
      ...(ssh.hostKey ? { hostKey: ssh.hostKey } : {}),
      ...(ssh.insecureIgnoreHostKey ? { insecureIgnoreHostKey: true } : {}),
      ...(ssh.connectTimeoutMs ? { connectTimeoutMs: ssh.connectTimeoutMs } : {}),
      ...(ssh.agentCommand ? { agentCommand: [...ssh.agentCommand] } : {}),
      ...((stateDir ?? ssh.stateDir) ? { stateDir: stateDir ?? ssh.stateDir } : {}),
    });
    const client = AgentClient.connect(transport).then(
      (c) => {
        // An agent started without a state folder serves its default one: the
        // same client serves that folder named (a Host asks the agent which
        // it is, then its resources name it: one connection, not two).
        const named = remoteKey(ssh, c.version.stateDir);
        if (!remotes.has(named)) remotes.set(named, r!);
        return c;
      },
      async (e: unknown) => {
        // Not cached: the next call tries again (the host may be fixed meanwhile).
        remotes.delete(key);
        await transport.close().catch(() => undefined);
        if (keyDir) rmSync(keyDir, { recursive: true, force: true });
        throw e;
      },
    );
    r = { client, transport, ...(keyDir ? { keyDir } : {}) };
    remotes.set(key, r);
  }
  return r.client;
}

/**
 * The private key, for the ssh process only: a 0600 file in a fresh 0700
 * folder, removed when the client closes or this process exits. ssh needs it
 * again if its master connection must be made anew, so it lives as long as
 * the client. Its path and content never reach a message.
 */
function writeKey(privateKey: string): string {
  sweepStaleKeys();
  const dir = mkdtempSync(join(tmpdir(), KEY_PREFIX));
  // Whose it is: a provider killed outright (Pulumi ends plugins so) runs no
  // exit handler; the next one removes the folders of dead owners.
  writeFileSync(join(dir, "owner"), JSON.stringify(identify(process.pid)));
  writeFileSync(join(dir, "key"), privateKey.endsWith("\n") ? privateKey : `${privateKey}\n`, {
    mode: 0o600,
  });
  return dir;
}

const KEY_PREFIX = "umlfleet-key-";

/** Remove key folders whose provider process is gone (measured: killed providers left one per host per run). */
export function sweepStaleKeys(): void {
  let names: string[] = [];
  try {
    names = readdirSync(tmpdir()).filter((n) => n.startsWith(KEY_PREFIX));
  } catch {
    return;
  }
  for (const name of names) {
    const dir = join(tmpdir(), name);
    try {
      if (lstatSync(dir).uid !== process.getuid?.()) continue;
      const owner = JSON.parse(readFileSync(join(dir, "owner"), "utf8")) as ProcessIdentity;
      if (!isAlive(owner)) rmSync(dir, { recursive: true, force: true });
    } catch {
      /* being made right now, or not ours: leave it */
    }
  }
}

/**
 * A driver for a target host whose connection is made at its first call
 * (driverFor is synchronous; connecting is not).
 */
function remoteDriver(ssh: SshSpec, stateDir: string | undefined): HostDriver {
  return new Proxy({} as HostDriver, {
    get(_t, method: string) {
      if (method === "stateDir") return stateDir ?? ssh.stateDir ?? "";
      if (method === "then") return undefined; // not a promise
      return async (...args: unknown[]) => {
        const c = (await remoteClient(ssh, stateDir)) as unknown as Record<
          string,
          ((...a: unknown[]) => Promise<unknown>) | undefined
        >;
        const fn = c[method];
        if (typeof fn !== "function") throw new TypeError(`HostDriver has no method ${method}`);
        return fn.apply(c, args);
      };
    },
  });
}

/** Close every client this process made (their ssh masters) and remove their key files. */
export async function closeRemotes(): Promise<void> {
  // A client may be known by two keys (its agent's default state folder, named or not).
  const all = [...new Set(remotes.values())];
  remotes.clear();
  await Promise.all(
    all.map(async (r) => {
      await r.client.then((c) => c.close()).catch(() => undefined);
      if (r.keyDir) rmSync(r.keyDir, { recursive: true, force: true });
    }),
  );
}

// The key files go with this process, however it ends (the watchdog exits it).
process.once("exit", () => {
  for (const r of new Set(remotes.values())) {
    void r.client.then((c) => c.close()).catch(() => undefined);
    if (r.keyDir) rmSync(r.keyDir, { recursive: true, force: true });
  }
});
