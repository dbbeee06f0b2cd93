import { homedir } from "node:os";
import { join } from "node:path";
import * as pulumi from "@pulumi/pulumi";
import { Disk, Instance, Kernel, Network, RootFilesystem } from "umlfleet";

/**
 * Whoever connects to port 23 gets a root shell, no password asked; each
 * command is written to the console (the honeypot's console log on the host)
 * before it runs.
 */
const honeypotShell = `#!/bin/sh
echo "honeypot: connection" >/dev/console
while IFS= read -r line; do
  echo "honeypot: command: $line" >/dev/console
  sh -c "$line" 2>&1
done
echo "honeypot: connection closed" >/dev/console
`;

/**
 * A deliberately weak guest on a captured network, an attacker guest beside
 * it: every frame on the network goes to a pcap file on the host, every
 * command the honeypot runs to its console log.
 */
export function lab(opts: { capturePath?: string; port?: number } = {}) {
  const kernel = new Kernel("honeypot-kernel", { build: {} });
  const base = new RootFilesystem("honeypot-base", { source: { kind: "busybox", sizeMiB: 32 } });
  const capturePath = opts.capturePath ?? join(homedir(), "honeypot.pcap");
  const net = new Network("honeynet", { capture: { path: capturePath } });

  const honeypot = new Instance("honeypot", {
    kernel,
    rootDisk: new Disk("honeypot-root", { kind: "overlay", base }),
    nics: [{ network: net, ipv4: "10.40.0.10/24" }],
    files: [{ path: "/usr/sbin/honeypot-shell", content: honeypotShell, mode: 0o755 }],
    // A netcat service with no password: a shell for every connection (-ll: keep listening).
    startup: `nc -ll -p ${opts.port ?? 23} -e /usr/sbin/honeypot-shell </dev/null >/dev/null 2>&1 &\n`,
  });

  const attacker = new Instance("attacker", {
    kernel,
    rootDisk: new Disk("attacker-root", { kind: "overlay", base }),
    nics: [{ network: net, ipv4: "10.40.0.66/24" }],
  });

  return {
    capture: capturePath,
    honeypotLog: honeypot.consoleLog,
    attacker: pulumi.all([attacker.name, attacker.state]),
  };
}
