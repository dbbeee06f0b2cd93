import * as pulumi from "@pulumi/pulumi";
import { Disk, Instance, Kernel, Network, RootFilesystem } from "umlfleet";

/**
 * A bridge implementation: the startup script that makes `br0` over `ports`
 * with spanning tree on, at bridge priority `priority`, and gives it `address`.
 */
export type Bridge = (b: { ports: string[]; priority: number; address: string }) => string;

// Spanning-tree timers in centiseconds (sysfs): a 4 s forward delay (802.1D's
// shortest with a 6 s max age) converges in about 8 s instead of 30.
const timers = (br: string) =>
  [`forward_delay 400`, `hello_time 100`, `max_age 600`]
    .map((t) => t.split(" "))
    .map(([k, v]) => `echo ${v} > /sys/class/net/${br}/bridge/${k}`);

/** Linux's bridge through busybox brctl; brctl has no STP command, so STP is switched on in sysfs. */
export const brctlBridge: Bridge = ({ ports, priority, address }) =>
  [
    "brctl addbr br0",
    `echo ${priority} > /sys/class/net/br0/bridge/priority`,
    ...timers("br0"),
    ...ports.flatMap((p) => [`ip link set ${p} up`, `brctl addif br0 ${p}`]),
    "echo 1 > /sys/class/net/br0/bridge/stp_state",
    `ip addr add ${address} dev br0`,
    "ip link set br0 up",
  ].join("\n");

/** The same kernel bridge made through netlink (`ip link ... type bridge`, `master`), STP in sysfs. */
export const ipLinkBridge: Bridge = ({ ports, priority, address }) =>
  [
    "ip link add br0 type bridge",
    `echo ${priority} > /sys/class/net/br0/bridge/priority`,
    ...timers("br0"),
    ...ports.flatMap((p) => [`ip link set ${p} master br0`, `ip link set ${p} up`]),
    "echo 1 > /sys/class/net/br0/bridge/stp_state",
    `ip addr add ${address} dev br0`,
    "ip link set br0 up",
  ].join("\n");

/** The bridge implementations a guest can run, by name (add yours here). */
export const BRIDGES = { brctl: brctlBridge, "ip-link": ipLinkBridge } satisfies Record<string, Bridge>;

/**
 * Three guests joined pairwise by three networks (a triangle: a loop), each
 * bridging its two links with spanning tree on, so exactly one port of the
 * loop blocks. `a` is the root bridge (lowest priority) and `b` outranks `c`,
 * so the blocked port is c's on the b-c link. `cut` removes c's link to `a`
 * (its last NIC, unplugged live): traffic from a to c then takes the way
 * through b once spanning tree has opened c's blocked port.
 */
export function lab(
  opts: { cut?: boolean; bridges?: Partial<Record<"a" | "b" | "c", keyof typeof BRIDGES>> } = {},
) {
  const kernel = new Kernel("bridge-kernel", { build: {} });
  const base = new RootFilesystem("bridge-base", { source: { kind: "busybox", sizeMiB: 32 } });
  const ab = new Network("br-ab");
  const bc = new Network("br-bc");
  const ca = new Network("br-ca");

  // Which bridge each guest runs: swap one for another implementation here.
  const bridgeOf = { a: "brctl", b: "brctl", c: "brctl", ...opts.bridges } as const;

  const guests = [
    { name: "a", links: [ab, ca], priority: 4096, address: "10.30.0.1/24" },
    { name: "b", links: [ab, bc], priority: 28672, address: "10.30.0.2/24" },
    { name: "c", links: opts.cut ? [bc] : [bc, ca], priority: 32768, address: "10.30.0.3/24" },
  ] as const;

  const machines = guests.map(
    (g) =>
      new Instance(`bridge-${g.name}`, {
        kernel,
        rootDisk: new Disk(`bridge-${g.name}-root`, { kind: "overlay", base }),
        // The bridge gets the address; its ports carry none. A cut link is the last NIC, unplugged live.
        nics: g.links.map((network) => ({ network })),
        // The same script with or without the cut (a changed script would restart the guest).
        startup: BRIDGES[bridgeOf[g.name]]({
          ports: ["eth0", "eth1"],
          priority: g.priority,
          address: g.address,
        }),
      }),
  );

  return {
    guests: pulumi.all(machines.map((m) => pulumi.all([m.name, m.state, m.startupExitCode]))),
  };
}
