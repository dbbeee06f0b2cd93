import { LocalWorkspace, type PulumiFn, type Stack } from "@pulumi/pulumi/automation";
import { existsSync, mkdirSync, symlinkSync } from "node:fs";
import { homedir } from "node:os";
import { dirname, join } from "node:path";
import { packageRoot } from "../src/validation";

export const PULUMI_VERSION = "v3.248.0";

/** Where scripts/install-pulumi.sh puts the CLI. */
export function pulumiBinDir(env: NodeJS.ProcessEnv = process.env): string {
  const cache = env.UMLFLEET_CACHE ?? join(env.XDG_CACHE_HOME ?? join(homedir(), ".cache"), "umlfleet");
  return join(cache, `pulumi-${PULUMI_VERSION}`, "bin");
}

export interface LocalStackOptions {
  projectName: string;
  stackName: string;
  program: PulumiFn;
  /** Folder for the file state backend, PULUMI_HOME and the workspace. */
  backendDir: string;
  passphrase?: string;
  /** Extra environment for the CLI and the provider (e.g. UMLFLEET_STATE_DIR). */
  env?: Record<string, string>;
}

/**
 * A stack on a local file backend, run by the real `pulumi` CLI through the
 * Automation API with an inline program: no Pulumi service, no network, no
 * plugin downloads.
 */
export async function localStack(o: LocalStackOptions): Promise<Stack> {
  mkdirSync(join(o.backendDir, "home"), { recursive: true });
  // The workspace folder (the Automation API writes Pulumi.yaml there). The
  // provider host loads @pulumi/pulumi/cmd/dynamic-provider, and the provider
  // loads umlfleet, by package name from the node_modules of this folder.
  const workDir = join(o.backendDir, "work");
  mkdirSync(join(workDir, "node_modules"), { recursive: true });
  const links: [string, string][] = [
    ["umlfleet", packageRoot()],
    ["@pulumi", dirname(dirname(require.resolve("@pulumi/pulumi/package.json")))],
  ];
  for (const [name, target] of links) {
    const link = join(workDir, "node_modules", name);
    try {
      symlinkSync(target, link);
    } catch (e) {
      // Made already (by an earlier run, or one running at the same time).
      if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e;
    }
  }
  const bin = pulumiBinDir();
  if (!existsSync(join(bin, "pulumi")))
    throw new Error(`pulumi CLI not found in ${bin}: run scripts/setup.sh`);
  // pulumi-resource-pulumi-nodejs (the dynamic provider host) ships inside
  // @pulumi/pulumi; scripts/install-pulumi.sh also puts one beside the CLI,
  // which the CLI then finds by itself (a second one on PATH would only add a warning).
  const providerHostDir = existsSync(join(bin, "pulumi-resource-pulumi-nodejs"))
    ? []
    : [dirname(require.resolve("@pulumi/pulumi/pulumi-resource-pulumi-nodejs"))];
  const envVars: Record<string, string> = {
    PATH: [bin, ...providerHostDir, process.env.PATH ?? ""].join(":"),
    PULUMI_HOME: join(o.backendDir, "home"),
    // metadata=skip: no `.attrs` side files, which the file backend writes in place (a CLI killed
    // during one leaves a stack no command loads: docs/operations.md, "After a killed pulumi CLI").
    PULUMI_BACKEND_URL: `file://${o.backendDir}?metadata=skip`,
    PULUMI_CONFIG_PASSPHRASE: o.passphrase ?? "umlfleet-local",
    PULUMI_SKIP_UPDATE_CHECK: "true",
    PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION: "true",
    PULUMI_AUTOMATION_API_SKIP_VERSION_CHECK: "true",
    // Diffs at once, not one resource after another: a known Host's diff waits for its SSH
    // connection (provider/host.ts), 0.35 s per host in a row without this (measured, 3 hosts).
    PULUMI_PARALLEL_DIFF: "true",
    ...o.env,
  };
  // The workspace's own calls (stack select, config) read the environment too.
  for (const [k, v] of Object.entries(envVars)) process.env[k] = v;
  return LocalWorkspace.createOrSelectStack(
    { projectName: o.projectName, stackName: o.stackName, program: o.program },
    {
      workDir,
      pulumiHome: envVars.PULUMI_HOME,
      envVars,
      projectSettings: {
        name: o.projectName,
        runtime: "nodejs",
        backend: { url: envVars.PULUMI_BACKEND_URL },
      },
    },
  );
}
