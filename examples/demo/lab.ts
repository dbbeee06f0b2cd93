import * as pulumi from "@pulumi/pulumi";
import { Fleet, Kernel, Network, RootFilesystem, SerialLink } from "umlfleet";

/**
 * The demo lab: three busybox machines sharing one read-only base through
 * their own COW overlays, on one switch (10.10.0.0/24), with a serial cable
 * between node-0's and node-1's ttyS1. They boot umlfleet's own kernel, built
 * once and cached (scripts/setup.sh builds it): it boots in a fraction of a
 * second, and Debian's 6.1 kernel cannot run guests on CPUs with AMX.
 */
export function lab() {
  const kernel = new Kernel("lab-kernel", { build: {} });
  const base = new RootFilesystem("lab-base", {
    source: {
      kind: "busybox",
      sizeMiB: 32,
      files: [{ path: "/etc/motd", content: "Welcome to the umlfleet demo lab.\n" }],
    },
  });
  const net = new Network("lab-net");
  const fleet = new Fleet("node", {
    size: 3,
    kernel,
    base,
    networks: [net],
    ipv4: (i) => `10.10.0.${i + 1}/24`,
    memoryMiB: 64,
    maxMemoryMiB: 96,
  });
  new SerialLink("node-0-node-1", {
    a: { instance: fleet.instances[0]!, line: 1 },
    b: { instance: fleet.instances[1]!, line: 1 },
  });
  return {
    network: net.switchDir,
    instances: pulumi.all(
      fleet.instances.map((i) =>
        pulumi
          .all([i.name, i.state, i.pid, i.nicInfo, i.consoleLog])
          .apply(([name, state, pid, nics, consoleLog]) => ({
            name,
            state,
            pid,
            ipv4: nics.map((n) => n.ipv4),
            consoleLog,
          })),
      ),
    ),
  };
}
