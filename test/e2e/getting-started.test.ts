import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, lstatSync, mkdirSync, readFileSync, rmSync } from "node:fs";
import { homedir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { LocalRuntime } from "../../src";
import { pulumiBinDir } from "../../automation/local-stack";
import { newTestDir, processesMentioning } from "../helpers/runtime";

/**
 * docs/getting-started.md, word for word: its `sh` blocks run in order in one
 * bash, in an empty folder under the test root, with a fresh $HOME and a PATH
 * of the system's folders only (no bin/ of this repository, no node_modules).
 * The test adds only what the doc says a user sets (UMLFLEET_REPO), the state
 * folder (UMLFLEET_STATE_DIR, so it lies under the test root), the CLI build
 * cache (UMLFLEET_CACHE, so the cached build is linked, not rebuilt), the
 * machine's npm cache, and PULUMI_HOME in the fresh $HOME (the CLI takes its
 * default from the user database, which would be the real home). It packs
 * this repository into that $HOME first, so the doc's own pack step (marked
 * skip-if) is skipped.
 */

const REPO = resolve(__dirname, "../..");
const DOC = join(REPO, "docs", "getting-started.md");
const haveCli = existsSync(join(pulumiBinDir(), "pulumi"));

interface Step {
  heading: string;
  skipIf?: string;
  code: string;
}

/** The doc's ```sh blocks, each with its heading and `<!-- e2e: skip-if CMD -->` marker. */
function docSteps(markdown: string): Step[] {
  const steps: Step[] = [];
  const lines = markdown.split("\n");
  let heading = "";
  let skipIf: string | undefined;
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    if (line.startsWith("#")) heading = line.replace(/^#+\s*/, "");
    const marker = /^<!-- e2e: skip-if (.+) -->$/.exec(line);
    if (marker) skipIf = marker[1];
    if (line.startsWith("```")) {
      const end = lines.indexOf("```", i + 1);
      if (end < 0) throw new Error(`${DOC}:${i + 1}: unclosed code block`);
      if (line === "```sh") steps.push({ heading, skipIf, code: lines.slice(i + 1, end).join("\n") });
      skipIf = undefined;
      i = end;
    }
  }
  return steps;
}

/** One bash script: each block announced, skipped when its marker's command succeeds. */
function script(steps: Step[]): string {
  const parts = ["set -euo pipefail"];
  steps.forEach((s, n) => {
    const announce = `echo "@@STEP ${n} $(date +%s%N) ${s.heading.replace(/["$`\\]/g, "")}"`;
    parts.push(
      s.skipIf
        ? `${announce}\nif ( ${s.skipIf} ) >/dev/null 2>&1; then echo "@@SKIPPED ${n}"; else\n${s.code}\nfi`
        : `${announce}\n${s.code}`,
    );
  });
  parts.push('echo "@@STEP end $(date +%s%N)"');
  return parts.join("\n");
}

/** The system's own folders, and node's (a user has node on PATH). */
function systemPath(): string {
  const dirs = ["/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"];
  const node = dirname(process.execPath);
  return [...dirs, ...(dirs.includes(node) ? [] : [node])].join(":");
}

