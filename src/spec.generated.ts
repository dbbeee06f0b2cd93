/* Generated from schema/*.json by scripts/gen-spec-types.js (`npm run gen:spec`): do not edit. */
/**
 * A root filesystem (base) shared read-only by many instances through COW overlays. Content-addressed: the image file is named by its sha256.
 */
export interface BaseSpec {
  /**
   * Resource name: lower-case letters, digits and '-', starting with a letter, at most 32 characters.
   */
  name: string;
  source:
    | {
        kind: "busybox";
        sizeMiB?: number;
        /**
         * @maxItems 256
         */
        files?: InjectedFile[];
      }
    | {
        kind: "image";
        /**
         * Absolute host path without '..' or '.' segments and without characters UML or a shell would read as separators.
         */
        path: string;
      }
    | {
        kind: "directory";
        /**
         * Absolute host path without '..' or '.' segments and without characters UML or a shell would read as separators.
         */
        path: string;
        sizeMiB?: number;
      }
    | {
        kind: "debian";
        /**
         * The Debian release.
         */
        suite: "bookworm" | "trixie";
        /**
         * mmdebstrap's package set: minbase is Essential:yes, apt and priority required.
         */
        variant?: "essential" | "apt" | "minbase" | "required" | "important" | "standard";
        /**
         * More packages from the mirror, with their dependencies. Their maintainer scripts run without a network.
         *
         * @maxItems 256
         *
         * Items: A Debian package name as Debian policy spells it: lower-case letters, digits, '+', '-' and '.', starting with a letter or digit, at least two characters (so no option, version, path or list can ride along).
         */
        packages?: string[];
        sizeMiB?: number;
        /**
         * @maxItems 256
         */
        files?: InjectedFile[];
      };
}
/**
 * A file written into a base image at build time.
 */
export interface InjectedFile {
  /**
   * Absolute path inside the guest, same rules as hostPath, not '/' itself.
   */
  path: string;
  content: string;
  mode?: number;
}

/**
 * A block device file: a COW overlay over a base, a blank disk, or a swap disk.
 */
export type DiskSpec = {
  /**
   * Resource name: lower-case letters, digits and '-', starting with a letter, at most 32 characters.
   */
  name: string;
  kind: "overlay" | "blank" | "swap";
  /**
   * Resource name: lower-case letters, digits and '-', starting with a letter, at most 32 characters.
   */
  base?: string;
  /**
   * blank and swap only.
   */
  sizeMiB?: number;
  /**
   * blank only: make an ext4 filesystem on it.
   */
  format?: "ext4" | "none";
};

/**
 * A virtual Ethernet switch (vde_switch) that instances attach NICs to.
 */
export interface NetworkSpec {
  /**
   * Resource name: lower-case letters, digits and '-', starting with a letter, at most 32 characters.
   */
  name: string;
  /**
   * Repeat every frame to every port (for watching traffic, as in a honeypot).
   */
  hub?: boolean;
  ports?: number;
  /**
   * Put the host itself on this network through a TAP interface attached to the switch. umlfleet makes the tap when it has CAP_NET_ADMIN (e.g. as root) and removes it with the network; otherwise name a persistent tap you own (ip tuntap add dev NAME mode tap user YOU, by root once).
   */
  hostInterface?: {
    /**
     * a host interface name: a lower-case letter, then lower-case letters, digits, '_' or '-', at most 15 characters
     */
    name: string;
    /**
     * The host's address on the network, set on the tap (needs CAP_NET_ADMIN unless the tap has it already).
     */
    ipv4?: string;
  };
  /**
   * Write every frame on this network to a pcap file on the host. A captured network forwards like a hub, so the capture sees unicast frames too.
   */
  capture?: {
    /**
     * the pcap file: its name ends in .pcap, in an existing folder under an allowed capture folder ($UMLFLEET_CAPTURE_DIRS, default your home and the temp folder), never in umlfleet's state folder or a share
     */
    path: string;
    /**
     * Frames past this size are counted, not written. Default 64.
     */
    maxSizeMiB?: number;
  };
}

