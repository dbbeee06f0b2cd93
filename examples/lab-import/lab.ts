import { importLab, Kernel, LabChecks, RootFilesystem } from "umlfleet";

/** A check given to the program (a command in a guest and the text its output must hold). */
export interface ExtraCheck {
  name: string;
  on: string;
  run: string;
  output?: string;
}

/**
 * A Netkit/Kathará lab folder as umlfleet resources: importLab reads lab.conf,
 * lab.dep, the .startup scripts and the machine folders, and declares a
 * network per collision domain and a guest per machine. Kathará's Docker
 * images do not exist here: each image lab.conf names maps to a base. Lab
 * checks then prove the lab works after every change.
 */
export function lab(opts: { dir: string; prefix?: string; extraChecks?: ExtraCheck[] }) {
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
  const { pc1, pc2, r1 } = imported.machines;

  const checks = new LabChecks("lab-checks", {
    checks: [
      { name: "pc1 reaches pc2", reach: { from: pc1!, to: "10.3.0.10" } },
      {
        name: "r1 forwards",
        command: { on: r1!, run: "cat /proc/sys/net/ipv4/ip_forward", expect: { output: "1" } },
      },
      {
        name: "pc2 routes by r2",
        command: { on: pc2!, run: "ip route", expect: { output: "via 10.3.0.1" } },
      },
      ...(opts.extraChecks ?? []).map((c) => ({
        name: c.name,
        command: {
          on: imported.machines[c.on]!,
          run: c.run,
          ...(c.output !== undefined ? { expect: { output: c.output } } : {}),
        },
      })),
    ],
  });

  return {
    description: imported.meta.description,
    author: imported.meta.author,
    machines: Object.keys(imported.machines),
    networks: Object.keys(imported.networks),
    checks: checks.results,
  };
}
