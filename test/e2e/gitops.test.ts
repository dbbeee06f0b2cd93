import { execFileSync, spawn } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { pulumiBinDir } from "../../automation/local-stack";
import { sweepStaleKeys } from "../../provider/driver-factory";
import { killPids } from "../../src/process";
import { hostsUnsupported, makeHosts, type HostLab, type NsHost } from "../helpers/hosts";
import { newTestDir, processesMentioning } from "../helpers/runtime";

const REPO = resolve(__dirname, "..", "..");
const EXAMPLE = join(REPO, "examples", "gitops");
const WORKFLOW = join(EXAMPLE, "github-actions.yml");
const haveCli = existsSync(join(pulumiBinDir(), "pulumi"));

/**
 * The `run:` text of each named step of a GitHub Actions workflow (the
 * subset of YAML the example uses: `- name: X` then `run: cmd` or `run: |`
 * and an indented block).
 */
export function workflowSteps(yaml: string): Map<string, string> {
  const steps = new Map<string, string>();
  const lines = yaml.split("\n");
  let name: string | undefined;
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    const n = /^\s*- name: (.+)$/.exec(line);
    if (n) name = n[1]!.trim();
    const r = /^(\s*)run: (.*)$/.exec(line);
    if (!r || name === undefined) continue;
    if (r[2] !== "|") {
      steps.set(name, r[2]!);
      continue;
    }
    const body: string[] = [];
    while (i + 1 < lines.length && (lines[i + 1]!.trim() === "" || lines[i + 1]!.startsWith(`${r[1]}  `)))
      body.push(lines[++i]!.slice(r[1]!.length + 2));
    steps.set(name, body.join("\n").trimEnd());
  }
  return steps;
}

/**
 * examples/gitops with the real `pulumi` CLI: the workflow's own steps
 * (their `run:` lines, read from github-actions.yml) against a target host in
 * a network namespace (test/helpers/hosts.ts), as CI would run them on a
 * pull request, a merge and the hourly drift check.
 */
