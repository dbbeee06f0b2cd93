import * as pulumi from "@pulumi/pulumi";
import { Disk, Instance, Kernel, RootFilesystem } from "umlfleet";

/** root's password is "distrolab" (`openssl passwd -6`): a hash, kept as a Pulumi secret. */
export const ROOT_PASSWORD_HASH =
  "$6$distrolabsalt$Xa7SfZhbkLsq9/S5ClSGwbEEXf0y/XqCwthWBD/4eq75txCatbTs590rNTrbD9sPLRYmZKeGufmYCiWTQcu6D0";

/**
 * Debian bookworm (minbase: apt, dpkg and the required packages), built by
 * mmdebstrap without root from the mirror this machine's apt uses, cached by
 * its content hash. umlfleet's init boots it; Debian's own agetty and login
 * answer on the guest's second serial line, whose host end is a FIFO pair.
 */
export function lab() {
  const kernel = new Kernel("distro-kernel", { build: {} });
  const bookworm = new RootFilesystem("bookworm", { source: { kind: "debian", suite: "bookworm" } });

  const debian = new Instance("debian", {
    kernel,
    rootDisk: new Disk("debian-root", { kind: "overlay", base: bookworm }),
    memoryMiB: 128,
    login: { passwordHash: pulumi.secret(ROOT_PASSWORD_HASH) },
    // A login prompt on ttyS1, started again after each logout (as inittab's respawn would).
    startup: "(while :; do /sbin/agetty -L 115200 ttyS1 vt100; done) </dev/null >/dev/null 2>&1 &\n",
  });

  return {
    machine: debian.name,
    // The host's end of ttyS1: write to `in`, read from `out`.
    loginLine: debian.serialPorts.apply((ports) => ports.find((p) => p.line === 1)!),
  };
}
