import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { hostsUnsupported, leftoverHosts, makeHosts, type HostLab } from "../helpers/hosts";

/** The test harness for target hosts: namespaces with sshd and a user each. */
describe.skipIf(hostsUnsupported() !== undefined)("target hosts made as network namespaces", () => {
  let lab: HostLab;
  beforeAll(() => {
    lab = makeHosts(3);
  });
  afterAll(() => lab?.teardown());

  it("reaches each host over ssh as its own user, in its own namespace, with its own state folder", () => {
    const seen = new Set<string>();
    for (const h of lab.hosts) {
      const out = h
        .ssh('id -un; echo "$UMLFLEET_STATE_DIR"; ip -o -4 addr show dev eth0; echo ~')
        .split("\n");
      expect(out[0]).toBe(h.user);
      expect(out[1]).toBe(h.stateDir);
      expect(out[2]).toContain(`inet ${h.address}/24`);
      expect(out[3]).toBe(h.home);
      seen.add(out[0]);
    }
    expect(seen.size).toBe(3);
  });

  it("gives each user what the agent and its guests need: node and the package, bwrap, /dev/shm exec, a kernel", () => {
    const h = lab.hosts[0];
    const out = h.ssh(
      [
        "set -e",
        `node -e 'require(process.argv[1]); console.log("pkg-ok")' ${join(__dirname, "..", "..", "dist", "src", "index.js")}`,
        "bwrap --unshare-all --dev-bind / / true && echo bwrap-ok",
        'f=$(mktemp /dev/shm/ufb.XXXXXX); cp /bin/true "$f"; chmod 700 "$f"; "$f" && echo shm-exec-ok; rm -f "$f"',
        'test -x "$UMLFLEET_KERNEL" && echo kernel-ok',
        "if command -v umlfleet-agent >/dev/null; then echo agent-on-path; fi",
      ].join("\n"),
    );
    // The agent's bin comes with the agent (issue #11): on PATH once it exists.
    const agentBuilt = existsSync(join(__dirname, "..", "..", "bin", "umlfleet-agent"));
    expect(out.split("\n").filter(Boolean)).toEqual([
      "pkg-ok",
      "bwrap-ok",
      "shm-exec-ok",
      "kernel-ok",
      ...(agentBuilt ? ["agent-on-path"] : []),
    ]);
  });

  it("lets each user boot a UML guest process in its namespace (umlfleet doctor: all but Pulumi's parts)", () => {
    // Pulumi runs where the program runs, not on a target host.
    const out = lab.hosts[1].ssh(`${join(__dirname, "..", "..", "bin", "umlfleet")} doctor 2>&1 || true`);
    const missing = out.split("\n").filter((l) => l.startsWith("MISSING"));
    expect(missing.map((l) => l.split(/\s+/)[1].replace(/:$/, ""))).toEqual([
      "pulumi",
      "pulumi-language-nodejs",
      "pulumi-resource-pulumi-nodejs",
    ]);
    expect(out).toMatch(/^ok\s+uml-kernel-runs-guests/m);
  });

  it("joins the hosts on one segment: host 1 reaches the sshd of hosts 2 and 3", () => {
    for (const other of lab.hosts.slice(1)) {
      // No ping on this machine: read the far sshd's banner from inside host 1's namespace.
      const banner = execFileSync(
        "ip",
        [
          "netns",
          "exec",
          lab.hosts[0].netns,
          "timeout",
          "10",
          "bash",
          "-c",
          `exec 3<>/dev/tcp/${other.address}/22; head -c 8 <&3`,
        ],
        { encoding: "utf8" },
      );
      expect(banner).toBe("SSH-2.0-");
    }
  });

  it("refuses a host whose key is not the pinned one", () => {
    const wrong = join(lab.dir, "wrong_known_hosts");
    // Host 2's key pinned for host 1's address.
    writeFileSync(wrong, `${lab.hosts[0].address} ${lab.hosts[1].hostKey}\n`);
    const args = lab.hosts[0]
      .sshArgs()
      .map((a) => (a.startsWith("UserKnownHostsFile=") ? `UserKnownHostsFile=${wrong}` : a));
    const r = spawnSync("ssh", [...args, "--", "true"], { encoding: "utf8" });
    expect(r.status).not.toBe(0);
    expect(r.stderr).toMatch(/HOST IDENTIFICATION HAS CHANGED|Host key verification failed/);
  });

  it("refuses another user's login with this key", () => {
    const [a, b] = lab.hosts;
    const args = a.sshArgs().map((x) => (x === `${a.user}@${a.address}` ? `${b.user}@${a.address}` : x));
    const r = spawnSync("ssh", [...args, "--", "true"], { encoding: "utf8" });
    expect(r.status).toBe(255);
    expect(r.stderr).toContain("Permission denied");
  });

  it("teardown leaves no namespace, link, user, process or file", () => {
    const extra = makeHosts(2);
    const [h] = extra.hosts;
    // Something running as the user, as a guest would.
    h.ssh("nohup sleep 1000 >/dev/null 2>&1 &");
    expect(execFileSync("pgrep", ["-U", String(h.uid)], { encoding: "utf8" }).trim()).not.toBe("");
    const id = extra.dir.split("/").pop()!.slice(1);
    expect(leftoverHosts(undefined, id).length).toBeGreaterThan(0);
    extra.teardown();
    expect(leftoverHosts(undefined, id)).toEqual([]);
    expect(existsSync(extra.dir)).toBe(false);
    expect(existsSync(h.home)).toBe(false);
    expect(spawnSync("id", [h.user]).status).not.toBe(0);
  });
});
