import { describe, expect, it } from "vitest";
import { deterministicMac } from "../../src";
import { nicArg, nicDriverFor, umlArgv, ubdArg } from "../../src/uml/argv";
import { sandboxArgv } from "../../src/host/sandbox";

describe("UML argv", () => {
  const plan = {
    kernel: "/usr/bin/linux.uml",
    memoryMiB: 64,
    umid: "u",
    umlDir: "/s/i/a/vm/uml",
    disks: [
      { index: 0, file: "/s/i/a/vm/d/root", backing: "/s/images/x.img", readOnly: false },
      { index: 1, file: "/s/i/a/vm/d/data", readOnly: true },
    ],
    swapDiskIndex: undefined,
    nics: [
      {
        index: 0,
        driver: "eth" as const,
        switchDir: "/s/switches/lan",
        mac: "52:54:00:00:00:01",
        ipv4: "10.0.0.1/24",
      },
    ],
    shares: [{ name: "src", guestPath: "/mnt/src", readOnly: true }],
    hostfsRoot: "/umlfleet-shares",
    hostname: "a",
    fds: { console: 1, control: { in: 3, out: 4 }, serial: [{ line: 0, in: 5, out: 6 }] },
    umlfleetInit: true,
    kernelArgs: ["quiet"],
  };

  it("puts user words first so ours win, and every option in its own argv entry", () => {
    const argv = umlArgv(plan);
    expect(argv[0]).toBe("/usr/bin/linux.uml");
    expect(argv[1]).toBe("quiet");
    expect(argv).toContain("mem=64M");
    expect(argv).toContain("ubd0=/s/i/a/vm/d/root,/s/images/x.img");
    expect(argv).toContain("ubd1r=/s/i/a/vm/d/data");
    expect(argv).toContain("con=none");
    expect(argv).toContain("con0=null,fd:1");
    expect(argv).toContain("con1=fd:3,fd:4");
    expect(argv).toContain("ssl0=fd:5,fd:6");
    expect(argv).toContain("eth0=vde,/s/switches/lan,52:54:00:00:00:01");
    expect(argv).toContain("hostfs=/umlfleet-shares");
    expect(argv).toContain("umlfleet.ip=eth0:10.0.0.1/24");
    expect(argv).toContain("umlfleet.share=src:/mnt/src:ro");
    expect(argv.indexOf("hostfs=/umlfleet-shares")).toBeGreaterThan(argv.indexOf("quiet"));
  });

  it("uses legacy eth NICs before kernel 6.16 and vector NICs from it", () => {
    expect(nicDriverFor("6.1.176")).toBe("eth");
    expect(nicDriverFor("6.15.9")).toBe("eth");
    expect(nicDriverFor("6.16.0")).toBe("vec");
    expect(nicDriverFor("7.0")).toBe("vec");
    expect(nicArg({ index: 2, driver: "vec", switchDir: "/sw", mac: "52:54:00:00:00:02" })).toBe(
      "vec2:transport=vde,vnl=vde:///sw,mac=52:54:00:00:00:02",
    );
  });

  it("plugs an impaired NIC into its wirefilter's point-to-point socket instead of the switch", () => {
    const nic = { index: 1, switchDir: "/sw", mac: "52:54:00:00:00:02", ptp: "/s/i/a/links/nic1.ptp" };
    expect(nicArg({ ...nic, driver: "eth" })).toBe("eth1=vde,ptp:///s/i/a/links/nic1.ptp,52:54:00:00:00:02");
    expect(nicArg({ ...nic, driver: "vec" })).toBe(
      "vec1:transport=vde,vnl=ptp:///s/i/a/links/nic1.ptp,mac=52:54:00:00:00:02",
    );
  });

  it("gives con0 an input when the boot plan has one (umlfleet console), else none", () => {
    expect(umlArgv({ ...plan, fds: { ...plan.fds, consoleIn: 7 } })).toContain("con0=fd:7,fd:1");
  });

  it("marks a read-only plain disk r, never a COW", () => {
    expect(ubdArg({ index: 3, file: "/f", readOnly: true })).toBe("ubd3r=/f");
    expect(ubdArg({ index: 0, file: "/c", backing: "/b", readOnly: true })).toBe("ubd0=/c,/b");
  });

  it("derives stable, unicast, locally administered MACs", () => {
    const m = deterministicMac("web", 0, "lan");
    expect(m).toBe(deterministicMac("web", 0, "lan"));
    expect(m).not.toBe(deterministicMac("web", 1, "lan"));
    expect(m).toMatch(/^52:54(:[0-9a-f]{2}){4}$/);
  });
});