/**
 * One UML guest. Names refer to bases, disks and networks on the same host.
 */
export interface InstanceSpec {
  /**
   * Resource name: lower-case letters, digits and '-', starting with a letter, at most 32 characters.
   */
  name: string;
  /**
   * The UML kernel binary. Default: the host's default kernel, $UMLFLEET_KERNEL if set, else Debian's /usr/bin/linux.uml.
   */
  kernel?: string;
  /**
   * Guest memory in MiB. Changes up to maxMemoryMiB apply live (UML's mconsole memory balloon).
   */
  memoryMiB?: number;
  /**
   * Memory the guest boots with (mem=); the balloon holds back maxMemoryMiB - memoryMiB. Default: memoryMiB. Changing it needs a restart.
   */
  maxMemoryMiB?: number;
  /**
   * Resource name: lower-case letters, digits and '-', starting with a letter, at most 32 characters.
   */
  rootDisk: string;
  /**
   * Extra disks, ubd1 upwards in this order (the guest's /dev/ubdb, /dev/ubdc, ...), at most 14: ubd15 is the swap disk's.
   *
   * @maxItems 14
   */
  disks?: {
    /**
     * Resource name: lower-case letters, digits and '-', starting with a letter, at most 32 characters.
     */
    disk: string;
    readOnly?: boolean;
  }[];
  /**
   * Resource name: lower-case letters, digits and '-', starting with a letter, at most 32 characters.
   */
  swapDisk?: string;
  /**
   * Network interfaces vec0, vec1, ... in this order.
   *
   * @maxItems 16
   */
  nics?: {
    /**
     * Resource name: lower-case letters, digits and '-', starting with a letter, at most 32 characters.
     */
    network: string;
    /**
     * Default: derived from instance name, NIC index and network name.
     */
    mac?: string;
    /**
     * Set by umlfleet's init at boot (and at hot-plug).
     */
    ipv4?: string;
    /**
     * The NIC's MTU in bytes, set by umlfleet's init at boot (and at hot-plug; a change applies to the running guest). Default 1500. Lower it where frames cross a UDP cable between hosts: 1458 makes a full frame one datagram on a 1500-byte link (docs/hosts.md). At most 1500: larger frames are not carried through vde_switch here.
     */
    mtu?: number;
    /**
     * An IPv6 address with prefix length, set by umlfleet's init (duplicate address detection off, so it is usable at once).
     */
    ipv6?: string;
    /**
     * The default route of its address family through this NIC: an address inside this NIC's ipv4 (or ipv6) subnet, or an IPv6 link-local address. At most one NIC per family sets it.
     */
    gateway?: string;
    /**
     * Static routes through this NIC, set by umlfleet's init after its addresses: `via` must lie inside this NIC's ipv4 (or ipv6) subnet (or be IPv6 link-local).
     *
     * @maxItems 32
     */
    routes?: {
      /**
       * An IPv4 or IPv6 network with prefix length, e.g. 10.1.0.0/24 or fd00:20::/64.
       */
      to: string;
      /**
       * An IPv4 or IPv6 address without prefix length, e.g. 10.0.0.254 or fd00:10::fe.
       */
      via: string;
    }[];
    /**
     * Impair or cut this NIC's link, live: a wirefilter (Debian's vde2) sits between the NIC and its switch and applies these to the frames the guest sends (like netem on the NIC: a ping's round trip grows by delayMs and loses lossPercent of its requests). Changes apply to the running guest through wirefilter's management socket, without a reboot. A NIC without impairment is plugged into its switch directly.
     */
    impairment?: {
      /**
       * Added delay, in milliseconds. Default 0.
       */
      delayMs?: number;
      /**
       * Each frame's delay varies uniformly by up to this many milliseconds either way; at most delayMs. Default 0.
       */
      jitterMs?: number;
      /**
       * Share of frames dropped, in percent. Default 0.
       */
      lossPercent?: number;
      /**
       * Bandwidth limit in kilobits per second (1000 bits); frames beyond it queue, then drop. Default: no limit.
       */
      rateKbit?: number;
      /**
       * Share of frames sent twice (or more: each copy may be duplicated again), in percent, at most 50 (wirefilter copies a frame while a draw falls below it: at 100 it never stops). Default 0.
       */
      duplicatePercent?: number;
      /**
       * Cut the link both ways (every frame dropped; the guest's interface stays up, as with a cable cut behind a switch). Default false.
       */
      down?: boolean;
    };
  }[];
  /**
   * How many serial lines (/dev/ttyS0..) the guest gets; each can be joined by a SerialLink.
   */
  serialLines?: number;
  /**
   * Host directories the guest may mount with hostfs. Nothing else of the host is reachable.
   *
   * @maxItems 16
   */
  shares?: {
    /**
     * Resource name: lower-case letters, digits and '-', starting with a letter, at most 32 characters.
     */
    name: string;
    /**
     * Absolute host path without '..' or '.' segments and without characters UML or a shell would read as separators.
     */
    hostPath: string;
    /**
     * Absolute path inside the guest, same rules as hostPath, not '/' itself.
     */
    guestPath: string;
    readOnly?: boolean;
  }[];
  /**
   * Resource name: lower-case letters, digits and '-', starting with a letter, at most 32 characters.
   */
  hostname?: string;
  /**
   * Extra kernel command-line words for the guest, from an allow-list of guest-side words; anything else is refused naming the word (host-side UML options such as ubd, eth, con, hostfs, mem, root, init, rootfstype would let a program reach the host or break the boot). Allowed: quiet, ignore_loglevel, norandmaps, loglevel=0-7, panic=N, lpj=N, printk.time=0|1, net.ifnames=0|1, ipv6.disable=0|1, sysctl.<key>=<value>, systemd.<key>=<value>, umlfleet.profile=1, and the init arguments single, emergency, S, 1-5. Why each: docs/resources.md.
   *
   * @maxItems 32
   *
   * Items: a guest-side kernel word from the allow-list: quiet, ignore_loglevel, norandmaps, loglevel=0-7, panic=N, lpj=N, printk.time=0|1, net.ifnames=0|1, ipv6.disable=0|1, sysctl.<key>=<value>, systemd.<key>=<value>, umlfleet.profile=1, single, emergency, S, 1-5
   */
  kernelArgs?: string[];
  /**
   * marker: wait for umlfleet's init to report ready on the console (bases built by umlfleet). mconsole: ready when the kernel answers mconsole (imported images with their own init).
   */
  readiness?: "marker" | "mconsole";
  bootTimeoutMs?: number;
  /**
   * The most console output kept on the host, in KiB: console.log holds the newest half, console.log.1 the half before it. A guest cannot grow the log beyond this. Changing it needs a restart.
   */
  consoleLogKiB?: number;
  /**
   * Files written into the guest's root at every boot, before the startup script (like a Netkit/Kathará machine folder): each from `content` or from a host file `source`, owned by root with `mode` (default 0644). At most 1 MiB each, 4 MiB in all. Needs umlfleet's init (readiness marker).
   *
   * @maxItems 64
   */
  files?: ({
    [k: string]: unknown;
  } & {
    /**
     * an absolute path in the guest, not under /proc, /sys, /dev or /umlfleet (umlfleet's init)
     */
    path: string;
    content?: string;
    /**
     * Absolute host path without '..' or '.' segments and without characters UML or a shell would read as separators.
     */
    source?: string;
    mode?: number;
  })[];
  /**
   * A shell script umlfleet's init runs at every boot, after addresses, routes and files are set and before the guest counts as ready; its output goes to the console log, its exit status to the instance's startupExitCode. At most 64 KiB. Start long-running services in the background.
   */
  startup?: string;
  /**
   * A startup script that exits non-zero fails the boot (the guest is stopped, as for any boot error). Default false: the exit status is only reported.
   */
  startupMustSucceed?: boolean;
  /**
   * Who may log in to this guest, set by umlfleet's init at every boot: `user` (default root; any other is created with a home folder) gets `sshPublicKeys` as its authorized_keys and `passwordHash` in /etc/shadow, and the image's sshd is started when it has one (host keys made in the guest at its first boot, kept on its disk). Needs umlfleet's init (readiness marker). Changing it needs a restart.
   */
  login?: {
    /**
     * A guest account name as useradd accepts it: a lower-case letter or '_', then lower-case letters, digits, '_' or '-', at most 32 characters.
     */
    user?: string;
    /**
     * @maxItems 32
     *
     * Items: One OpenSSH public key line: its type, its base64 body and an optional comment of printable characters (no line break, so one key cannot smuggle another line into authorized_keys).
     */
    sshPublicKeys?: string[];
    /**
     * A crypt(3) password hash as /etc/shadow holds it ($6$salt$hash from `mkpasswd -m sha-512`, $y$... yescrypt, $5$, $2b$): never a clear-text password; no ':' or line break.
     */
    passwordHash?: string;
  };
  /**
   * The host user the guest's UML process runs as, so one guest's processes cannot be signalled or read by another's on the host: a host account `user`, a `uid` from the host's pool (UMLFLEET_UID_POOL, default 2100000000-2100009999; its group is the same number), or `pool: true` for the lowest uid of the pool no other guest of this host uses. Needs umlfleet to run as root (CAP_SETUID). Its disks, vm/ folder and set-up are then owned by that uid. Default: the user running umlfleet. Changing it needs a restart.
   */
  runAs?: {
    [k: string]: unknown;
  } & {
    /**
     * a host account name
     */
    user?: string;
    uid?: number;
    pool?: true;
  };
}

