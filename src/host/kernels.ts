import { accessSync, constants, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { UmlfleetError } from "../errors";
import { packageRoot } from "../validation";
import { run } from "../process";
import type { KernelInfo } from "./driver";
import { sha256File } from "./images";

export interface KernelBuild {
  profile?: "lean";
  /** Kconfig lines appended to the profile. */
  extraConfig?: string[];
  /** Default 45 minutes: a cold build takes about 10 on 2 cores. */
  timeoutMs?: number;
}

/**
 * Build a UML kernel from Debian's linux-source-6.1 with the lean profile
 * (kernel/lean.config) plus `extraConfig`, or reuse the cached build with the
 * same inputs (scripts/build-kernel.sh hashes source version, base config and
 * fragment). Returns the kernel binary's path. Throws UMLFLEET_COMMAND_FAILED
 * with the build's last output lines.
 */
export async function buildKernel(build: KernelBuild = {}, signal?: AbortSignal): Promise<string> {
  const root = packageRoot();
  const script = join(root, "scripts", "build-kernel.sh");
  let work: string | undefined;
  const env: NodeJS.ProcessEnv = { ...process.env };
  if (build.extraConfig?.length) {
    work = mkdtempSync(join(tmpdir(), "umlfleet-kconfig-"));
    const fragment = join(work, "fragment.config");
    writeFileSync(
      fragment,
      `${readFileSync(join(root, "kernel", "lean.config"), "utf8")}\n# extraConfig\n${build.extraConfig.join("\n")}\n`,
    );
    env.UMLFLEET_KERNEL_FRAGMENT = fragment;
  }
  try {
    const r = await run("bash", [script], { timeoutMs: build.timeoutMs ?? 45 * 60_000, env, signal });
    const path = r.stdout.trim().split("\n").pop() ?? "";
    if (!path.startsWith("/")) {
      throw new UmlfleetError(
        "UMLFLEET_COMMAND_FAILED",
        `kernel build printed no kernel path: ${r.stderr.slice(-2000)}`,
        {},
      );
    }
    return path;
  } finally {
    if (work) rmSync(work, { recursive: true, force: true });
  }
}

/** Is `path` an executable regular file (a kernel we could boot)? */
export function isExecutableFile(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return statSync(path).isFile();
  } catch {
    return false;
  }
}

/** A kernel binary's content hash and the version it reports (`--version`). */
export async function kernelFacts(path: string, signal?: AbortSignal): Promise<KernelInfo> {
  const [sha256, version] = await Promise.all([
    sha256File(path),
    run(path, ["--version"], { timeoutMs: 10_000, allowFailure: true, env: {}, signal }).then((r) =>
      r.stdout.trim(),
    ),
  ]);
  return { path, sha256, version };
}
