import { execFileSync, spawnSync } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import {
  chmodSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { dirname, join, resolve } from "node:path";
import { killPids } from "../../src/process";
import { TEST_ROOT } from "./paths";

/**
 * Target hosts for tests, made on this machine: each one a network namespace
 * with a veth into a bridge in the root namespace (10.231.<k>.0/24, <k> one
 * free subnet per lab), Debian's sshd on its own address with its own host key,
 * and an unprivileged user with its own home and state folder whose
 * authorized key the lab generated. Needs root (ip netns, useradd).
 *
 * Every name carries `hostsTag()` (derived from the test root) so that the
 * suite's global teardown finds what a crashed test left (`leftoverHosts`).
 */

/**
 * The root of the package the agent runs from (the tests' checkout; readable by every user):
 * the nearest folder up with a package.json (this file also runs compiled, from dist/test/helpers, in the benchmarks).
 */
const PACKAGE_ROOT = packageRoot(__dirname);

function packageRoot(from: string): string {
  for (let d = from; d !== dirname(d); d = dirname(d))
    if (existsSync(join(d, "bin", "umlfleet-agent"))) return d;
  return resolve(from, "..", "..");
}
const SSHD = "/usr/sbin/sshd";

/** 3 hex digits naming this test root in every namespace, link and user a lab makes. */
export function hostsTag(root: string = TEST_ROOT): string {
  return createHash("sha256").update(root).digest("hex").slice(0, 3);
}

/** Why host tests cannot run here, or undefined when they can. */
export function hostsUnsupported(): string | undefined {
  if (process.getuid?.() !== 0) return "making network namespaces and users needs root";
  if (!existsSync(SSHD)) return "no sshd: apt-get install -y openssh-server";
  for (const tool of ["ip", "useradd", "ssh-keygen", "ssh"]) {
    if (spawnSync("sh", ["-c", `command -v ${tool}`]).status !== 0) return `no ${tool} on PATH`;
  }
  return undefined;
}

export interface HostOptions {
  /** Put `umlfleet-agent` on the user's PATH (default true): false makes a host without umlfleet. */
  agent?: boolean;
  /** Give the host a UML kernel ($UMLFLEET_KERNEL copied, default true): false makes a host without UML. */
  kernel?: boolean;
}

export interface NsHost {
  index: number;
  /** The network namespace. */
  netns: string;
  address: string;
  port: number;
  user: string;
  uid: number;
  home: string;
  /** The state folder the agent uses when none is given ($UMLFLEET_STATE_DIR). */
  stateDir: string;
  /** The host's public key, "ssh-ed25519 AAAA..." (what a Host resource pins). */
  hostKey: string;
  /** Where this host's sshd logs. */
  sshdLog: string;
  /** ssh's arguments up to (not including) the remote command. */
  sshArgs(): string[];
  /** Run a shell command as the host's user over ssh; its stdout. */
  ssh(command: string, opts?: { input?: string }): string;
}

export interface HostLab {
  dir: string;
  /** The client's private key file (root-only) authorized on every host. */
  privateKeyPath: string;
  privateKey: string;
  /** known_hosts pinning every host's key. */
  knownHostsPath: string;
  hosts: NsHost[];
  /** Remove every namespace, link, user, home, sshd and process; throws if anything is left. */
  teardown(): void;
}

const run = (file: string, args: string[], input?: string) =>
  execFileSync(file, args, { encoding: "utf8", stdio: ["pipe", "pipe", "pipe"], input });
const tryRun = (file: string, args: string[]) => spawnSync(file, args, { encoding: "utf8" });

/**
 * Give `bridge` a free 10.231.<k>.254/24 and return k. Test files run in
 * parallel: a lab made at the same moment may pick the same k, so the claim
 * is checked after the address is added and made again when another bridge
 * holds that subnet too (both back off and pick anew at random).
 */
function claimSubnet(bridge: string): number {
  for (let attempt = 0; attempt < 20; attempt++) {
    const used = run("ip", ["-o", "-4", "addr", "show"]);
    const candidates = Array.from({ length: 254 }, (_, i) => i + 1).filter(
      (k) => !used.includes(` 10.231.${k}.`),
    );
    if (candidates.length === 0) throw new Error("no free 10.231.<k>.0/24 subnet");
    const k = candidates[Math.floor(Math.random() * candidates.length)]!;
    run("ip", ["addr", "add", `10.231.${k}.254/24`, "dev", bridge]);
    const holders = run("ip", ["-o", "-4", "addr", "show"])
      .split("\n")
      .filter((l) => l.includes(` 10.231.${k}.`));
    if (holders.length === 1) return k;
    run("ip", ["addr", "del", `10.231.${k}.254/24`, "dev", bridge]);
  }
  throw new Error("could not claim a 10.231.<k>.0/24 subnet: other labs kept taking the same one");
}

function sshdConfig(h: {
  address: string;
  port: number;
  dir: string;
  user: string;
  path: string;
  env: string[];
}) {
  return [
    `ListenAddress ${h.address}:${h.port}`,
    `HostKey ${h.dir}/host_key`,
    `PidFile ${h.dir}/sshd.pid`,
    "UsePAM no",
    "PasswordAuthentication no",
    "KbdInteractiveAuthentication no",
    "PubkeyAuthentication yes",
    "AuthorizedKeysFile .ssh/authorized_keys",
    "PermitRootLogin no",
    `AllowUsers ${h.user}`,
    "X11Forwarding no",
    "AllowTcpForwarding no",
    "PrintMotd no",
    "LogLevel VERBOSE",
    "MaxStartups 50:30:100",
    "MaxSessions 50",
    // sshd's default PATH for sessions lacks the agent: SetEnv adds its folder.
    `SetEnv PATH=${h.path} ${h.env.join(" ")}`,
    "",
  ].join("\n");
}

/** Make `count` hosts (each with `options(i)`); call `teardown()` when done. */
export function makeHosts(count: number, options: (i: number) => HostOptions = () => ({})): HostLab {
  const why = hostsUnsupported();
  if (why) throw new Error(why);
  const tag = hostsTag();
  const id = randomBytes(3).toString("hex").slice(0, 4);
  const dir = join(TEST_ROOT, `h${id}`);
  const bridge = `uf${tag}${id}br`;
  const lab: HostLab = {
    dir,
    privateKeyPath: join(dir, "client_key"),
    privateKey: "",
    knownHostsPath: join(dir, "known_hosts"),
    hosts: [],
    teardown: () => teardownLab(dir, tag, id, lab.hosts),
  };
  try {
    mkdirSync(dir, { recursive: true, mode: 0o755 });
    chmodSync(dir, 0o755); // users walk through it to their homes
    // A record for the global teardown, should this process die before teardown.
    writeFileSync(join(dir, "lab.json"), JSON.stringify({ tag, id, count }));
    run("ssh-keygen", [
      "-q",
      "-t",
      "ed25519",
      "-N",
      "",
      "-C",
      `umlfleet-test-${id}`,
      "-f",
      lab.privateKeyPath,
    ]);
    lab.privateKey = readFileSync(lab.privateKeyPath, "utf8");
    const clientPub = readFileSync(`${lab.privateKeyPath}.pub`, "utf8");

    // The kernel the hosts boot: /root may be 0700, so the users get a readable copy.
    // umlfleet's patched kernel (Debian's cannot run guests on AMX hosts; docs/kernel.md).
    const kernelSrc =
      process.env.UMLFLEET_KERNEL ??
      run(join(PACKAGE_ROOT, "scripts", "build-kernel.sh"), [])
        .trim()
        .split("\n")
        .pop()!;
    const kernel = join(dir, "linux");
    copyFileSync(kernelSrc, kernel);
    chmodSync(kernel, 0o755);
    // The agent on PATH for hosts that have it: a link to this checkout's bin.
    mkdirSync(join(dir, "bin"));
    symlinkSync(join(PACKAGE_ROOT, "bin", "umlfleet-agent"), join(dir, "bin", "umlfleet-agent"));

    run("ip", ["link", "add", bridge, "type", "bridge"]);
    const subnet = claimSubnet(bridge);
    run("ip", ["link", "set", bridge, "up"]);
    if (!existsSync("/run/sshd")) mkdirSync("/run/sshd", { mode: 0o755 }); // sshd's privsep dir

    const known: string[] = [];
    for (let i = 1; i <= count; i++) {
      const opt = { agent: true, kernel: true, ...options(i) };
      const netns = `uf${tag}${id}-${i}`;
      const veth = `uf${tag}${id}v${i}`;
      const user = `umlf-h${i}-${tag}${id}`;
      const address = `10.231.${subnet}.${i}`;
      const hdir = join(dir, String(i));
      const home = join(hdir, "home");
      mkdirSync(hdir, { mode: 0o755 });
      chmodSync(hdir, 0o755);

      run("ip", ["netns", "add", netns]);
      run("ip", ["link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", netns]);
      run("ip", ["link", "set", veth, "master", bridge, "up"]);
      run("ip", ["-n", netns, "addr", "add", `${address}/24`, "dev", "eth0"]);
      run("ip", ["-n", netns, "link", "set", "eth0", "up"]);
      run("ip", ["-n", netns, "link", "set", "lo", "up"]);

      run("useradd", ["-M", "-d", home, "-s", "/bin/sh", "-c", `umlfleet test host ${id}/${i}`, user]);
      // "*": no password, but not locked ("!"), which sshd without PAM refuses.
      run("usermod", ["-p", "*", user]);
      const uid = Number(run("id", ["-u", user]).trim());
      mkdirSync(join(home, ".ssh"), { recursive: true, mode: 0o700 });
      writeFileSync(join(home, ".ssh", "authorized_keys"), clientPub, { mode: 0o600 });
      run("chown", ["-R", `${user}:${user}`, home]);
      chmodSync(home, 0o700);

      run("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", "", "-f", join(hdir, "host_key")]);
      const hostKey = readFileSync(join(hdir, "host_key.pub"), "utf8")
        .trim()
        .split(/\s+/)
        .slice(0, 2)
        .join(" ");
      known.push(`${address} ${hostKey}`);

      const stateDir = join(home, "s");
      // sshd's own PATH for non-interactive sessions (no /usr/sbin: the agent adds
      // it for mke2fs and debugfs, as on a real Debian host), plus the agent.
      const path = [...(opt.agent ? [join(dir, "bin")] : []), "/usr/local/bin", "/usr/bin", "/bin"].join(":");
      const env = [
        `UMLFLEET_STATE_DIR=${stateDir}`,
        `UMLFLEET_KERNEL=${opt.kernel ? kernel : join(hdir, "no-kernel")}`,
      ];
      writeFileSync(join(hdir, "sshd_config"), sshdConfig({ address, port: 22, dir: hdir, user, path, env }));
      const sshdLog = join(hdir, "sshd.log");
      run("ip", ["netns", "exec", netns, SSHD, "-f", join(hdir, "sshd_config"), "-E", sshdLog]);

      const host: NsHost = {
        index: i,
        netns,
        address,
        port: 22,
        user,
        uid,
        home,
        stateDir,
        hostKey,
        sshdLog,
        sshArgs: () => [
          "-i",
          lab.privateKeyPath,
          "-o",
          "IdentitiesOnly=yes",
          "-o",
          `UserKnownHostsFile=${lab.knownHostsPath}`,
          "-o",
          "StrictHostKeyChecking=yes",
          "-o",
          "BatchMode=yes",
          "-o",
          "ConnectTimeout=10",
          "-p",
          String(22),
          `${user}@${address}`,
        ],
        ssh: (command, o = {}) => run("ssh", [...host.sshArgs(), "--", command], o.input),
      };
      lab.hosts.push(host);
    }
    writeFileSync(lab.knownHostsPath, known.join("\n") + "\n");
    for (const h of lab.hosts) waitForSshd(h);
    return lab;
  } catch (e) {
    try {
      lab.teardown();
    } catch {
      /* the first error says more */
    }
    throw e;
  }
}