/**
 * A null-modem cable between serial line a.line of one instance and b.line of another.
 */
export interface SerialLinkSpec {
  /**
   * Resource name: lower-case letters, digits and '-', starting with a letter, at most 32 characters.
   */
  name: string;
  a: End;
  b: End;
}
export interface End {
  /**
   * Resource name: lower-case letters, digits and '-', starting with a letter, at most 32 characters.
   */
  instance: string;
  /**
   * The guest's /dev/ttyS<line>.
   */
  line: number;
}

/**
 * A UML kernel: an existing binary, or one built from Debian's linux-source-6.1 with umlfleet's lean profile plus extra config lines, cached by content hash.
 */
export type KernelSpec = {
  /**
   * An existing UML kernel binary.
   */
  path?: string;
  build?: {
    /**
     * The base profile: kernel/lean.config over make defconfig.
     */
    profile?: "lean";
    /**
     * Kconfig lines appended to the profile, e.g. CONFIG_BRIDGE=y or '# CONFIG_BTRFS_FS is not set'.
     *
     * @maxItems 256
     */
    extraConfig?: string[];
    timeoutMs?: number;
  };
} & {
  [k: string]: unknown;
};

/**
 * Many instances as one unit: each member boots its own COW overlay '<member>-root' over one base, on one kernel. Each member is an instance spec without name, rootDisk and kernel, and is checked against instance.json.
 */
