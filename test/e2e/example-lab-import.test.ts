import { existsSync, mkdirSync, readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { processesMentioning } from "../helpers/runtime";
import { haveCli, useExample } from "./example-harness";

const MACHINES = ["pc1", "r1", "r2", "pc2"];
/** The example's own Kathará lab: pc1 -- A -- r1 -- B -- r2 -- C -- pc2, addresses and routes in .startup files. */
const LAB = join(__dirname, "..", "..", "examples", "lab-import", "lab");

/**
 * examples/lab-import: a Kathará lab folder imported by importLab and brought
 * up through the real `pulumi` CLI. Routing is static, set by the machines'
 * own startup scripts with busybox `ip`, and forwarding is on in the routers
 * as in Kathará.
 */
describe.skipIf(!haveCli)("examples/lab-import", () => {
  const ex = useExample("lab-import");

  it("an option umlfleet does not import fails preview naming the file and line, and nothing is made", () => {
    const bad = join(ex.dir, "bad-lab");
    mkdirSync(bad, { recursive: true });
    writeFileSync(join(bad, "lab.conf"), "# bridged to the host's LAN\npc1[0]=A\npc1[bridged]=true\n");
    const r = ex.pulumi("preview", { dir: bad });
    expect(r.error).toContain(`${join(bad, "lab.conf")}:3: option "bridged" of machine pc1 is not supported`);
    expect(processesMentioning(ex.stateDir)).toEqual([]);
    for (const made of ["instances", "networks", "disks", "bases"])
      expect(existsSync(join(ex.stateDir, made)) ? readdirSync(join(ex.stateDir, made)) : [], made).toEqual(
        [],
      );
  });

  it("comes up with the lab's metadata as outputs", () => {
    const r = ex.ok(ex.pulumi("up", { dir: LAB }));
    expect(r.outputs?.description).toBe("Two routers with static routes between two PCs");
    expect(r.outputs?.author).toBe("umlfleet");
    expect([...(r.outputs?.machines as string[])].sort()).toEqual([...MACHINES].sort());
    expect(r.outputs?.networks).toEqual(["A", "B", "C"]);
    // The lab checks ran after the guests were up; their results are outputs.
    const checks = r.outputs?.checks as Record<
      string,
      { ok: boolean; on: string; exitCode: number; output: string }
    >;
    expect(Object.keys(checks).sort()).toEqual(["pc1 reaches pc2", "pc2 routes by r2", "r1 forwards"]);
    expect(checks["pc1 reaches pc2"]).toMatchObject({ ok: true, on: "pc1", exitCode: 0 });
    expect(checks["pc1 reaches pc2"]!.output).toContain("3 packets transmitted");
    expect(checks["r1 forwards"]).toMatchObject({ ok: true, output: "1\n" });
  });

  it("routes across both routers: pc1 pings pc2 and the path goes through r1 and r2", async () => {
    expect(await ex.sh("pc1", "ping -c 3 -W 5 10.3.0.10")).toContain("3 packets received");
    expect(await ex.sh("pc2", "ping -c 1 -W 5 10.1.0.10")).toContain("1 packets received");
    const hops = await ex.sh("pc1", "traceroute -n -w 2 -q 1 10.3.0.10");
    expect(hops).toMatch(/1\s+10\.1\.0\.1\s/);
    expect(hops).toMatch(/2\s+10\.2\.0\.2\s/);
    expect(hops).toMatch(/3\s+10\.3\.0\.10\s/);
  });

  it("copies shared/ into every guest and a machine's folder over it; shared.startup ran in each", async () => {
    for (const m of MACHINES) {
      const motd = await ex.sh(m, "cat /etc/motd");
      expect(motd, m).toBe(m === "pc1" ? "pc1: the left PC.\n" : "Welcome to the lab-import example.\n");
      expect(await ex.sh(m, "cat /tmp/shared-ran"), m).toBe(`${m} ran shared.startup\n`);
    }
  });

  it("maps machine[mem] and machine[image], and starts machines in lab.dep's order", async () => {
    const spec = (m: string) => ex.rt().instances.get(m)!.spec;
    expect(spec("r1").memoryMiB).toBe(96);
    expect(spec("pc1").memoryMiB).toBe(64);
    expect(spec("r1").kernelArgs).toContain("sysctl.net.ipv4.ip_forward=1");
    // pc1's startup pinged r1 while it booted: r1 was up before pc1 started.
    expect(await ex.sh("pc1", "cat /tmp/first-hop")).toContain("ok");
    const deployment = ex.ok(ex.pulumi("export")).deployment!.deployment;
    const instance = (m: string) =>
      deployment.resources.find((x) => x.type.endsWith("umlfleet:Instance") && x.urn.endsWith(`::${m}`))!;
    expect(instance("pc1").dependencies).toContain(instance("r1").urn);
    expect(instance("pc2").dependencies).toContain(instance("r2").urn);
    expect(instance("r1").dependencies ?? []).not.toContain(instance("pc1").urn);
  });

  it("a failing check fails the update, naming the check and showing its output", () => {
    const r = ex.pulumi("up", {
      dir: LAB,
      extraChecks: [{ name: "web on pc2", on: "pc2", run: "echo no web server here; exit 3" }],
    });
    expect(r.error).toContain(
      '1 of 4 lab checks failed: check "web on pc2" failed: exit status 3, expected 0',
    );
    expect(r.error).toContain("no web server here");
    expect(r.error).toContain("[UMLFLEET_CHECK_FAILED]");
  });

  it("refresh re-runs the checks: a broken route fails the next up until it is mended", async () => {
    ex.ok(ex.pulumi("up", { dir: LAB }));
    await ex.sh("r1", "ip route del 10.3.0.0/24");
    ex.ok(ex.pulumi("refresh", { dir: LAB }));
    const broken = ex.pulumi("up", { dir: LAB });
    expect(broken.error).toContain('check "pc1 reaches pc2" failed: pc1 got no reply from 10.3.0.10');
    expect(broken.error).toContain("0 packets received");
    await ex.sh("r1", "ip route add 10.3.0.0/24 via 10.2.0.2");
    const mended = ex.ok(ex.pulumi("up", { dir: LAB }));
    expect(mended.outputs?.checks).toMatchObject({ "pc1 reaches pc2": { ok: true } });
  });

  it("a second up changes nothing, and a refresh of the working lab (checks run again) finds no drift", () => {
    const r = ex.ok(ex.pulumi("up", { dir: LAB }));
    expect(Object.keys(r.summary ?? {})).toEqual(["same"]);
    const checks = () =>
      ex
        .ok(ex.pulumi("export"))
        .deployment!.deployment.resources.find((x) => x.type.endsWith("umlfleet:LabChecks"))!.outputs;
    const before = checks();
    const refreshed = ex.ok(ex.pulumi("refresh", { dir: LAB }));
    expect(Object.keys(refreshed.summary ?? {})).toEqual(["same"]);
    expect(checks()).toEqual(before);
  });

  it("destroys to a clean host", () => ex.destroyClean());
});
