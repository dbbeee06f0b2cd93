import { describe, expect, it } from "vitest";
import { kernelRunsGuests } from "../../src";
import { DEBIAN_KERNEL } from "../../examples/kernel-lab/lab";
import { haveCli, useExample } from "./example-harness";

// The variant kernel is built from source the first time (minutes on 2 cores), then cached.
const BUILD_MS = 50 * 60_000;

// Doctor's probe: one boot of /bin/true under Debian's kernel. It dies at the
// first guest process on CPUs with AMX (docs/kernel.md).
const debian = await kernelRunsGuests(DEBIAN_KERNEL);

/** examples/kernel-lab: one base, two kernels side by side. */
describe.skipIf(!haveCli)("examples/kernel-lab", () => {
  const ex = useExample("kernel-lab", { timeoutMs: BUILD_MS });

  it(
    "boots one base under the lean kernel and a variant build of it; each guest reports its own kernel",
    async () => {
      const r = ex.ok(ex.pulumi("up", { second: "variant" }));
      const [leanVersion, variantVersion] = r.outputs?.kernels as [string, string];
      const lean = (await ex.sh("on-lean", "uname -r")).trim();
      const variant = (await ex.sh("on-variant", "uname -r")).trim();
      expect(lean).toMatch(/^6\.\d+\.\d+/);
      expect(variant).toBe(`${lean}-kernel-lab`);
      expect(leanVersion).toContain(lean);
      expect(variantVersion).toContain(variant);
      // Same base: both overlays are over one image.
      const disks = ex.rt().disks;
      const backing = (d: string) => disks.get(d)?.backingPath;
      expect(backing("on-lean-root")).toBeTruthy();
      expect(backing("on-variant-root")).toBe(backing("on-lean-root"));
    },
    BUILD_MS,
  );

  it("destroys to a clean host", () => ex.destroyClean());

  it.runIf(debian.ok)(
    `with Debian's kernel as the second, each guest reports its own kernel (probe: ${debian.detail})`,
    async () => {
      ex.ok(ex.pulumi("up", { second: "debian" }));
      const lean = (await ex.sh("on-lean", "uname -r")).trim();
      const deb = (await ex.sh("on-debian", "uname -r")).trim();
      expect(deb).toMatch(/^6\.\d+\.\d+/);
      expect(deb).not.toBe(lean);
      ex.destroyClean();
    },
    BUILD_MS,
  );

  // Skipped where the probe says Debian's kernel runs guests (the test above runs there instead).
  it.runIf(!debian.ok)(
    `where Debian's kernel cannot run guests (probe: ${debian.detail}), up with it fails naming why and destroys clean`,
    () => {
      const r = ex.pulumi("up", { second: "debian" });
      expect(r.error).toBeTruthy();
      expect(r.stdout).toMatch(/on-debian/);
      expect(r.stdout).toMatch(/cannot run guest processes on this CPU/);
      ex.destroyClean();
    },
    BUILD_MS,
  );
});