export interface InstanceGroupSpec {
  /**
   * Resource name: lower-case letters, digits and '-', starting with a letter, at most 32 characters.
   */
  name: string;
  /**
   * Resource name: lower-case letters, digits and '-', starting with a letter, at most 32 characters.
   */
  base: string;
  /**
   * The UML kernel binary every member boots. Default: the host's default kernel, $UMLFLEET_KERNEL if set, else Debian's /usr/bin/linux.uml.
   */
  kernel?: string;
  /**
   * Member name (the instance's name; its root overlay is '<member>-root', so at most 27 characters) to its instance spec.
   */
  members: {
    [k: string]: {
      /**
       * set by the group: the member's key in members is its name
       */
      name?: {
        [k: string]: unknown;
      };
      /**
       * set by the group: every member boots its own overlay '<member>-root' over the group's base
       */
      rootDisk?: {
        [k: string]: unknown;
      };
      /**
       * set by the group: the group's kernel is every member's kernel
       */
      kernel?: {
        [k: string]: unknown;
      };
    };
  };
}

/**
 * Where resources live: the machine running the provider (no ssh), or a target host reached with the system ssh, running `umlfleet-agent dial-stdio` there (docs/hosts.md).
 */
export interface HostSpec {
  ssh?: {
    /**
     * Host name, IPv4 or IPv6 address (no user, no port, not starting with '-': it reaches ssh's command line).
     */
    host: string;
    port?: number;
    /**
     * The SSH user (a POSIX user name). Default: ssh's (~/.ssh/config, else the local user).
     */
    user?: string;
    /**
     * An OpenSSH or PEM private key, unencrypted (give it as a Pulumi secret). Default: ssh's own (ssh-agent, ~/.ssh).
     */
    privateKey?: string;
    /**
     * The host's public key, '<type> <base64>' as in its /etc/ssh/ssh_host_ed25519_key.pub: the only key accepted. Default: the provider user's known_hosts decides.
     */
    hostKey?: string;
    /**
     * Accept any host key: anyone on the path can then read and change the traffic. For throwaway hosts only.
     */
    insecureIgnoreHostKey?: boolean;
    /**
     * The agent command on the host. Default ["umlfleet-agent"].
     *
     * @minItems 1
     * @maxItems 16
     */
    agentCommand?: [string, ...string[]];
    /**
     * umlfleet's state folder on a host: an absolute path as hostPath allows, at most 50 characters, because the longest unix socket path under it (an instance's mconsole, <stateDir>/instances/<32-character name>/vm/u/mconsole) must fit the kernel's 107 bytes.
     */
    stateDir?: string;
    connectTimeoutMs?: number;
  };
}