function waitForSshd(h: NsHost): void {
  const pidFile = join(h.sshdLog, "..", "sshd.pid");
  for (let i = 0; i < 100; i++) {
    if (existsSync(pidFile)) return;
    execFileSync("sleep", ["0.05"]);
  }
  throw new Error(`sshd of host ${h.index} did not start:\n${readIf(h.sshdLog)}`);
}

const readIf = (f: string) => (existsSync(f) ? readFileSync(f, "utf8") : "");

/** Pids of every process running as `uid`. */
function pidsOfUid(uid: number): number[] {
  const r = tryRun("pgrep", ["-U", String(uid)]);
  return r.stdout.split("\n").filter(Boolean).map(Number);
}

function pidsInNetns(netns: string): number[] {
  const r = tryRun("ip", ["netns", "pids", netns]);
  return r.status === 0 ? r.stdout.split("\n").filter(Boolean).map(Number) : [];
}

function killUntilGone(list: () => number[]): void {
  for (let i = 0; i < 200; i++) {
    const pids = list();
    if (pids.length === 0) return;
    killPids(pids);
    execFileSync("sleep", ["0.05"]);
  }
}

/** Remove what the lab `id` made, whether or not its hosts were all made. */
function teardownLab(dir: string, tag: string, id: string, hosts: NsHost[]): void {
  const users = listUsers(tag, id);
  const namespaces = listNetns(tag, id);
  // sshd first (no new sessions), then everything of the users and namespaces.
  for (const h of hosts) {
    const pidFile = join(dir, String(h.index), "sshd.pid");
    if (existsSync(pidFile)) killPids([Number(readFileSync(pidFile, "utf8").trim())]);
  }
  for (const ns of namespaces) killUntilGone(() => pidsInNetns(ns));
  for (const u of users) killUntilGone(() => pidsOfUid(u.uid));
  for (const ns of namespaces) tryRun("ip", ["netns", "del", ns]);
  for (const l of listLinks(tag, id)) tryRun("ip", ["link", "del", l]);
  for (const u of users) {
    tryRun("userdel", [u.name]);
    rmSync(`/var/mail/${u.name}`, { force: true });
  }
  rmSync(dir, { recursive: true, force: true });
  const left = leftoverHosts(tag, id);
  if (left.length > 0) throw new Error(`host lab ${id} left:\n${left.join("\n")}`);
}

