import { Disk, Instance, Kernel, Network, RootFilesystem } from "umlfleet";

/** One user: the machine's name and the public key that logs in to it as root. */
export interface Student {
  name: string;
  sshPublicKey: string;
}

/**
 * One machine per user, all over one shared Debian base (each on its own
 * copy-on-write overlay), on a network the host is on through a tap. Each
 * user's key logs in as root to their own machine only, and on the host each
 * machine runs as a uid of its own.
 */
export function lab(opts: { users: Student[]; tap?: string; subnet?: string }) {
  const subnet = opts.subnet ?? "10.77.0";
  const kernel = new Kernel("classroom-kernel", { build: {} });
  const base = new RootFilesystem("classroom-base", {
    source: { kind: "debian", suite: "bookworm", packages: ["openssh-server"] },
  });
  const net = new Network("classroom", {
    hostInterface: { name: opts.tap ?? "classroom0", ipv4: `${subnet}.1/24` },
  });

  const machines = opts.users.map(
    (user, i) =>
      new Instance(user.name, {
        kernel,
        rootDisk: new Disk(`${user.name}-root`, { kind: "overlay", base }),
        memoryMiB: 128,
        nics: [{ network: net, ipv4: `${subnet}.${10 + i}/24` }],
        login: { sshPublicKeys: [user.sshPublicKey] },
        // Each machine's kernel runs as a host uid of its own (the lowest free one of umlfleet's pool).
        runAs: { pool: true },
      }),
  );

  return {
    // ssh root@<address> with the user's key.
    addresses: Object.fromEntries(opts.users.map((u, i) => [u.name, `${subnet}.${10 + i}`])),
    machines: machines.map((m) => m.name),
  };
}
