import { execFileSync, spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";

/** A fresh ed25519 key pair in `dir`: [private key file, public key line]. */
export function keyPair(dir: string, name: string): [string, string] {
  const file = join(dir, name);
  execFileSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", `${name}@test`, "-f", file]);
  return [file, readFileSync(`${file}.pub`, "utf8").trim()];
}

/**
 * `command` run by the host's ssh client as `user@address` with one key and
 * nothing else (no agent, no other identity, no password prompt); host keys
 * are recorded in `knownHosts`, a file of the test's own.
 */
export function ssh(
  o: { key: string; address: string; knownHosts: string; user?: string },
  command: string,
): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(
    "ssh",
    [
      "-F",
      "/dev/null",
      "-i",
      o.key,
      "-o",
      "IdentitiesOnly=yes",
      "-o",
      "IdentityAgent=none",
      "-o",
      "BatchMode=yes",
      "-o",
      "StrictHostKeyChecking=no",
      "-o",
      `UserKnownHostsFile=${o.knownHosts}`,
      "-o",
      "ConnectTimeout=20",
      `${o.user ?? "root"}@${o.address}`,
      command,
    ],
    { encoding: "utf8", timeout: 60_000 },
  );
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}
