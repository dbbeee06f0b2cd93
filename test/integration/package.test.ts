import { execFileSync } from "node:child_process";
import { readdirSync } from "node:fs";
import { join, resolve } from "node:path";
import { describe, expect, it } from "vitest";

/**
 * What `npm pack` puts in the tarball a project installs: what the library
 * needs at run time and nothing else (files in package.json). Lists the
 * current dist/ (npm run build first); --ignore-scripts skips prepack's build.
 */
const REPO = resolve(__dirname, "../..");

function packedFiles(): string[] {
  const out = execFileSync("npm", ["pack", "--dry-run", "--json", "--ignore-scripts"], {
    cwd: REPO,
    encoding: "utf8",
  });
  const [pack] = JSON.parse(out) as { files: { path: string }[] }[];
  return pack!.files.map((f) => f.path).sort();
}

describe("the npm package", () => {
  const files = packedFiles();

  it("holds the runtime, the provider, schemas, the guest init, the bins, the toolchain scripts and the kernel recipe", () => {
    for (const f of [
      "package.json",
      "README.md",
      "dist/provider/index.js",
      "dist/provider/index.d.ts",
      "dist/provider/impl.js",
      "dist/provider/shim.js",
      "dist/src/index.js",
      "dist/src/cli/main.js",
      "dist/src/host/host-facts.js",
      "schema/instance.json",
      "src/host/guest/init",
      "src/host/guest/fstab",
      "src/host/guest/setup",
      "src/host/guest/login",
      "bin/umlfleet",
      // The agent a target host runs (ssh host umlfleet-agent dial-stdio), its client, and its request schema.
      "bin/umlfleet-agent",
      "dist/src/agent/main.js",
      "dist/src/client/index.js",
      "schema/agent.json",
      "bin/pulumi-language-nodejs",
      "bin/pulumi-resource-pulumi-nodejs",
      "scripts/install-pulumi.sh",
      "scripts/build-kernel.sh",
      "kernel/lean.config",
      // Kernel { build } runs build-kernel.sh from the installed package, with every patch.
      ...readdirSync(join(REPO, "kernel", "patches")).map((p) => `kernel/patches/${p}`),
    ]) {
      expect(files, `${f} (npm run build first?)`).toContain(f);
    }
  });

  it("holds no test, bench, demo, cache, state, source map or kernel build file", () => {
    const allowed = [
      /^package\.json$/,
      /^README\.md$/,
      /^LICENSE$/,
      /^dist\/(src|provider)\/.+\.(js|d\.ts)$/,
      /^schema\/[\w-]+\.json$/,
      /^src\/host\/guest\/(init|fstab|setup|login)$/,
      /^bin\/[\w-]+$/,
      /^scripts\/(install-pulumi|build-kernel)\.sh$/,
      /^kernel\/lean\.config$/,
      /^kernel\/patches\/[\w.-]+\.patch$/,
    ];
    expect(files.filter((f) => !allowed.some((re) => re.test(f)))).toEqual([]);
    const forbidden =
      /(^|\/)(test|tests|bench|demo|\.cache|\.pulumi-state|node_modules|examples)(\/|$)|\.map$|\.tgz$|vmlinux|\.o$|build\.log/;
    expect(files.filter((f) => forbidden.test(f))).toEqual([]);
  });
});
