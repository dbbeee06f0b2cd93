import { importLab, Kernel, RootFilesystem } from "umlfleet";

/**
 * A Netkit/Kathará lab folder as umlfleet resources: importLab reads lab.conf,
 * lab.dep, the .startup scripts and the machine folders, and declares a
 * network per collision domain and a guest per machine. Kathará's Docker
 * images do not exist here: each image lab.conf names maps to a base.
 */
export function lab(opts: { dir: string; prefix?: string }) {
  const kernel = new Kernel("lab-kernel", { build: {} });
  const base = new RootFilesystem("lab-base", { source: { kind: "busybox", sizeMiB: 32 } });

  const imported = importLab(opts.dir, {
    kernel,
    // Machines without machine[image]; busybox has ip, ping and route.
    base,
    // machine[image]=kathara/frr: the same busybox base here (no FRR: routes are static).
    images: { "kathara/frr": base },
    ...(opts.prefix !== undefined ? { prefix: opts.prefix } : {}),
  });

  return {
    description: imported.meta.description,
    author: imported.meta.author,
    machines: Object.keys(imported.machines),
    networks: Object.keys(imported.networks),
  };
}