describe("docs/getting-started.md, word for word", () => {
  const dir = newTestDir("gs");
  const home = join(dir, "home");
  const work = join(dir, "work");
  const stateDir = join(dir, "s");
  const project = join(work, "my-lab");

  afterAll(async () => {
    // Whatever a failed run left: the doc's destroy did not run, so remove it here.
    if (existsSync(stateDir)) await new LocalRuntime({ stateDir }).destroyAll();
    rmSync(dir, { recursive: true, force: true });
  });

  it("parses: every block the test runs is an sh block with a heading", () => {
    const steps = docSteps(readFileSync(DOC, "utf8"));
    expect(steps.map((s) => s.code).join("\n")).toContain("pulumi up");
    expect(steps.filter((s) => s.skipIf).length).toBeGreaterThanOrEqual(2);
    for (const s of steps) expect(s.heading, s.code).not.toBe("");
  });

  it.skipIf(!haveCli)(
    "from an empty folder: install the toolchain and the packed tarball, up, ping between the guests, destroy; the host is left clean",
    () => {
      mkdirSync(home, { recursive: true });
      mkdirSync(work, { recursive: true });
      const packStarted = performance.now();
      execFileSync("npm", ["pack", "--pack-destination", home], { cwd: REPO, stdio: "pipe" });
      const packMs = performance.now() - packStarted;

      // The machine's environment without anything naming Pulumi, umlfleet or npm's run.
      const inherited = Object.fromEntries(
        Object.entries(process.env).filter(([k]) => !/^(PULUMI_|UMLFLEET_|npm_|VITEST|XDG_)/.test(k)),
      );
      const env = {
        ...inherited,
        HOME: home,
        PATH: systemPath(),
        UMLFLEET_REPO: REPO,
        UMLFLEET_STATE_DIR: stateDir,
        UMLFLEET_CACHE: dirname(dirname(pulumiBinDir())),
        PULUMI_HOME: join(home, ".pulumi"),
        npm_config_cache: join(homedir(), ".npm"),
        npm_config_update_notifier: "false",
      };
      const steps = docSteps(readFileSync(DOC, "utf8"));
      const r = spawnSync("bash", ["-c", script(steps)], {
        cwd: work,
        env,
        encoding: "utf8",
        timeout: 900_000,
        maxBuffer: 64 << 20,
      });
      const out = `${r.stdout}\n${r.stderr}`;
      // Durations per step, for the report (never asserted).
      const marks = [...r.stdout.matchAll(/^@@STEP (\S+) (\d+) ?(.*)$/gm)];
      const timings = marks.slice(0, -1).map((m, i) => {
        const ms = (Number(marks[i + 1]![2]) - Number(m[2])) / 1e6;
        const skipped = r.stdout.includes(`@@SKIPPED ${m[1]}\n`) ? " (skipped)" : "";
        return `${m[3]}: ${Math.round(ms)} ms${skipped}`;
      });
      console.log(`npm pack: ${Math.round(packMs)} ms\n${timings.join("\n")}`);
      expect(r.status, out).toBe(0);

      // What the user saw.
      expect(out).toContain("umlfleet doctor: all");
      expect(out).toMatch(/\+ 8 created/);
      expect(out).toContain("1 packets received");
      expect(out).toMatch(/- 8 deleted/);
      // The doc's pack step (npm ci in this checkout) was skipped: the tarball it makes was there.
      const pack = steps.findIndex((s) => s.code.includes("npm pack"));
      expect(r.stdout).toContain(`@@SKIPPED ${pack}\n`);

      // umlfleet came from the tarball into the project, not as a link back here,
      // and the project holds one @pulumi/pulumi.
      const installed = join(project, "node_modules", "umlfleet");
      expect(lstatSync(installed).isSymbolicLink()).toBe(false);
      expect(JSON.parse(readFileSync(join(installed, "package.json"), "utf8"))).toMatchObject({
        version: (JSON.parse(readFileSync(join(REPO, "package.json"), "utf8")) as { version: string })
          .version,
      });
      expect(existsSync(join(installed, "node_modules", "@pulumi"))).toBe(false);
      // The plugins the CLI ran are the ones installed beside it.
      for (const p of ["pulumi-language-nodejs", "pulumi-resource-pulumi-nodejs"])
        expect(existsSync(join(home, ".pulumi", "bin", p)), p).toBe(true);

      // The host is clean: no guest, switch or relay, no state folder.
      expect(processesMentioning(stateDir)).toEqual([]);
      expect(processesMentioning(project)).toEqual([]);
      expect(existsSync(stateDir)).toBe(false);
    },
    1_200_000,
  );
});