describe.skipIf(!haveCli || hostsUnsupported() !== undefined)(
  "examples/gitops: the workflow against a host over SSH",
  () => {
    const dir = newTestDir("gitops");
    const project = join(dir, "lab");
    const stackFile = join(project, "Pulumi.lab.yaml");
    let lab: HostLab;
    let host: NsHost;
    let env: NodeJS.ProcessEnv;
    const steps = workflowSteps(readFileSync(WORKFLOW, "utf8"));

    /** One step of the workflow, in bash as Actions runs it; its exit status and output. */
    const step = (name: string): Promise<{ status: number | null; out: string }> => {
      const script = steps.get(name);
      if (script === undefined) throw new Error(`the workflow has no step ${name}`);
      return new Promise((done, fail) => {
        const child = spawn("bash", ["--noprofile", "--norc", "-eo", "pipefail", "-c", script], {
          cwd: project,
          env,
          stdio: ["ignore", "pipe", "pipe"],
        });
        let out = "";
        child.stdout.on("data", (d: Buffer) => (out += d.toString()));
        child.stderr.on("data", (d: Buffer) => (out += d.toString()));
        child.on("error", fail);
        child.on("close", (status) => done({ status, out }));
      });
    };
    const ok = async (name: string) => {
      const r = await step(name);
      expect(r.status, `step ${name}:\n${r.out}`).toBe(0);
      return r.out;
    };
    /** A commit to the lab's shape (what a pull request changes). */
    const edit = (from: string | RegExp, to: string) => {
      const text = readFileSync(stackFile, "utf8");
      const next = text.replace(from, to);
      expect(next, `${String(from)} in Pulumi.lab.yaml`).not.toBe(text);
      writeFileSync(stackFile, next);
    };
    const guestPids = (guest: string) =>
      execFileSync("sh", ["-c", `pgrep -U ${host.uid} -f 'instances/${guest}/' || true`], {
        encoding: "utf8",
      })
        .trim()
        .split("\n")
        .filter(Boolean)
        .map(Number);
    /** Ping from a guest, through `umlfleet exec` on the host: "0" when it got through, else the output. */
    const ping = (guest: string, ip: string) =>
      host
        .ssh(
          `out=$(${join(REPO, "bin", "umlfleet")} exec ${guest} -- ping -c 1 -W 3 ${ip} 2>&1) && echo 0 || echo "$out"`,
        )
        .trim();
    /** A guest just (re)booted may need a moment for its neighbours' ARP caches: poll. */
    const pings = (guest: string, ip: string) =>
      expect.poll(() => ping(guest, ip), { timeout: 30_000, interval: 1_000 }).toBe("0");

    /** Does `pulumi preview --diff` output show `op` (create, update, ...) on the resource `name`? */
    const shows = (out: string, op: string, name: string) =>
      new RegExp(`: \\(${op}\\)\\n(\\s+\\[id=[^\\]]*\\]\\n)?\\s+\\[urn=\\S*::${name}\\]`).test(out);

    beforeAll(() => {
      lab = makeHosts(1);
      host = lab.hosts[0]!;
      mkdirSync(join(project, "node_modules"), { recursive: true });
      // The example as a checkout holds it, its program compiled to dist/ (the install step's build).
      writeFileSync(
        join(project, "Pulumi.yaml"),
        readFileSync(join(EXAMPLE, "Pulumi.yaml"), "utf8").replace(
          /^main: .*$/m,
          `main: ${join(REPO, "dist", "examples", "gitops", "index.js")}`,
        ),
      );
      writeFileSync(stackFile, readFileSync(join(EXAMPLE, "Pulumi.lab.yaml"), "utf8"));
      // The dynamic provider loads umlfleet (and its SDK) by name from the project's node_modules.
      symlinkSync(REPO, join(project, "node_modules", "umlfleet"));
      symlinkSync(join(REPO, "node_modules", "@pulumi"), join(project, "node_modules", "@pulumi"));
      const bin = pulumiBinDir();
      const providerHost = existsSync(join(bin, "pulumi-resource-pulumi-nodejs"))
        ? []
        : [dirname(require.resolve("@pulumi/pulumi/pulumi-resource-pulumi-nodejs"))];
      const inherited = Object.fromEntries(
        Object.entries(process.env).filter(([k]) => !/^(PULUMI_|UMLFLEET_|LAB_|VITEST)/.test(k)),
      );
      // What the workflow's env: block gives the job (CI variables and secrets).
      env = {
        ...inherited,
        PATH: [bin, ...providerHost, process.env.PATH ?? ""].join(":"),
        PULUMI_HOME: join(dir, "pulumi-home"),
        PULUMI_BACKEND_URL: `file://${join(dir, "backend")}`,
        PULUMI_CONFIG_PASSPHRASE: "gitops-test",
        PULUMI_PARALLEL_DIFF: "true",
        PULUMI_SKIP_UPDATE_CHECK: "true",
        PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION: "true",
        LAB_HOST: host.address,
        LAB_USER: host.user,
        LAB_HOST_KEY: host.hostKey,
        LAB_KERNEL: join(lab.dir, "linux"),
        LAB_SSH_KEY: lab.privateKey,
      };
      mkdirSync(join(dir, "backend"), { recursive: true });
    });

    afterAll(async () => {
      try {
        if (env && existsSync(join(project, "Pulumi.yaml"))) await step("destroy");
      } finally {
        lab?.teardown();
        sweepStaleKeys();
        rmSync(dir, { recursive: true, force: true });
      }
    });

    it("the workflow previews on a pull request, applies on a merge, and checks drift", () => {
      expect([...steps.keys()]).toEqual(["install", "configure", "preview", "up", "drift", "destroy"]);
      expect(steps.get("preview")).toMatch(/^pulumi preview --diff\b/);
      // --refresh: a preview's refresh is not saved; without it up trusts the old state and repairs nothing.
      expect(steps.get("up")).toMatch(/^pulumi up --yes --refresh\b/);
      expect(steps.get("drift")).toMatch(/^pulumi preview --refresh --expect-no-changes\b/);
      expect(readFileSync(WORKFLOW, "utf8")).toMatch(
        /- name: preview\n\s+if: github.event_name == 'pull_request'/,
      );
    });

    it("a pull request's preview shows what it creates; the merge's up makes it; the drift check then passes", async () => {
      await ok("configure");
      const preview = await ok("preview");
      expect(preview).toMatch(/\+ 9 to create/);
      for (const name of ["lab-host", "web", "db", "gitops-lan"])
        expect(shows(preview, "create", name), `${name}\n${preview}`).toBe(true);
      await ok("up");
      await pings("web", "10.40.0.2");
      await ok("drift");
    });

    it("a change to the lab fails the drift check until it is merged, and its preview names it", async () => {
      edit(/memoryMiB: "?64"?/, "memoryMiB: 96");
      const drift = await step("drift");
      expect(drift.status, drift.out).not.toBe(0);
      const preview = await ok("preview");
      expect(preview).toMatch(/~\s+memoryMiB\s*: 64 => 96/);
      expect(preview).toMatch(/2 to update/);
      for (const name of ["web", "db"])
        expect(shows(preview, "update", name), `${name}\n${preview}`).toBe(true);
      // A new guest: created, nothing else touched.
      edit(/^(\s+)- db$/m, "$1- db\n$1- cache");
      const more = await ok("preview");
      expect(shows(more, "create", "cache")).toBe(true);
      expect(shows(more, "create", "cache-root")).toBe(true);
      expect((await step("drift")).status).not.toBe(0);
      edit(/\n\s+- cache$/m, "");
      await ok("up");
      await ok("drift");
      await pings("db", "10.40.0.1");
    });

    it("a guest killed on the host is drift: the refreshing check fails, up repairs it", async () => {
      const pids = guestPids("web");
      expect(pids.length).toBeGreaterThan(0);
      // The kernel's helper processes may end with it before their turn: killPids tolerates that.
      killPids(pids);
      await expect.poll(() => guestPids("web").length).toBe(0);
      const drift = await step("drift");
      expect(drift.status, drift.out).not.toBe(0);
      expect(drift.out).toMatch(/web/);
      await ok("up");
      await pings("web", "10.40.0.2");
      await ok("drift");
    });

    it("destroy leaves the host clean", async () => {
      await ok("destroy");
      // The provider's agent sessions (`sh -c umlfleet-agent dial-stdio`) end with its ssh
      // connection once Pulumi has stopped it: a moment after the CLI returns.
      await expect.poll(() => processesMentioning(host.stateDir)).toEqual([]);
      expect(
        host.ssh(`test ! -d ${host.stateDir} || find ${host.stateDir} -mindepth 2 -type f -print`).trim(),
      ).toBe("");
      const left = () =>
        execFileSync("sh", ["-c", `pgrep -a -U ${host.uid} || true`], { encoding: "utf8" })
          .trim()
          .split("\n")
          .filter((p) => p && !p.endsWith("<defunct>"));
      await expect.poll(left).toEqual([]);
    });
  },
);
