import { execFile, execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import { promisify } from "node:util";
import {
  cpSync,
  existsSync,
  mkdirSync,
  readdirSync,
  lstatSync,
  readFileSync,
  renameSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { sweepStaleKeys } from "../../provider/driver-factory";
import { hostsUnsupported, makeHosts, type HostLab, type NsHost } from "../helpers/hosts";
import { isAlive, killPids, type ProcessIdentity } from "../../src/process";
import { processesMentioning } from "../helpers/runtime";
import { haveCli, type Result } from "./stack-harness";
import { pulumiBinDir } from "../../automation/local-stack";

const ROOT = resolve(__dirname, "..", "..");
const DRIVER = join(__dirname, "fixtures", "hosts-driver.js");
const UMLFLEET = join(ROOT, "bin", "umlfleet");

/** Every regular file under `dir` (symlinks not followed: the workspace links to node_modules). */
function filesUnder(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = join(dir, e.name);
    if (e.isDirectory()) return filesUnder(p);
    return e.isFile() && lstatSync(p).isFile() ? [p] : [];
  });
}

/**
 * One Pulumi program (the real CLI) with guests on three target hosts
 * (network namespaces with sshd, test/helpers/hosts.ts) and one network
 * spanning them.
 */
describe.skipIf(!haveCli || hostsUnsupported() !== undefined)("a stack on three target hosts", () => {
  let lab: HostLab;
  let backendDir: string;
  let otherAgent: string;
  /** The driver's stdout and stderr of every pulumi command this file runs (the CLI's output and errors). */
  const cliOutputs: { action: string; text: string }[] = [];
  beforeAll(() => {
    lab = makeHosts(3);
    backendDir = join(lab.dir, "backend");
    mkdirSync(backendDir);
    // Another umlfleet version for the mismatch case: this package, saying so.
    const other = join(lab.dir, "other");
    mkdirSync(other);
    for (const d of ["bin", "dist", "schema"]) cpSync(join(ROOT, d), join(other, d), { recursive: true });
    symlinkSync(join(ROOT, "node_modules"), join(other, "node_modules"));
    const pkg = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")) as { version: string };
    writeFileSync(join(other, "package.json"), JSON.stringify({ ...pkg, version: "0.0.1-other" }));
    otherAgent = join(other, "bin", "umlfleet-agent");
  });
  afterAll(async () => {
    try {
      await pulumi("destroy");
    } finally {
      lab?.teardown();
      // Pulumi kills its provider processes: their key folders are left for
      // the next provider to sweep. This test is that next one.
      sweepStaleKeys();
      // Key folders left now must belong to live providers (another test's), never a dead one.
      const left = readdirSync(tmpdir()).filter((n) => {
        if (!n.startsWith("umlfleet-key-")) return false;
        try {
          return !isAlive(JSON.parse(readFileSync(join(tmpdir(), n, "owner"), "utf8")) as ProcessIdentity);
        } catch {
          return true; // no owner record: not one a provider made
        }
      });
      expect(left, "key folders of dead providers").toEqual([]);
    }
  });

  // Async: a run takes minutes, and a blocked worker misses vitest's calls.
  async function pulumi(action: string, variant?: string): Promise<Result> {
    const cfg = {
      action,
      backendDir,
      privateKey: lab.privateKey,
      hosts: lab.hosts.map((h) => ({
        host: h.address,
        user: h.user,
        hostKey: h.hostKey,
        kernel: join(lab.dir, "linux"),
      })),
      ...(variant ? { variant, otherAgent } : {}),
    };
    const label = `${action}${variant ? ` (${variant})` : ""}`;
    let out: string;
    try {
      const r = await promisify(execFile)("node", [DRIVER, JSON.stringify(cfg)], {
        encoding: "utf8",
        timeout: 900_000,
        maxBuffer: 64 << 20,
      });
      out = r.stdout;
      cliOutputs.push({ action: label, text: `${r.stdout}\n${r.stderr}` });
    } catch (e) {
      const { stdout = "", stderr = "" } = e as { stdout?: string; stderr?: string };
      cliOutputs.push({ action: label, text: `${stdout}\n${stderr}` });
      throw e;
    }
    const line = out.split("\n").find((l) => l.startsWith("@@RESULT "));
    if (!line) throw new Error(`driver printed no result:\n${out}`);
    return JSON.parse(line.slice("@@RESULT ".length)) as Result;
  }
  const ok = (r: Result) => {
    if (r.error) throw new Error(`${r.error}\n${r.stdout}`);
    return r;
  };
  /**
   * Nothing of the stack on a host: no process of its user but sshd's
   * sessions and the agent serving them, none naming its state folder but
   * the provider's own ssh, no file or socket there, no cable key.
   */
  const leftOn = (h: NsHost) => ({
    processes: [
      // Zombies are gone but for their reaping (this container's pid 1 reaps late, or never).
      ...userProcesses(h).filter(
        (p) => !/^\d+ (sshd: |\S*node \S*umlfleet-agent dial-stdio)/.test(p) && !p.endsWith("<defunct>"),
      ),
      ...processesMentioning(h.stateDir).filter((p) => !/^\d+ \S*ssh .*umlfleet-agent dial-stdio/.test(p)),
    ],
    files: h
      .ssh(`test ! -d ${h.stateDir} || find ${h.stateDir} -mindepth 2 \\( -type f -o -type s \\) -print`)
      .trim(),
    cableKeys: h.ssh("grep -c umlfleet-cable ~/.ssh/authorized_keys || true").trim(),
  });
  const userProcesses = (h: NsHost) =>
    execFileSync("sh", ["-c", `pgrep -a -U ${h.uid} || true`], { encoding: "utf8" })
      .trim()
      .split("\n")
      .filter(Boolean);
  const ping = (from: NsHost, guest: string, ip: string) =>
    from.ssh(`${UMLFLEET} exec ${guest} -- ping -c 2 -W 5 ${ip} >/dev/null 2>&1; echo $?`).trim();
  /** Write a random token to a file on a guest's root disk (its overlay) and sync; the token. */
  const writeToken = (h: NsHost, guest: string) => {
    const token = randomBytes(12).toString("hex");
    h.ssh(`${UMLFLEET} exec ${guest} -- 'echo ${token} > /umlfleet-token && sync'`);
    return token;
  };
  const readToken = (h: NsHost, guest: string) =>
    h.ssh(`${UMLFLEET} exec ${guest} -- 'cat /umlfleet-token'`).trim();

  it("fails preview or up with a clear message and creates nothing, for each broken host", async () => {
    const cases: [string, RegExp][] = [
      ["wrongHostKey", /UMLFLEET_HOST_KEY_MISMATCH/],
      ["wrongUser", /UMLFLEET_HOST_AUTH_FAILED/],
      ["noAgent", /UMLFLEET_AGENT_MISSING/],
      ["otherVersion", /UMLFLEET_VERSION_MISMATCH.*0\.0\.1-other/s],
    ];
    for (const [variant, message] of cases) {
      const preview = await pulumi("preview", variant);
      expect(preview.error, variant).toBeDefined();
      expect(`${preview.error}\n${preview.stdout}`, variant).toMatch(message);
      const r = await pulumi("up", variant);
      expect(r.error, variant).toBeDefined();
      expect(`${r.error}\n${r.stdout}`, variant).toMatch(message);
      expect(`${r.error} ${r.stdout} ${preview.error} ${preview.stdout}`).not.toContain("PRIVATE KEY");
      // Nothing made: no switch, guest or cable on any host.
      for (const h of lab.hosts) expect(leftOn(h).processes, `${variant} on host ${h.index}`).toEqual([]);
      ok(await pulumi("destroy"));
    }
  });

  it("boots guests on three hosts on one network; a guest on A pings B and C; a second preview changes nothing", async () => {
    const up = ok(await pulumi("up"));
    expect(up.outputs?.states).toEqual(["running", "running", "running"]);
    expect(up.outputs?.versions).toEqual([expect.any(String), expect.any(String), expect.any(String)]);
    const [a] = lab.hosts;
    expect(ping(a, "g0", "10.0.0.2")).toBe("0");
    expect(ping(a, "g0", "10.0.0.3")).toBe("0");
    const again = ok(await pulumi("preview"));
    expect(Object.keys(again.summary ?? {}).filter((k) => k !== "same")).toEqual([]);
    // Hosts already in the stack are not probed again, but still connected to: with the agent gone
    // from every host, the preview fails (in the Hosts' diffs) with the code, and no key in it.
    const agent = join(lab.dir, "bin", "umlfleet-agent");
    renameSync(agent, `${agent}.away`);
    try {
      const broken = await pulumi("preview");
      expect(broken.error).toBeDefined();
      expect(`${broken.error}\n${broken.stdout}`).toMatch(/UMLFLEET_AGENT_MISSING/);
      expect(`${broken.error} ${broken.stdout}`).not.toContain("PRIVATE KEY");
    } finally {
      renameSync(`${agent}.away`, agent);
    }
  });

  it("keeps private key material out of the stack export", async () => {
    const dep = JSON.stringify(ok(await pulumi("export")).deployment);
    expect(dep).not.toContain("PRIVATE KEY");
    expect(dep).not.toContain(lab.privateKey.split("\n")[1]);
    expect(dep).toContain("4dabf18193072939515e22adb298388d"); // Pulumi's secret signature: the key is there, encrypted
  });

  it("umlfleet graph draws the three hosts, their guests and the cables from the stack export (keys encrypted), and the first host's cables from its state folder", async () => {
    const exported = join(lab.dir, "export.json");
    writeFileSync(exported, JSON.stringify(ok(await pulumi("export")).deployment));
    const dot = execFileSync(join(ROOT, "bin", "umlfleet"), ["graph", "--stack-export", exported], {
      encoding: "utf8",
    });
    const ids = lab.hosts.map((h) => `ssh://${h.user}@${h.address}:22`);
    for (const [i, id] of ids.entries()) {
      expect(dot).toContain(`subgraph "cluster_${id}" {`);
      expect(dot).toContain(`"vm:${id}/g${i}" -- "net:${id}/lan" [label="eth0 10.0.0.${i + 1}/24"];`);
    }
    const cables = [
      ...dot.matchAll(
        /^ {2}"net:([^"]+)\/lan" -- "net:([^"]+)\/lan" \[penwidth=2, label="cable (\S+)"\];$/gm,
      ),
    ];
    expect(cables.map((m) => [m[1], m[2]]).sort()).toEqual([ids.slice(0, 2), [ids[0], ids[2]]].sort());
    // On the first host, its state folder: the same cables, to the other two hosts.
    const onHub = lab.hosts[0]!.ssh(`${join(ROOT, "bin", "umlfleet")} graph`);
    for (const m of cables)
      expect(onHub).toContain(`"net:lan" -- "net:${m[2]}/lan" [penwidth=2, label="cable ${m[3]}"];`);
  });

  it("finds a cable killed behind its back on refresh, re-makes it on up, and ping works again", async () => {
    const [a, , c] = lab.hosts;
    // Data on both ends' overlays, written before the fault, must be there after.
    const tokens = { g0: writeToken(a, "g0"), g2: writeToken(c, "g2") };
    // The cable's SSH connection to host 3 dies (its ssh killed on host 1).
    const ssh = execFileSync("pgrep", ["-U", String(a.uid), "-x", "ssh"], { encoding: "utf8" })
      .trim()
      .split("\n")
      .find((p) => readFileSync(`/proc/${p}/cmdline`, "utf8").includes(c.address))!;
    execFileSync("kill", ["-9", ssh]);
    expect(ping(a, "g0", "10.0.0.3")).not.toBe("0");
    const refresh = ok(await pulumi("refresh"));
    expect(refresh.summary?.update).toBe(1); // the network: running false
    const up = ok(await pulumi("up"));
    expect(up.summary?.update).toBe(1);
    expect(ping(a, "g0", "10.0.0.3")).toBe("0");
    expect(readToken(a, "g0")).toBe(tokens.g0);
    expect(readToken(c, "g2")).toBe(tokens.g2);
  });

  it("switches the network to UDP cables and back in place: an update, the guests untouched, pings across each way", async () => {
    const [a, b, c] = lab.hosts;
    const bootId = (h: NsHost, g: string) =>
      h.ssh(`${UMLFLEET} exec ${g} -- cat /proc/sys/kernel/random/boot_id`).trim();
    const before = [bootId(a, "g0"), bootId(b, "g1"), bootId(c, "g2")];
    const udpEnds = (h: NsHost) =>
      h.ssh("pgrep -U $(id -u) -cf '^/usr/bin/[v]de_plug vde://.* udp://' || true").trim();
    const udp = ok(await pulumi("up", "udp"));
    expect(udp.summary).toEqual({ same: expect.any(Number), update: 1 });
    expect([udpEnds(a), udpEnds(b), udpEnds(c)]).toEqual(["2", "1", "1"]);
    expect(a.ssh("pgrep -U $(id -u) -c '^dpipe$' || true").trim()).toBe("0");
    for (const h of [b, c])
      expect(h.ssh("grep -c umlfleet-cable ~/.ssh/authorized_keys || true").trim()).toBe("0");
    expect(ping(a, "g0", "10.0.0.2")).toBe("0");
    expect(ping(b, "g1", "10.0.0.3")).toBe("0");
    const same = ok(await pulumi("preview", "udp"));
    expect(Object.keys(same.summary ?? {}).filter((k) => k !== "same")).toEqual([]);
    const back = ok(await pulumi("up"));
    expect(back.summary).toEqual({ same: expect.any(Number), update: 1 });
    expect([udpEnds(a), udpEnds(b), udpEnds(c)]).toEqual(["0", "0", "0"]);
    expect(ping(a, "g0", "10.0.0.3")).toBe("0");
    expect([bootId(a, "g0"), bootId(b, "g1"), bootId(c, "g2")]).toEqual(before);
  });

  it("converges with no duplicate and no orphan after the SSH connection to a host is killed during an up", async () => {
    const b = lab.hosts[1];
    // A file on host 2's guest's overlay; then the guest goes (its root disk stays),
    // and the up that boots it again on that overlay is the one whose ssh dies.
    const token = writeToken(b, "g1");
    const marker = join(b.stateDir, "instances", "g1");
    const without = ok(await pulumi("up", "noG1"));
    expect(without.outputs?.states).toEqual(["running", "running"]);
    expect(existsSync(marker), "host 2's guest is gone").toBe(false);
    const running = pulumi("up");
    // Once host 2's guest is being made, every ssh of the provider to host 2 dies.
    for (let i = 0; i < 2400 && !existsSync(marker); i++) await sleep(50);
    expect(existsSync(marker), "host 2's guest was never begun").toBe(true);
    const sshToB = execFileSync("pgrep", ["-U", "0", "-f", `^ssh .*${b.address.replace(/\./g, "\\.")}`], {
      encoding: "utf8",
    })
      .trim()
      .split("\n")
      .filter(Boolean);
    expect(sshToB.length).toBeGreaterThan(0);
    // Killed again and again for a while, past the client's retries: the up should fail.
    // An ssh may end between pgrep and kill (the master's sessions come and go): a gone pid is fine.
    killPids(sshToB.map(Number));
    for (let i = 0; i < 40; i++) {
      await sleep(200);
      const again = execFileSync(
        "sh",
        ["-c", `pgrep -U 0 -f '^ssh .*${b.address.replace(/\./g, "\\.")}' || true`],
        {
          encoding: "utf8",
        },
      )
        .trim()
        .split("\n")
        .filter(Boolean);
      if (again.length > 0) execFileSync("sh", ["-c", `kill -9 ${again.join(" ")} 2>/dev/null || true`]);
    }
    // It may fail, or succeed by the client's retry: either way the next up converges.
    const first = await running;
    console.info(
      `up with its ssh to host 2 killed: ${first.error ? `failed: ${first.error.slice(0, 200)}` : "succeeded (retried)"}`,
    );
    const up = ok(await pulumi("up"));
    expect(up.outputs?.states).toEqual(["running", "running", "running"]);
    for (const [i, h] of lab.hosts.entries()) {
      expect(h.ssh(`ls ${h.stateDir}/instances`).trim().split("\n"), `host ${h.index}`).toEqual([`g${i}`]);
      const guests = new Set(
        userProcesses(h)
          .map((p) => /uml_dir=\S*\/instances\/([a-z0-9-]+)\//.exec(p)?.[1])
          .filter(Boolean),
      );
      expect([...guests], `guests running on host ${h.index}`).toEqual([`g${i}`]);
    }
    const again = ok(await pulumi("preview"));
    expect(Object.keys(again.summary ?? {}).filter((k) => k !== "same")).toEqual([]);
    expect(ping(lab.hosts[0], "g0", "10.0.0.2")).toBe("0");
    expect(readToken(b, "g1"), "the file written on host 2's overlay before the fault").toBe(token);
  });

  it("keeps the hosts' private key out of every CLI output and error, the stack export, the hosts' state folders (console logs included) and the Pulumi backend", async () => {
    const key = lab.privateKey;
    // Lines every unencrypted ed25519 key shares (the format's header) are no secret: another key tells which.
    const other = join(lab.dir, "other_key");
    execFileSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", "", "-f", other]);
    const common = new Set(readFileSync(other, "utf8").split("\n"));
    const body = key.split("\n").filter((l) => l && !l.startsWith("-----") && !common.has(l));
    expect(body.length, "secret lines of the key").toBeGreaterThan(0);
    const needles = [key.trim(), JSON.stringify(key.trim()).slice(1, -1), ...body];
    const found = (text: string | Buffer) => needles.filter((n) => text.includes(n));

    const exported = ok(await pulumi("export"));
    const places: [string, string | Buffer][] = [
      ...cliOutputs.map((o, i): [string, string] => [`output of pulumi ${o.action} (#${i})`, o.text]),
      ["stack export", JSON.stringify(exported.deployment)],
      ...lab.hosts.flatMap((h) => filesUnder(h.stateDir).map((f): [string, Buffer] => [f, readFileSync(f)])),
      ...filesUnder(backendDir).map((f): [string, Buffer] => [f, readFileSync(f)]),
    ];
    // What was searched: the failing previews and ups, console logs, the backend's checkpoint.
    const names = places.map(([n]) => n);
    expect(names.filter((n) => /\(wrongHostKey\)|\(noAgent\)/.test(n)).length).toBeGreaterThan(0);
    expect(names.filter((n) => n.includes("/console")).length, "console logs searched").toBeGreaterThan(0);
    expect(
      names.filter((n) => n.includes("/.pulumi/stacks/")).length,
      "checkpoints searched",
    ).toBeGreaterThan(0);
    expect(places.filter(([, t]) => found(t).length > 0).map(([n]) => n)).toEqual([]);

    // Control: the same search finds the key where it is, in clear, on purpose.
    const ws = join(backendDir, "work");
    const shown = execFileSync(
      join(pulumiBinDir(), "pulumi"),
      ["stack", "export", "--show-secrets", "--stack", "test"],
      {
        cwd: ws,
        encoding: "utf8",
        maxBuffer: 64 << 20,
        env: {
          ...process.env,
          PATH: `${pulumiBinDir()}:${process.env.PATH ?? ""}`,
          PULUMI_HOME: join(backendDir, "home"),
          PULUMI_BACKEND_URL: `file://${backendDir}`,
          PULUMI_CONFIG_PASSPHRASE: "umlfleet-local",
          PULUMI_SKIP_UPDATE_CHECK: "true",
        },
      },
    );
    expect(found(shown), "the key in --show-secrets").toEqual(expect.arrayContaining(body));
    expect(found(readFileSync(lab.privateKeyPath)), "the key in its file").toEqual([needles[0], ...body]);
  });

  it("destroy leaves all three hosts clean", async () => {
    const destroy = ok(await pulumi("destroy"));
    expect(`${destroy.stdout}`).not.toContain(lab.privateKey.split("\n")[1]);
    for (const h of lab.hosts)
      expect(leftOn(h), `host ${h.index}`).toEqual({ processes: [], files: "", cableKeys: "0" });
  });
});
