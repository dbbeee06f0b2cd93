import * as pulumi from "@pulumi/pulumi";
import { Disk, Instance, Kernel, Network, RootFilesystem } from "umlfleet";

// umlfleet's kernel, built from Debian's linux-source-6.1 on the first `up`
// (3-10 minutes) and cached: it boots in a fraction of a second, and Debian's
// own 6.1 kernel cannot run guests on CPUs with AMX.
const kernel = new Kernel("starter-kernel", { build: {} });

// One read-only root filesystem (busybox and umlfleet's init), shared by both
// machines through a copy-on-write overlay each.
const base = new RootFilesystem("starter-base", { source: { kind: "busybox", sizeMiB: 32 } });

// One virtual switch (a vde_switch on this machine).
const net = new Network("starter-net");

// Two machines on it, each with an address. State lives in $UMLFLEET_STATE_DIR
// (default ~/.local/state/umlfleet); names are unique within it.
const machines = [
  { name: "alpha", ipv4: "10.20.0.1/24" },
  { name: "beta", ipv4: "10.20.0.2/24" },
].map(
  (m) =>
    new Instance(m.name, {
      kernel,
      rootDisk: new Disk(`${m.name}-root`, { kind: "overlay", base }),
      nics: [{ network: net, ipv4: m.ipv4 }],
      memoryMiB: 64,
    }),
);

export const instances = pulumi.all(
  machines.map((m) =>
    pulumi.all([m.name, m.state, m.nicInfo]).apply(([name, state, nics]) => ({
      name,
      state,
      ipv4: nics.map((n) => n.ipv4),
    })),
  ),
);