describe("sandbox argv", () => {
  it("binds nothing of the host but what it is given, drops capabilities, read-only shares read-only", () => {
    const a = sandboxArgv(
      {
        kernel: "/usr/bin/linux.uml",
        vmDir: "/s/i/a/vm",
        readOnlyPaths: ["/s/images/x.img"],
        readWritePaths: ["/s/switches/lan"],
        shares: [
          { name: "src", fd: 12, readOnly: true },
          { name: "out", fd: 13, readOnly: false },
        ],
        hostfsRoot: "/umlfleet-shares",
        infoFd: 11,
      },
      [
        { host: "/lib/x86_64-linux-gnu/libc.so.6", sandbox: "/lib/x86_64-linux-gnu/libc.so.6" },
        { host: "/usr/lib/x86_64-linux-gnu/vdeplug", sandbox: "/lib/x86_64-linux-gnu/vdeplug" },
      ],
    );
    const joined = a.join(" ");
    expect(joined).toContain("--unshare-all");
    expect(joined).toContain("--cap-drop ALL");
    expect(joined).toContain("--clearenv");
    // Shares are bound from the fds the host opened and checked, not by path.
    expect(joined).toContain("--ro-bind-fd 12 /umlfleet-shares/src");
    expect(joined).toContain("--bind-fd 13 /umlfleet-shares/out");
    expect(joined).toContain("--info-fd 11");
    expect(joined).toContain("--ro-bind /s/images/x.img /s/images/x.img");
    expect(joined).toContain("--bind /s/i/a/vm /s/i/a/vm");
    expect(joined).toContain("--ro-bind /usr/lib/x86_64-linux-gnu/vdeplug /lib/x86_64-linux-gnu/vdeplug");
    expect(joined).not.toMatch(/--(ro-)?bind \/etc|--bind \/ |--ro-bind \/usr \/usr/);
    expect(a[a.length - 1]).toBe("--");
    expect(joined).not.toContain("setpriv");
    // /proc read-only (no /proc/1/mem write through hostfs), after it is mounted.
    expect(joined).toContain("--proc /proc --remount-ro /proc");
    expect(joined).not.toContain("--seccomp");
  });

  it("loads the seccomp filter from the fd it is given", () => {
    const a = sandboxArgv(
      {
        kernel: "/k",
        vmDir: "/s/vm",
        readOnlyPaths: [],
        readWritePaths: [],
        shares: [],
        hostfsRoot: "/h",
        infoFd: 5,
        seccompFd: 99,
      },
      [],
    );
    expect(a.join(" ")).toContain("--seccomp 99");
    expect(a.indexOf("--seccomp")).toBeLessThan(a.indexOf("--"));
  });

  it("with runAs: no user namespace, setpriv drops to the uid before the kernel, folders above binds open", () => {
    const a = sandboxArgv(
      {
        kernel: "/root/.cache/umlfleet/kernels/k/linux",
        vmDir: "/s/i/a/vm",
        readOnlyPaths: [],
        readWritePaths: [],
        shares: [],
        hostfsRoot: "/umlfleet-shares",
        infoFd: 11,
        runAs: { uid: 2100000005, gid: 2100000005 },
      },
      [],
    );
    const joined = a.join(" ");
    expect(joined).not.toContain("--unshare-all");
    expect(joined).toContain("--unshare-pid");
    expect(joined).toContain("--cap-drop ALL --cap-add CAP_SETUID --cap-add CAP_SETGID");
    // /root is 0700 on the host: bwrap would make the sandbox's /root alike, and the uid could not reach the kernel.
    const opened = (d: string) => joined.indexOf(`--perms 0755 --dir ${d} `);
    expect(opened("/root")).toBeGreaterThan(-1);
    expect(opened("/root/.cache/umlfleet/kernels/k")).toBeGreaterThan(opened("/root"));
    expect(opened("/root/.cache/umlfleet/kernels/k")).toBeLessThan(joined.indexOf("--ro-bind /root/.cache"));
    expect(a.slice(-7)).toEqual([
      "--",
      "/usr/bin/setpriv",
      "--reuid=2100000005",
      "--regid=2100000005",
      "--clear-groups",
      "--inh-caps=-all",
      "--",
    ]);
  });
});