const prefix = (tag: string, id = "") => `uf${tag}${id}`;

function listNetns(tag: string, id = ""): string[] {
  return run("ip", ["netns", "list"])
    .split("\n")
    .map((l) => l.split(" ")[0] ?? "")
    .filter((n) => n.startsWith(prefix(tag, id)));
}

function listLinks(tag: string, id = ""): string[] {
  return run("ip", ["-o", "link", "show"])
    .split("\n")
    .map((l) => l.split(":")[1]?.trim().split("@")[0] ?? "")
    .filter((n) => n.startsWith(prefix(tag, id)));
}

function listUsers(tag: string, id = ""): { name: string; uid: number }[] {
  return readFileSync("/etc/passwd", "utf8")
    .split("\n")
    .map((l) => l.split(":"))
    .filter((f) => new RegExp(`^umlf-h\\d+-${tag}${id}`).test(f[0] ?? ""))
    .map((f) => ({ name: f[0] ?? "", uid: Number(f[2]) }));
}

/**
 * What labs of this test root (or of lab `id`) left: namespaces, links, users
 * and their processes. The global teardown calls it with no id.
 */
export function leftoverHosts(tag: string = hostsTag(), id = ""): string[] {
  const users = listUsers(tag, id);
  return [
    ...listNetns(tag, id).map((n) => `netns ${n}`),
    ...listLinks(tag, id).map((n) => `link ${n}`),
    ...users.map((u) => `user ${u.name}`),
    ...users.flatMap((u) => pidsOfUid(u.uid).map((p) => `process ${p} of ${u.name}`)),
  ];
}

/** Global teardown: remove whatever labs of this test root left; what was found. */
export function sweepHosts(tag: string = hostsTag()): string[] {
  const found = leftoverHosts(tag);
  if (found.length === 0) return [];
  const users = listUsers(tag);
  const namespaces = listNetns(tag);
  for (const ns of namespaces) killUntilGone(() => pidsInNetns(ns));
  for (const u of users) killUntilGone(() => pidsOfUid(u.uid));
  for (const ns of namespaces) tryRun("ip", ["netns", "del", ns]);
  for (const l of listLinks(tag)) tryRun("ip", ["link", "del", l]);
  for (const u of users) tryRun("userdel", [u.name]);
  return found;
}
