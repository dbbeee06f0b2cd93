// A lab on one target host, declared in Git and applied by CI (docs/gitops.md,
// github-actions.yml): the shape (guests, memory) is this program and
// Pulumi.lab.yaml; where it runs comes from the workflow's configure step.
import * as pulumi from "@pulumi/pulumi";
import { Disk, Host, Instance, Kernel, Network, RootFilesystem } from "umlfleet";

const config = new pulumi.Config();

// The target host over SSH: its key pinned, the private key a CI secret
// (the environment, never the repository), kept as a Pulumi secret.
const privateKey = process.env.LAB_SSH_KEY;
const host = new Host("lab-host", {
  ssh: {
    host: config.require("host"),
    user: config.require("user"),
    hostKey: config.require("hostKey"),
    ...(privateKey ? { privateKey: pulumi.secret(privateKey) } : {}),
  },
});

// The host's kernel: Debian's by default; umlfleet's own where the CPU has AMX (docs/kernel.md).
const kernel = new Kernel("lab-kernel", { host, path: config.get("kernelPath") ?? "/usr/bin/linux.uml" });
const base = new RootFilesystem("lab-base", {
  host,
  name: "gitops-base",
  source: { kind: "busybox", sizeMiB: 32 },
});
const lan = new Network("gitops-lan", { host });

const guests = config.requireObject<string[]>("guests").map(
  (name, i) =>
    new Instance(name, {
      host,
      kernel,
      rootDisk: new Disk(`${name}-root`, { host, kind: "overlay", base }),
      memoryMiB: config.requireNumber("memoryMiB"),
      nics: [{ network: lan, ipv4: `10.40.0.${i + 1}/24` }],
    }),
);

export const states = pulumi.all(guests.map((g) => pulumi.all([g.name, g.state])));
