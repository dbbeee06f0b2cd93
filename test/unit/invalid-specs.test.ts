import { describe, expect, it } from "vitest";
import { existsSync } from "node:fs";
import { InvalidSpecError, LocalRuntime, SpecValidator } from "../../src";
import { defaultKernel } from "../../src/validation";
import type { SpecKind } from "../../src/spec";
import { umlArgv } from "../../src/uml/argv";

const v = new SpecValidator("/usr/bin/linux.uml", ["/home/user", "/tmp"]);
const inst = { name: "web", rootDisk: "web-root" };
const grp = { name: "g", base: "bb" };

const reach = { name: "ping", reach: { from: "pc1", to: "10.0.0.2" } };
const cmd = { name: "cmd", command: { on: "pc1", run: "true" } };

/** [label, kind, spec, the field the error must name]. */
const cases: [string, SpecKind | "lab-checks", unknown, string][] = [
  ["lab-checks: no checks", "lab-checks", { checks: [] }, "/checks"],
  ["lab-checks: unknown field", "lab-checks", { checks: [{ ...reach, colour: "red" }] }, "/checks/0/colour"],
  [
    "lab-checks: name with a newline",
    "lab-checks",
    { checks: [{ ...reach, name: "a\nb" }] },
    "/checks/0/name",
  ],
  ["lab-checks: neither reach nor command", "lab-checks", { checks: [{ name: "x" }] }, "/checks/0"],
  [
    "lab-checks: both reach and command",
    "lab-checks",
    { checks: [{ ...reach, command: cmd.command }] },
    "/checks/0",
  ],
  [
    "lab-checks: two checks of one name",
    "lab-checks",
    { checks: [reach, { ...cmd, name: "ping" }] },
    "/checks/1/name",
  ],
  [
    "lab-checks: reach to a shell word",
    "lab-checks",
    { checks: [{ name: "p", reach: { from: "pc1", to: "10.0.0.2;reboot" } }] },
    "/checks/0/reach/to",
  ],
  [
    "lab-checks: reach from a path",
    "lab-checks",
    { checks: [{ name: "p", reach: { from: "../pc1", to: "10.0.0.2" } }] },
    "/checks/0/reach/from",
  ],
  [
    "lab-checks: count of 0",
    "lab-checks",
    { checks: [{ name: "p", reach: { from: "pc1", to: "10.0.0.2", count: 0 } }] },
    "/checks/0/reach/count",
  ],
  [
    "lab-checks: script too long",
    "lab-checks",
    { checks: [{ name: "c", command: { on: "pc1", run: "x".repeat(2049) } }] },
    "/checks/0/command/run",
  ],
  [
    "lab-checks: exit code 256",
    "lab-checks",
    { checks: [{ name: "c", command: { on: "pc1", run: "true", expect: { exitCode: 256 } } }] },
    "/checks/0/command/expect/exitCode",
  ],
  ["instance: missing name", "instance", { rootDisk: "r" }, "/name"],
  ["instance: missing rootDisk", "instance", { name: "a" }, "/rootDisk"],
  ["instance: upper-case name", "instance", { ...inst, name: "Web" }, "/name"],
  ["instance: name with comma", "instance", { ...inst, name: "a,ubd1=/etc/shadow" }, "/name"],
  ["instance: name with space", "instance", { ...inst, name: "a b" }, "/name"],
  ["instance: name with '='", "instance", { ...inst, name: "a=b" }, "/name"],
  ["instance: name with '..'", "instance", { ...inst, name: ".." }, "/name"],
  ["instance: name too long", "instance", { ...inst, name: `a${"b".repeat(40)}` }, "/name"],
  ["instance: name not a string", "instance", { ...inst, name: 7 }, "/name"],
  ["instance: unknown field", "instance", { ...inst, colour: "red" }, "/colour"],
  ["instance: relative kernel path", "instance", { ...inst, kernel: "linux.uml" }, "/kernel"],
  ["instance: kernel path with '..'", "instance", { ...inst, kernel: "/usr/../bin/linux" }, "/kernel"],
  ["instance: kernel path with comma", "instance", { ...inst, kernel: "/usr/bin/linux,x" }, "/kernel"],
  ["instance: kernel path with space", "instance", { ...inst, kernel: "/usr/bin/linux uml" }, "/kernel"],
  ["instance: memory too small", "instance", { ...inst, memoryMiB: 4 }, "/memoryMiB"],
  ["instance: memory fractional", "instance", { ...inst, memoryMiB: 64.5 }, "/memoryMiB"],
  ["instance: memory as string", "instance", { ...inst, memoryMiB: "64M" }, "/memoryMiB"],
  [
    "instance: maxMemory below memory",
    "instance",
    { ...inst, memoryMiB: 128, maxMemoryMiB: 64 },
    "/maxMemoryMiB",
  ],
  ["instance: rootDisk with slash", "instance", { ...inst, rootDisk: "../disks/x" }, "/rootDisk"],
  ["instance: disk item without disk", "instance", { ...inst, disks: [{ readOnly: true }] }, "/disks/0/disk"],
  [
    "instance: disk readOnly not boolean",
    "instance",
    { ...inst, disks: [{ disk: "d", readOnly: "yes" }] },
    "/disks/0/readOnly",
  ],
  [
    "instance: same disk twice",
    "instance",
    { ...inst, disks: [{ disk: "d" }, { disk: "d" }] },
    "/disks/1/disk",
  ],
  [
    "instance: root disk again as data disk",
    "instance",
    { ...inst, disks: [{ disk: "web-root" }] },
    "/disks/0/disk",
  ],
  [
    "instance: too many disks",
    "instance",
    { ...inst, disks: Array.from({ length: 15 }, (_, i) => ({ disk: `d${i}` })) },
    "/disks",
  ],
  [
    "instance: nic without network",
    "instance",
    { ...inst, nics: [{ mac: "52:54:00:00:00:01" }] },
    "/nics/0/network",
  ],
  [
    "instance: multicast MAC",
    "instance",
    { ...inst, nics: [{ network: "n", mac: "01:00:5e:00:00:01" }] },
    "/nics/0/mac",
  ],
  [
    "instance: upper-case MAC",
    "instance",
    { ...inst, nics: [{ network: "n", mac: "52:54:00:AA:00:01" }] },
    "/nics/0/mac",
  ],
  [
    "instance: MAC with comma payload",
    "instance",
    { ...inst, nics: [{ network: "n", mac: "52:54:00:00:00:01,x" }] },
    "/nics/0/mac",
  ],
  [
    "instance: duplicate MAC",
    "instance",
    {
      ...inst,
      nics: [
        { network: "n", mac: "52:54:00:00:00:01" },
        { network: "m", mac: "52:54:00:00:00:01" },
      ],
    },
    "/nics/1/mac",
  ],
  [
    "instance: IPv4 without prefix",
    "instance",
    { ...inst, nics: [{ network: "n", ipv4: "10.0.0.1" }] },
    "/nics/0/ipv4",
  ],
  [
    "instance: IPv4 octet 256",
    "instance",
    { ...inst, nics: [{ network: "n", ipv4: "10.0.0.256/24" }] },
    "/nics/0/ipv4",
  ],
  [
    "instance: IPv4 prefix 33",
    "instance",
    { ...inst, nics: [{ network: "n", ipv4: "10.0.0.1/33" }] },
    "/nics/0/ipv4",
  ],
  [
    "instance: IPv4 with injected option",
    "instance",
    { ...inst, nics: [{ network: "n", ipv4: "10.0.0.1/24 hostfs=/" }] },
    "/nics/0/ipv4",
  ],
  ["instance: too many serial lines", "instance", { ...inst, serialLines: 9 }, "/serialLines"],
  ["instance: negative serial lines", "instance", { ...inst, serialLines: -1 }, "/serialLines"],
  [
    "instance: share with relative host path",
    "instance",
    { ...inst, shares: [{ name: "s", hostPath: "data", guestPath: "/mnt" }] },
    "/shares/0/hostPath",
  ],
  [
    "instance: share host path with '..'",
    "instance",
    { ...inst, shares: [{ name: "s", hostPath: "/srv/../etc", guestPath: "/mnt" }] },
    "/shares/0/hostPath",
  ],
  [
    "instance: share guest path '/'",
    "instance",
    { ...inst, shares: [{ name: "s", hostPath: "/srv", guestPath: "/" }] },
    "/shares/0/guestPath",
  ],
  [
    "instance: share guest path with ':'",
    "instance",
    { ...inst, shares: [{ name: "s", hostPath: "/srv", guestPath: "/mnt:rw" }] },
    "/shares/0/guestPath",
  ],
  [
    "instance: share name with comma",
    "instance",
    { ...inst, shares: [{ name: "a,b", hostPath: "/srv", guestPath: "/mnt" }] },
    "/shares/0/name",
  ],
  [
    "instance: duplicate share guest path",
    "instance",
    {
      ...inst,
      shares: [
        { name: "a", hostPath: "/srv", guestPath: "/mnt" },
        { name: "b", hostPath: "/opt", guestPath: "/mnt" },
      ],
    },
    "/shares/1/guestPath",
  ],
  // kernelArgs is an allow-list: root-changing and unknown words are refused naming the word.
  ...[
    "rootfstype=hostfs",
    "rootflags=/",
    "root=/dev/ubdb",
    "init=/bin/sh",
    "rdinit=/x",
    "console=tty0",
    "hostfs",
    "debug",
    "nosysemu",
    "foo=bar",
    "umlfleet.ip=eth0:1.2.3.4/8",
    "sysctl.kernel.x=a b",
    "sysctl.=1",
    "loglevel=9",
    "panic=1;reboot",
    "--help",
  ].map((word): [string, SpecKind, unknown, string] => [
    `instance: kernelArgs word ${word} is not on the allow-list`,
    "instance",
    { ...inst, kernelArgs: ["quiet", word] },
    "/kernelArgs/1",
  ]),
  [
    "instance: kernelArgs carries hostfs=",
    "instance",
    { ...inst, kernelArgs: ["hostfs=/"] },
    "/kernelArgs/0",
  ],
  [
    "instance: kernelArgs carries ubd1=",
    "instance",
    { ...inst, kernelArgs: ["ubd1=/etc/shadow"] },
    "/kernelArgs/0",
  ],
  [
    "instance: kernelArgs carries vec0:",
    "instance",
    { ...inst, kernelArgs: ["vec0:transport=raw,ifname=eth0"] },
    "/kernelArgs/0",
  ],
  [
    "instance: kernelArgs carries eth1=",
    "instance",
    { ...inst, kernelArgs: ["eth1=tuntap,tap0"] },
    "/kernelArgs/0",
  ],
  ["instance: kernelArgs carries con=", "instance", { ...inst, kernelArgs: ["con=xterm"] }, "/kernelArgs/0"],
  [
    "instance: kernelArgs carries console=",
    "instance",
    { ...inst, kernelArgs: ["console=ttyS0"] },
    "/kernelArgs/0",
  ],
  [
    "instance: kernelArgs carries ssl0=",
    "instance",
    { ...inst, kernelArgs: ["ssl0=port:23"] },
    "/kernelArgs/0",
  ],
  ["instance: kernelArgs carries mem=", "instance", { ...inst, kernelArgs: ["mem=64G"] }, "/kernelArgs/0"],
  [
    "instance: kernelArgs carries umid=",
    "instance",
    { ...inst, kernelArgs: ["umid=other"] },
    "/kernelArgs/0",
  ],
  [
    "instance: kernelArgs carries uml_dir=",
    "instance",
    { ...inst, kernelArgs: ["uml_dir=/tmp"] },
    "/kernelArgs/0",
  ],
  [
    "instance: kernelArgs carries mconsole=",
    "instance",
    { ...inst, kernelArgs: ["mconsole=notify:/tmp/s"] },
    "/kernelArgs/0",
  ],
  [
    "instance: kernelArgs carries initrd=",
    "instance",
    { ...inst, kernelArgs: ["initrd=/etc/shadow"] },
    "/kernelArgs/0",
  ],
  [
    "instance: kernelArgs carries iomem=",
    "instance",
    { ...inst, kernelArgs: ["iomem=x,/etc/shadow"] },
    "/kernelArgs/0",
  ],
  [
    "instance: kernelArgs carries init=",
    "instance",
    { ...inst, kernelArgs: ["init=/bin/sh"] },
    "/kernelArgs/0",
  ],
  [
    "instance: kernelArgs carries root=",
    "instance",
    { ...inst, kernelArgs: ["root=/dev/ubdb"] },
    "/kernelArgs/0",
  ],
  [
    "instance: kernelArgs carries our own umlfleet.",
    "instance",
    { ...inst, kernelArgs: ["umlfleet.share=x:/y:rw"] },
    "/kernelArgs/0",
  ],
  [
    "instance: kernelArgs with a space",
    "instance",
    { ...inst, kernelArgs: ["quiet hostfs=/"] },
    "/kernelArgs/0",
  ],
  ["instance: kernelArgs with a quote", "instance", { ...inst, kernelArgs: ['a="b c"'] }, "/kernelArgs/0"],
  ["instance: bad readiness", "instance", { ...inst, readiness: "ssh" }, "/readiness"],
  [
    "instance: impairment delay above a minute",
    "instance",
    { ...inst, nics: [{ network: "n", impairment: { delayMs: 60001 } }] },
    "/nics/0/impairment/delayMs",
  ],
  [
    "instance: impairment negative delay",
    "instance",
    { ...inst, nics: [{ network: "n", impairment: { delayMs: -1 } }] },
    "/nics/0/impairment/delayMs",
  ],
  [
    "instance: impairment fractional delay",
    "instance",
    { ...inst, nics: [{ network: "n", impairment: { delayMs: 1.5 } }] },
    "/nics/0/impairment/delayMs",
  ],
  [
    "instance: impairment jitter above the delay",
    "instance",
    { ...inst, nics: [{ network: "n", impairment: { delayMs: 10, jitterMs: 20 } }] },
    "/nics/0/impairment/jitterMs",
  ],
  [
    "instance: impairment loss above 100",
    "instance",
    { ...inst, nics: [{ network: "n", impairment: { lossPercent: 101 } }] },
    "/nics/0/impairment/lossPercent",
  ],
  [
    "instance: impairment negative loss",
    "instance",
    { ...inst, nics: [{ network: "n", impairment: { lossPercent: -5 } }] },
    "/nics/0/impairment/lossPercent",
  ],
  [
    "instance: impairment rate of zero",
    "instance",
    { ...inst, nics: [{ network: "n", impairment: { rateKbit: 0 } }] },
    "/nics/0/impairment/rateKbit",
  ],
  [
    "instance: impairment duplicates above 50 (wirefilter would copy without end)",
    "instance",
    { ...inst, nics: [{ network: "n", impairment: { duplicatePercent: 51 } }] },
    "/nics/0/impairment/duplicatePercent",
  ],
  [
    "instance: impairment down not boolean",
    "instance",
    { ...inst, nics: [{ network: "n", impairment: { down: "yes" } }] },
    "/nics/0/impairment/down",
  ],
  [
    "instance: impairment unknown field",
    "instance",
    { ...inst, nics: [{ network: "n", impairment: { corruptPercent: 1 } }] },
    "/nics/0/impairment/corruptPercent",
  ],
  [
    "instance: impairment delay as a string",
    "instance",
    { ...inst, nics: [{ network: "n", impairment: { delayMs: "100ms" } }] },
    "/nics/0/impairment/delayMs",
  ],
  [
    "instance: route via an address outside every NIC's subnet",
    "instance",
    {
      ...inst,
      nics: [{ network: "n", ipv4: "10.0.1.1/24", routes: [{ to: "10.9.0.0/16", via: "10.0.2.1" }] }],
    },
    "/nics/0/routes/0/via",
  ],
  [
    "instance: route on a NIC without an address of its family",
    "instance",
    { ...inst, nics: [{ network: "n", routes: [{ to: "10.9.0.0/16", via: "10.0.1.254" }] }] },
    "/nics/0/routes/0/via",
  ],
  [
    "instance: route to an IPv6 network via an IPv4 hop",
    "instance",
    {
      ...inst,
      nics: [{ network: "n", ipv4: "10.0.1.1/24", routes: [{ to: "fd00:9::/64", via: "10.0.1.254" }] }],
    },
    "/nics/0/routes/0/via",
  ],
  [
    "instance: route that smuggles a shell word",
    "instance",
    {
      ...inst,
      nics: [{ network: "n", ipv4: "10.0.1.1/24", routes: [{ to: "10.9.0.0/16;reboot", via: "10.0.1.2" }] }],
    },
    "/nics/0/routes/0/to",
  ],
  [
    "instance: gateway outside the NIC's subnet",
    "instance",
    { ...inst, nics: [{ network: "n", ipv4: "10.0.1.1/24", gateway: "192.168.1.1" }] },
    "/nics/0/gateway",
  ],
  [
    "instance: two IPv4 gateways",
    "instance",
    {
      ...inst,
      nics: [
        { network: "n", ipv4: "10.0.1.1/24", gateway: "10.0.1.254" },
        { network: "m", ipv4: "10.0.2.1/24", gateway: "10.0.2.254" },
      ],
    },
    "/nics/1/gateway",
  ],
  [
    "instance: IPv6 without prefix",
    "instance",
    { ...inst, nics: [{ network: "n", ipv6: "fd00::1" }] },
    "/nics/0/ipv6",
  ],
  [
    "instance: IPv6 that is not one",
    "instance",
    { ...inst, nics: [{ network: "n", ipv6: "fd00:::1:::2/64" }] },
    "/nics/0/ipv6",
  ],
  [
    "instance: NIC MTU below IPv4's minimum",
    "instance",
    { ...inst, nics: [{ network: "n", mtu: 67 }] },
    "/nics/0/mtu",
  ],
  [
    "instance: NIC MTU above 1500",
    "instance",
    { ...inst, nics: [{ network: "n", mtu: 9000 }] },
    "/nics/0/mtu",
  ],
  [
    "instance: NIC MTU not an integer",
    "instance",
    { ...inst, nics: [{ network: "n", mtu: "1458" }] },
    "/nics/0/mtu",
  ],
  [
    "instance: NIC MTU for an image's own init",
    "instance",
    { ...inst, readiness: "mconsole", nics: [{ network: "n", mtu: 1458 }] },
    "/nics/0/mtu",
  ],
  [
    "instance: file path with '..'",
    "instance",
    { ...inst, files: [{ path: "/etc/../../root/x", content: "" }] },
    "/files/0/path",
  ],
  [
    "instance: relative file path",
    "instance",
    { ...inst, files: [{ path: "etc/x", content: "" }] },
    "/files/0/path",
  ],
  [
    "instance: file under /proc",
    "instance",
    { ...inst, files: [{ path: "/proc/sys/kernel/x", content: "" }] },
    "/files/0/path",
  ],
  [
    "instance: file over umlfleet's init",
    "instance",
    { ...inst, files: [{ path: "/umlfleet/init", content: "" }] },
    "/files/0/path",
  ],
  [
    "instance: file with both content and source",
    "instance",
    { ...inst, files: [{ path: "/x", content: "", source: "/etc/hostname" }] },
    "/files/0",
  ],
  [
    "instance: file with neither content nor source",
    "instance",
    { ...inst, files: [{ path: "/x" }] },
    "/files/0/content",
  ],
  [
    "instance: file source with '..'",
    "instance",
    { ...inst, files: [{ path: "/x", source: "/home/../etc/shadow" }] },
    "/files/0/source",
  ],
  [
    "instance: same file twice",
    "instance",
    {
      ...inst,
      files: [
        { path: "/x", content: "" },
        { path: "/x", content: "" },
      ],
    },
    "/files/1/path",
  ],
  [
    "instance: file inside another file",
    "instance",
    {
      ...inst,
      files: [
        { path: "/x", content: "" },
        { path: "/x/y", content: "" },
      ],
    },
    "/files/1/path",
  ],
  [
    "instance: file over the size limit",
    "instance",
    { ...inst, files: [{ path: "/x", content: "é".repeat(600 * 1024) }] },
    "/files/0/content",
  ],
  [
    "instance: files over the total size limit",
    "instance",
    {
      ...inst,
      files: Array.from({ length: 5 }, (_, i) => ({ path: `/f${i}`, content: "x".repeat(1000 * 1024) })),
    },
    "/files",
  ],
  [
    "instance: file mode beyond 07777",
    "instance",
    { ...inst, files: [{ path: "/x", content: "", mode: 0o17777 }] },
    "/files/0/mode",
  ],
  [
    "instance: startup script over the size limit",
    "instance",
    { ...inst, startup: "#".repeat(65537) },
    "/startup",
  ],
  [
    "instance: startup script over the size limit in bytes",
    "instance",
    { ...inst, startup: "é".repeat(40000) },
    "/startup",
  ],
  ["instance: startup not a string", "instance", { ...inst, startup: ["echo"] }, "/startup"],
  [
    "instance: startupMustSucceed without a startup script",
    "instance",
    { ...inst, startupMustSucceed: true },
    "/startupMustSucceed",
  ],
  [
    "instance: startup on an image with its own init",
    "instance",
    { ...inst, readiness: "mconsole", startup: "echo hi" },
    "/startup",
  ],
  ["instance: boot timeout too small", "instance", { ...inst, bootTimeoutMs: 5 }, "/bootTimeoutMs"],
  ["instance: spec is not an object", "instance", "web", ""],
  ["kernel: neither path nor build", "kernel", {}, "/path"],
  ["kernel: both path and build", "kernel", { path: "/usr/bin/linux.uml", build: {} }, ""],
  ["kernel: relative path", "kernel", { path: "linux" }, "/path"],
  [
    "kernel: build with a config line that is not Kconfig",
    "kernel",
    { build: { extraConfig: ["rm -rf /"] } },
    "/build/extraConfig/0",
  ],
  [
    "kernel: build with a config line carrying a second line",
    "kernel",
    { build: { extraConfig: ["CONFIG_A=y\nCONFIG_B=y"] } },
    "/build/extraConfig/0",
  ],
  ["kernel: build with an unknown profile", "kernel", { build: { profile: "fat" } }, "/build/profile"],
  ["base: unknown source kind", "base", { name: "b", source: { kind: "iso" } }, "/source/kind"],
  ["base: image without path", "base", { name: "b", source: { kind: "image" } }, "/source/path"],
  [
    "base: image relative path",
    "base",
    { name: "b", source: { kind: "image", path: "root.img" } },
    "/source/path",
  ],
  [
    "base: busybox size too small",
    "base",
    { name: "b", source: { kind: "busybox", sizeMiB: 1 } },
    "/source/sizeMiB",
  ],
  [
    "base: injected file with '..'",
    "base",
    { name: "b", source: { kind: "busybox", files: [{ path: "/etc/../../x", content: "" }] } },
    "/source/files/0/path",
  ],
  [
    "base: injected file mode too big",
    "base",
    { name: "b", source: { kind: "busybox", files: [{ path: "/x", content: "", mode: 99999 }] } },
    "/source/files/0/mode",
  ],
  [
    "base: directory source, unknown field",
    "base",
    { name: "b", source: { kind: "directory", path: "/srv", extra: 1 } },
    "/source/extra",
  ],
  [
    "base: debian, unknown suite",
    "base",
    { name: "b", source: { kind: "debian", suite: "bookworm; rm -rf /" } },
    "/source/suite",
  ],
  ["base: debian without suite", "base", { name: "b", source: { kind: "debian" } }, "/source/suite"],
  [
    "base: debian, a package that smuggles an option",
    "base",
    { name: "b", source: { kind: "debian", suite: "bookworm", packages: ["--hook-dir=/tmp/x"] } },
    "/source/packages/0",
  ],
  [
    "base: debian, a package list in one name",
    "base",
    { name: "b", source: { kind: "debian", suite: "bookworm", packages: ["curl,openssh-server"] } },
    "/source/packages/0",
  ],
  [
    "base: debian, a package with a version",
    "base",
    { name: "b", source: { kind: "debian", suite: "bookworm", packages: ["apt=2.6.1"] } },
    "/source/packages/0",
  ],
  [
    "base: debian, a variant that installs nothing bootable",
    "base",
    { name: "b", source: { kind: "debian", suite: "bookworm", variant: "extract" } },
    "/source/variant",
  ],
  [
    "base: debian, image too small for a root",
    "base",
    { name: "b", source: { kind: "debian", suite: "bookworm", sizeMiB: 64 } },
    "/source/sizeMiB",
  ],
  [
    "base: debian, injected file with '..'",
    "base",
    {
      name: "b",
      source: { kind: "debian", suite: "bookworm", files: [{ path: "/etc/../../x", content: "" }] },
    },
    "/source/files/0/path",
  ],
  ["disk: overlay without base", "disk", { name: "d", kind: "overlay" }, "/base"],
  ["disk: blank without size", "disk", { name: "d", kind: "blank" }, "/sizeMiB"],
  ["disk: swap with format", "disk", { name: "d", kind: "swap", sizeMiB: 16, format: "ext4" }, "/format"],
  ["disk: bad kind", "disk", { name: "d", kind: "raid" }, "/kind"],
  ["disk: size zero", "disk", { name: "d", kind: "blank", sizeMiB: 0 }, "/sizeMiB"],
  ["network: ports too few", "network", { name: "n", ports: 1 }, "/ports"],
  ["network: hub not boolean", "network", { name: "n", hub: "yes" }, "/hub"],
  ["network: name with slash", "network", { name: "a/b" }, "/name"],
  [
    "network: capture path outside the allowed folders",
    "network",
    { name: "n", capture: { path: "/etc/cron.d/x.pcap" } },
    "/capture/path",
  ],
  [
    "network: capture path that does not end in .pcap",
    "network",
    { name: "n", capture: { path: "/tmp/cap/.bashrc" } },
    "/capture/path",
  ],
  [
    "network: capture path with '..'",
    "network",
    { name: "n", capture: { path: "/tmp/../etc/x.pcap" } },
    "/capture/path",
  ],
  [
    "network: capture path that is relative",
    "network",
    { name: "n", capture: { path: "cap.pcap" } },
    "/capture/path",
  ],
  [
    "network: capture size limit of zero",
    "network",
    { name: "n", capture: { path: "/tmp/x.pcap", maxSizeMiB: 0 } },
    "/capture/maxSizeMiB",
  ],
  [
    "network: hostInterface name that smuggles an option",
    "network",
    { name: "n", hostInterface: { name: "-t" } },
    "/hostInterface/name",
  ],
  [
    "network: hostInterface name that smuggles a second word",
    "network",
    { name: "n", hostInterface: { name: "tap0 up" } },
    "/hostInterface/name",
  ],
  [
    "network: hostInterface name with a slash",
    "network",
    { name: "n", hostInterface: { name: "../../x" } },
    "/hostInterface/name",
  ],
  [
    "network: hostInterface name too long for Linux",
    "network",
    { name: "n", hostInterface: { name: "a".repeat(16) } },
    "/hostInterface/name",
  ],
  [
    "network: hostInterface address without prefix",
    "network",
    { name: "n", hostInterface: { name: "tap0", ipv4: "10.0.0.1" } },
    "/hostInterface/ipv4",
  ],

  [
    "serial-link: line out of range",
    "serial-link",
    { name: "l", a: { instance: "a", line: 8 }, b: { instance: "b", line: 0 } },
    "/a/line",
  ],
  ["serial-link: missing b", "serial-link", { name: "l", a: { instance: "a", line: 0 } }, "/b"],
  [
    "serial-link: a line joined to itself",
    "serial-link",
    { name: "l", a: { instance: "a", line: 1 }, b: { instance: "a", line: 1 } },
    "/b",
  ],
  [
    "instance: login key with a line break (a second authorized_keys line)",
    "instance",
    { ...inst, login: { sshPublicKeys: ["ssh-ed25519 AAAAC3Nz a@b\nssh-ed25519 AAAAC3Nz evil@x"] } },
    "/login/sshPublicKeys/0",
  ],
  [
    "instance: login key with options in front",
    "instance",
    { ...inst, login: { sshPublicKeys: ['command="sh" ssh-ed25519 AAAAC3Nz a@b'] } },
    "/login/sshPublicKeys/0",
  ],
  [
    "instance: login password in clear",
    "instance",
    { ...inst, login: { passwordHash: "hunter2" } },
    "/login/passwordHash",
  ],
  [
    "instance: login hash with a ':' (another shadow field)",
    "instance",
    { ...inst, login: { passwordHash: "$6$salt$abc:0:99999" } },
    "/login/passwordHash",
  ],
  ["instance: login user with a shell word", "instance", { ...inst, login: { user: "a;b" } }, "/login/user"],
  [
    "instance: login with an image's own init",
    "instance",
    { ...inst, readiness: "mconsole", login: { user: "root" } },
    "/login",
  ],
  [
    "instance: runAs uid outside the host's pool",
    "instance",
    { ...inst, runAs: { uid: 1000 } },
    "/runAs/uid",
  ],
  ["instance: runAs uid 0", "instance", { ...inst, runAs: { uid: 0 } }, "/runAs/uid"],
  [
    "instance: runAs user that smuggles an option",
    "instance",
    { ...inst, runAs: { user: "--reuid=0" } },
    "/runAs/user",
  ],
  [
    "instance: runAs names two users at once",
    "instance",
    { ...inst, runAs: { user: "nobody", uid: 2100000001 } },
    "/runAs",
  ],
  ["instance: runAs pool false", "instance", { ...inst, runAs: { pool: false } }, "/runAs/pool"],
  ["instance-group: missing base", "instance-group", { name: "g", members: {} }, "/base"],
  ["instance-group: members not an object", "instance-group", { ...grp, members: ["a"] }, "/members"],
  ["instance-group: upper-case member", "instance-group", { ...grp, members: { Web: {} } }, "/members"],
  [
    "instance-group: member name too long for its overlay",
    "instance-group",
    { ...grp, members: { [`a${"b".repeat(27)}`]: {} } },
    "/members",
  ],
  [
    "instance-group: member sets its name",
    "instance-group",
    { ...grp, members: { a: { name: "b" } } },
    "/members/a/name",
  ],
  [
    "instance-group: member sets its root disk",
    "instance-group",
    { ...grp, members: { a: { rootDisk: "x" } } },
    "/members/a/rootDisk",
  ],
  [
    "instance-group: member memory too small",
    "instance-group",
    { ...grp, members: { a: { memoryMiB: 4 } } },
    "/members/a/memoryMiB",
  ],
  [
    "instance-group: member smuggles a UML option",
    "instance-group",
    { ...grp, members: { a: { kernelArgs: ["ubd1=/etc/shadow"] } } },
    "/members/a/kernelArgs/0",
  ],
  [
    "instance-group: member file path with '..'",
    "instance-group",
    { ...grp, members: { a: { files: [{ path: "/a/../../b", content: "" }] } } },
    "/members/a/files/0/path",
  ],
  [
    "instance-group: member route via an address outside its NIC's subnet",
    "instance-group",
    {
      ...grp,
      members: { a: { nics: [{ network: "n", ipv4: "10.0.1.1/24", gateway: "10.0.2.1" }] } },
    },
    "/members/a/nics/0/gateway",
  ],
  [
    "instance-group: kernel path with '..'",
    "instance-group",
    { ...grp, kernel: "/x/../y", members: {} },
    "/kernel",
  ],
];

