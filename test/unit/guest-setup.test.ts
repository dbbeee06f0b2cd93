import { describe, expect, it } from "vitest";
import { planInstanceChange } from "../../src";
import { needsSetup, nicCommands, startupExitIn } from "../../src/host/guest-setup";
import { inSubnet, isLinkLocal6, parseAddress, parseCidr } from "../../src/net-address";

describe("addresses", () => {
  it("parses IPv4 and IPv6 (compressed, embedded IPv4) and tells subnet membership", () => {
    expect(parseAddress("10.0.1.2")).toEqual({ family: 4, value: 0x0a000102n });
    expect(parseAddress("fd00::1")?.value).toBe((0xfd00n << 112n) | 1n);
    expect(parseAddress("::ffff:10.0.0.1")?.value).toBe((0xffffn << 32n) | 0x0a000001n);
    expect(parseAddress("1::2::3")).toBeUndefined();
    expect(parseAddress("10.0.0.256")).toBeUndefined();
    const net = parseCidr("10.0.1.1/24")!;
    expect(inSubnet(parseAddress("10.0.1.254")!, net)).toBe(true);
    expect(inSubnet(parseAddress("10.0.2.1")!, net)).toBe(false);
    expect(inSubnet(parseAddress("fd00::1")!, net)).toBe(false);
    expect(inSubnet(parseAddress("fd00:1::fe")!, parseCidr("fd00:1::1/64")!)).toBe(true);
    expect(inSubnet(parseAddress("fd00:2::fe")!, parseCidr("fd00:1::1/64")!)).toBe(false);
    expect(parseCidr("10.0.0.1/33")).toBeUndefined();
    expect(isLinkLocal6(parseAddress("fe80::1")!)).toBe(true);
    expect(isLinkLocal6(parseAddress("fd00::1")!)).toBe(false);
  });
});

describe("guest set-up", () => {
  it("is staged only when a spec has files, a startup script or routes", () => {
    const base = { name: "a", rootDisk: "r" };
    expect(needsSetup({ ...base, nics: [{ network: "n", ipv4: "10.0.0.1/24" }] })).toBe(false);
    expect(needsSetup({ ...base, startup: "" })).toBe(true);
    expect(needsSetup({ ...base, nics: [{ network: "n", ipv6: "fd00::1/64" }] })).toBe(true);
  });

  it("configures a NIC with one quoted command per setting, each reporting its own failure", () => {
    const lines = nicCommands(
      "eth1",
      {
        network: "n",
        ipv4: "10.0.0.1/24",
        ipv6: "fd00::1/64",
        gateway: "fd00::fe",
        routes: [{ to: "10.9.0.0/16", via: "10.0.0.254" }],
      },
      true,
    );
    expect(lines.map((l) => l.split(" || ")[0])).toEqual([
      "ip link set 'eth1' up",
      "ip addr add '10.0.0.1/24' dev 'eth1'",
      "echo 0 >/proc/sys/net/ipv6/conf/eth1/accept_dad",
      "ip -6 addr add 'fd00::1/64' dev 'eth1'",
      "ip -6 route add default via 'fd00::fe' dev 'eth1'",
      "ip -4 route add '10.9.0.0/16' via '10.0.0.254' dev 'eth1'",
    ]);
    for (const l of lines) expect(l).toMatch(/ \|\| echo 'umlfleet: failed: /);
  });

  it("reads the startup exit status from the last marker line only", () => {
    expect(startupExitIn("boot\r\nUMLFLEET-STARTUP-EXIT 3\r\nUMLFLEET-READY 0.5\r\n")).toBe(3);
    expect(startupExitIn("UMLFLEET-STARTUP-EXIT 1\nUMLFLEET-STARTUP-EXIT 0\n")).toBe(0);
    expect(startupExitIn("echo UMLFLEET-STARTUP-EXIT 0\n")).toBeUndefined();
    expect(startupExitIn("nothing here")).toBeUndefined();
  });

  it("a change of files, startup or startupMustSucceed restarts; a changed route restarts; a NIC appended with routes is live", () => {
    const before = { name: "a", rootDisk: "r", nics: [{ network: "n", ipv4: "10.0.0.1/24" }] };
    for (const change of [
      { files: [{ path: "/x", content: "1" }] },
      { startup: "echo" },
      { startup: "echo", startupMustSucceed: true },
    ]) {
      expect(planInstanceChange({ ...before, startup: "echo" }, { ...before, ...change }).kind).toBe(
        Object.keys(change).length === 1 && "startup" in change ? "none" : "restart",
      );
    }
    expect(
      planInstanceChange(before, {
        ...before,
        nics: [{ ...before.nics[0]!, routes: [{ to: "10.9.0.0/16", via: "10.0.0.2" }] }],
      }).kind,
    ).toBe("restart");
    expect(
      planInstanceChange(before, {
        ...before,
        nics: [...before.nics, { network: "n", ipv4: "10.1.0.1/24", gateway: "10.1.0.254" }],
      }).kind,
    ).toBe("live");
  });
});
