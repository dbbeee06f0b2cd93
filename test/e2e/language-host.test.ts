import { describe, it, expect, beforeAll, afterAll } from "vitest";
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { homedir } from "node:os";
import { join, resolve } from "node:path";
import { newTestDir } from "../helpers/paths";

/**
 * The real Pulumi CLI driving bin/pulumi-language-nodejs (our Node.js stand-in for
 * the Go language host) on a plain JS project folder with a file backend:
 * stack init, up, preview --expect-no-changes, stack output, destroy, and a
 * program that throws.
 */

const REPO = resolve(__dirname, "../..");
const PULUMI_BIN_DIR = join(homedir(), ".cache/umlfleet/pulumi-v3.248.0/bin");
const PULUMI = join(PULUMI_BIN_DIR, "pulumi");
const haveCli = existsSync(PULUMI);
if (!haveCli) {
  console.warn(
    `language-host e2e skipped: no Pulumi CLI at ${PULUMI} (build it with the v3.248.0 Go module)`,
  );
}

const PROGRAM = `
const pulumi = require("@pulumi/pulumi");
const provider = {
  async create(inputs) {
    return { id: "x", outs: { greeting: inputs.greeting } };
  },
};
const thing = new pulumi.dynamic.Resource(provider, "thing", { greeting: "hello" });
console.log("program ran");
if (process.env.LANGHOST_TEST_FAIL) {
  throw new Error("deliberate failure " + process.env.LANGHOST_TEST_FAIL);
}
exports.greeting = thing.greeting;
exports.id = thing.id;
`;

describe("pulumi-language-nodejs with the real CLI", () => {
  let dir = "";
  let project = "";
  let rpcLog = "";
  let env: NodeJS.ProcessEnv = {};

  const pulumi = (args: string[], extraEnv: NodeJS.ProcessEnv = {}): string =>
    execFileSync(PULUMI, [...args, "--non-interactive"], {
      cwd: project,
      env: { ...env, ...extraEnv },
      encoding: "utf8",
      stdio: ["ignore", "pipe", "pipe"],
      timeout: 90_000,
    });

  beforeAll(() => {
    if (!haveCli) return;
    dir = newTestDir("langhost");
    project = join(dir, "proj");
    mkdirSync(project, { recursive: true });
    mkdirSync(join(dir, "state"));
    mkdirSync(join(dir, "home"));
    writeFileSync(join(project, "Pulumi.yaml"), "name: langhosttest\nruntime: nodejs\n");
    writeFileSync(join(project, "package.json"), JSON.stringify({ name: "langhosttest", main: "index.js" }));
    writeFileSync(join(project, "index.js"), PROGRAM);
    symlinkSync(join(REPO, "node_modules"), join(project, "node_modules"));
    rpcLog = join(dir, "rpc.log");
    env = {
      ...process.env,
      // The repo's stand-in first: it wins over a copy installed beside the CLI.
      PATH: [
        join(REPO, "bin"),
        PULUMI_BIN_DIR,
        join(REPO, "node_modules/@pulumi/pulumi"),
        process.env.PATH,
      ].join(":"),
      PULUMI_BACKEND_URL: `file://${join(dir, "state")}`,
      PULUMI_CONFIG_PASSPHRASE: "test",
      PULUMI_HOME: join(dir, "home"),
      PULUMI_SKIP_UPDATE_CHECK: "true",
      PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION: "true",
      PULUMI_LANGUAGE_NODEJS_LOG: rpcLog,
    };
    pulumi(["stack", "init", "dev"]);
  });

  afterAll(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it.skipIf(!haveCli)(
    "runs up, a no-change preview, stack output and destroy",
    () => {
      const up = pulumi(["up", "--yes", "--skip-preview"]);
      expect(up).toContain("program ran");
      expect(up).toMatch(/\+ 2 created/);

      pulumi(["preview", "--expect-no-changes"]);

      const outputs = JSON.parse(pulumi(["stack", "output", "--json"])) as Record<string, unknown>;
      expect(outputs).toEqual({ greeting: "hello", id: "x" });

      const destroy = pulumi(["destroy", "--yes"]);
      expect(destroy).toMatch(/- 2 deleted/);

      const log = readFileSync(rpcLog, "utf8");
      expect(log).toContain("GetPluginInfo()");
      expect(log).toContain("GetRequiredPackages()");
      expect(log).toMatch(/Run\(project=langhosttest, stack=dev, .*dryrun=false/);
      expect(log).toMatch(/Run\(project=langhosttest, stack=dev, .*dryrun=true/);
    },
    120_000,
  );

  it.skipIf(!haveCli)(
    "fails `pulumi up` with the program's error text when the program throws",
    () => {
      let failure: (Error & { status?: number; stdout?: string; stderr?: string }) | undefined;
      try {
        pulumi(["up", "--yes", "--skip-preview"], { LANGHOST_TEST_FAIL: "42" });
      } catch (err) {
        failure = err as typeof failure;
      }
      expect(failure, "pulumi up should have failed").toBeDefined();
      expect(failure?.status).not.toBe(0);
      expect(`${failure?.stdout ?? ""}${failure?.stderr ?? ""}`).toContain("deliberate failure 42");
    },
    120_000,
  );
});