describe("invalid specs are rejected before any side effect, naming the field", () => {
  it("has at least 40 cases", () => expect(cases.length).toBeGreaterThanOrEqual(40));

  it.each(cases)("%s", (_label, kind, spec, field) => {
    const before = JSON.stringify(spec);
    let err: unknown;
    try {
      if (kind === "lab-checks") v.validateLabChecks(spec);
      else v.validate(kind, spec);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(InvalidSpecError);
    const e = err as InvalidSpecError;
    expect(e.code).toBe("UMLFLEET_INVALID_SPEC");
    expect(e.problems.map((p) => p.field)).toContain(field);
    expect(e.message).toContain(`${kind}${field || "/"}`);
    // The caller's object is left as it was (defaults go into a copy).
    expect(JSON.stringify(spec)).toBe(before);
  });
});

describe("secrets in errors", () => {
  it("a bad password hash, or a password under a mistyped key, is named but never shown", () => {
    for (const login of [{ passwordHash: "hunter2-clear" }, { password: "hunter2-clear" }]) {
      let message = "";
      try {
        v.validate("instance", { ...inst, login });
      } catch (e) {
        message = `${(e as Error).message} ${JSON.stringify(e)}`;
      }
      expect(message).toMatch(/instance\/login\/password/);
      expect(message).not.toContain("hunter2");
    }
  });
});

describe("state folders", () => {
  // The path reaches UML's command line (uml_dir=, ubd0=, eth0=vde,...) and socket paths.
  it.each([
    ["relative", "state/umlfleet"],
    ["with a space", "/tmp/my state"],
    ["with a comma", "/tmp/a,ubd1=/etc/shadow"],
    ["with '='", "/tmp/a=b"],
    ["with '..'", "/tmp/uf-nowhere/../uf-state"],
    ["with a newline", "/tmp/a\nb"],
    ["too long for UML's socket paths", `/tmp/${"x".repeat(60)}`],
  ])("%s is refused naming the field, before anything is made", (_label, path) => {
    expect(v.stateDirProblems(path, "UMLFLEET_STATE_DIR")).toEqual([
      expect.objectContaining({ field: "UMLFLEET_STATE_DIR", value: path }),
    ]);
    expect(() => new LocalRuntime({ stateDir: path })).toThrow(/stateDir/);
    expect(existsSync(path)).toBe(false);
  });
  it("a default from the environment is named by its variable", () => {
    const before = process.env.UMLFLEET_STATE_DIR;
    process.env.UMLFLEET_STATE_DIR = "/tmp/bad state";
    try {
      expect(() => new LocalRuntime()).toThrow(/UMLFLEET_STATE_DIR/);
    } finally {
      if (before === undefined) delete process.env.UMLFLEET_STATE_DIR;
      else process.env.UMLFLEET_STATE_DIR = before;
    }
  });
  it("accepts an ordinary one", () => {
    expect(v.stateDirProblems("/home/user/.local/state/umlfleet")).toEqual([]);
  });
});

describe("valid specs", () => {
  it("fill defaults into a copy", () => {
    const s = v.validate("instance", inst);
    expect(s).toMatchObject({
      kernel: "/usr/bin/linux.uml",
      memoryMiB: 64,
      serialLines: 2,
      readiness: "marker",
      bootTimeoutMs: 60000,
    });
    expect(inst).toEqual({ name: "web", rootDisk: "web-root" });
  });

  it("take the host's default kernel when a spec names none, and say so when it is bad", () => {
    expect(new SpecValidator("/opt/k/linux").validate("instance", inst).kernel).toBe("/opt/k/linux");
    expect(new SpecValidator("/opt/k/linux").validate("instance", { ...inst, kernel: "/k2" }).kernel).toBe(
      "/k2",
    );
    expect(defaultKernel({ UMLFLEET_KERNEL: "/opt/k/linux" })).toBe("/opt/k/linux");
    expect(defaultKernel({})).toBe("/usr/bin/linux.uml");
    expect(() => new SpecValidator("relative/linux").validate("instance", inst)).toThrow(
      /instance\/kernel: .*the host default, \$UMLFLEET_KERNEL/,
    );
  });

  it("accept harmless kernel words", () => {
    expect(() =>
      v.validate("instance", {
        ...inst,
        kernelArgs: [
          "quiet",
          "loglevel=3",
          "lpj=4000000",
          "panic=1",
          "norandmaps",
          "sysctl.net.ipv4.ip_forward=1",
          "systemd.unit=rescue.target",
          "single",
          "3",
        ],
      }),
    ).not.toThrow();
  });

  it("no value that passes validation adds a UML option to the command line", () => {
    // Each argv entry of a spec built from the most permissive values holds exactly one option.
    const s = v.validate("instance", {
      ...inst,
      kernelArgs: ["quiet"],
      nics: [{ network: "n", ipv4: "10.0.0.1/24" }],
    });
    const argv = umlArgv({
      kernel: s.kernel,
      memoryMiB: s.memoryMiB,
      umid: "u",
      umlDir: "/s/vm/uml",
      disks: [{ index: 0, file: "/s/vm/d/web-root", backing: "/s/images/x.img", readOnly: false }],
      nics: [
        {
          index: 0,
          driver: "eth",
          switchDir: "/s/switches/n",
          mac: "52:54:00:00:00:01",
          ipv4: "10.0.0.1/24",
        },
      ],
      shares: [],
      hostfsRoot: "/umlfleet-shares",
      hostname: s.name,
      fds: { console: 1, control: { in: 3, out: 4 }, serial: [] },
      umlfleetInit: true,
      kernelArgs: s.kernelArgs ?? [],
    });
    for (const a of argv.slice(1)) expect(a, a).not.toMatch(/\s/);
  });
});
