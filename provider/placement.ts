import * as pulumi from "@pulumi/pulumi";
import type { HostArgs } from "./resources";

/**
 * A resource's `host` and `stateDir` inputs: the Host's identity and how to
 * reach it (a secret when it holds a key), and its state folder unless the
 * resource names one.
 */
export function placement<T extends HostArgs>(args: T): Omit<T, "host"> & { host?: pulumi.Output<unknown> } {
  const { host, ...rest } = args;
  if (!host) return rest;
  return {
    ...rest,
    host: pulumi.all([host.hostId, host.ssh]).apply(([hostId, ssh]) => (ssh ? { hostId, ssh } : { hostId })),
    stateDir: args.stateDir ?? host.stateDir,
  };
}
