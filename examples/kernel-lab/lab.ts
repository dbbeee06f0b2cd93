import * as pulumi from "@pulumi/pulumi";
import { Disk, Instance, Kernel, RootFilesystem } from "umlfleet";

/** The second kernel: a variant build of umlfleet's lean kernel, or Debian's packaged one. */
export type SecondKernel = "variant" | "debian";

/** Debian's packaged UML kernel (package user-mode-linux). */
export const DEBIAN_KERNEL = "/usr/bin/linux.uml";

/**
 * One base booted under two kernels side by side: umlfleet's lean kernel,
 * and either a second build of it with one more Kconfig line (its own
 * `uname -r`) or Debian's packaged kernel.
 */
export function lab(opts: { second?: SecondKernel } = {}) {
  const second = opts.second ?? "variant";
  const base = new RootFilesystem("kernel-lab-base", { source: { kind: "busybox", sizeMiB: 32 } });
  const lean = new Kernel("lean", { build: {} });
  const other =
    second === "debian"
      ? new Kernel("debian", { path: DEBIAN_KERNEL })
      : new Kernel("lean-lab", { build: { extraConfig: ['CONFIG_LOCALVERSION="-kernel-lab"'] } });

  const machines = [
    { name: "on-lean", kernel: lean },
    { name: `on-${second}`, kernel: other },
  ].map(
    (m) =>
      new Instance(m.name, {
        kernel: m.kernel,
        rootDisk: new Disk(`${m.name}-root`, { kind: "overlay", base }),
      }),
  );

  return {
    machines: pulumi.all(machines.map((m) => m.name)),
    kernels: pulumi.all([lean.version, other.version]),
  };
}