/**
 * Checks run in a lab's guests after they are up (LabChecks): each a reach (ping from one guest to an address) or a command (a script in a guest whose exit status and output must be as expected). A failing check fails the update.
 */
export interface LabChecksSpec {
  /**
   * @minItems 1
   * @maxItems 64
   */
  checks: [LabCheck, ...LabCheck[]];
}
/**
 * One check: exactly one of reach and command (checked after the schema).
 */
export interface LabCheck {
  /**
   * Names the check in outputs and messages: letters, digits, space and _.:/-, at most 64 characters.
   */
  name: string;
  /**
   * How long the check may run in the guest.
   */
  timeoutMs?: number;
  /**
   * `from` pings `to` (an IPv4 or IPv6 address); it passes when a reply comes back.
   */
  reach?: {
    /**
     * Resource name: lower-case letters, digits and '-', starting with a letter, at most 32 characters.
     */
    from: string;
    /**
     * An IPv4 or IPv6 address without prefix length, e.g. 10.0.0.254 or fd00:10::fe.
     */
    to: string;
    /**
     * Echo requests sent; one reply passes.
     */
    count?: number;
  };
  /**
   * `run` is a shell script run in guest `on` (as umlfleet exec runs it); it passes when its exit status is `expect.exitCode` (default 0) and its output holds `expect.output`.
   */
  command?: {
    /**
     * Resource name: lower-case letters, digits and '-', starting with a letter, at most 32 characters.
     */
    on: string;
    /**
     * A shell script, at most 2048 characters (it travels to the guest in one line of its control channel).
     */
    run: string;
    expect?: {
      exitCode?: number;
      /**
       * Text the output (stdout and stderr) must contain.
       */
      output?: string;
    };
  };
}
