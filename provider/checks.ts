import * as pulumi from "@pulumi/pulumi";
import type { CheckResult } from "../src/lab-checks";
import { placement } from "./placement";
import { type HostArgs, Instance, type InstanceGroupMember } from "./resources";
import { makeChecksProvider } from "./shim";

type Guest = Instance | InstanceGroupMember;

/** One lab check: exactly one of `reach` and `command`. */
export type LabCheckArgs = {
  /** Names it in outputs and in the failure message. */
  name: string;
  /** How long it may run in the guest. Default 30000. */
  timeoutMs?: number;
} & (
  | {
      /** `from` pings `to`: a guest's first NIC address (its ipv4 input), or an address. Passes on a reply. */
      reach: { from: Guest; to: Guest | pulumi.Input<string>; count?: number };
      command?: never;
    }
  | {
      /** `run` in guest `on`; passes when it exits with `expect.exitCode` (default 0) and its output holds `expect.output`. */
      command: { on: Guest; run: pulumi.Input<string>; expect?: { exitCode?: number; output?: string } };
      reach?: never;
    }
);
export interface LabChecksArgs extends HostArgs {
  checks: LabCheckArgs[];
}

const isGuest = (v: unknown): v is Guest =>
  v instanceof Instance || (!!v && typeof v === "object" && "group" in v && "nicInfo" in v);

/** A guest's first IPv4 address, without its prefix length. */
const firstAddress = (g: Guest) =>
  g.nicInfo.apply((nics) => {
    const ipv4 = (nics ?? []).find((n) => n.ipv4)?.ipv4;
    if (!ipv4)
      throw new Error(
        "LabChecks: a reach check's `to` guest has no ipv4 umlfleet set (an address its startup sets is not known): give the address as a string",
      );
    return ipv4.split("/")[0]!;
  });

/**
 * Checks run in a lab's guests once they are up: `reach` (a ping from one
 * guest to another's address) and `command` (a script whose exit status and
 * output are as expected). Results are the `results` output; a failing check
 * fails the update with a message naming it and showing its output. Checks
 * run when created, when they change, when a guest they name restarts or is
 * replaced, and again on the next up after one failed; `pulumi refresh`
 * re-runs them all (docs/resources.md, LabChecks). A no-change `up` does not
 * run them, so `pulumi preview --expect-no-changes` stays quiet.
 */
export class LabChecks extends pulumi.dynamic.Resource {
  /** Check name to its result: ok, the guest, exit status, output. */
  declare readonly results: pulumi.Output<Record<string, CheckResult>>;
  /** Every check passed at its last run. */
  declare readonly passed: pulumi.Output<boolean>;
  constructor(name: string, args: LabChecksArgs, o?: pulumi.CustomResourceOptions) {
    const guests = new Set<Guest>();
    const checks = args.checks.map((c) => {
      const common = { name: c.name, ...(c.timeoutMs !== undefined ? { timeoutMs: c.timeoutMs } : {}) };
      if (c.reach) {
        guests.add(c.reach.from);
        if (isGuest(c.reach.to)) guests.add(c.reach.to);
        const to = isGuest(c.reach.to) ? firstAddress(c.reach.to) : c.reach.to;
        return {
          ...common,
          reach: {
            from: c.reach.from.name,
            to,
            ...(c.reach.count !== undefined ? { count: c.reach.count } : {}),
          },
        };
      }
      if (c.command) {
        guests.add(c.command.on);
        return {
          ...common,
          command: { on: c.command.on.name, run: c.command.run, expect: c.command.expect },
        };
      }
      return common;
    });
    // What identifies each boot of the guests named: a restart or replacement re-runs the checks.
    const boots = [...guests].map((g) =>
      g instanceof Instance
        ? pulumi.interpolate`${g.instanceId}#${g.bootCount}`
        : pulumi.interpolate`${g.bootCount}`,
    );
    const instances = [...guests].map((g) => (g instanceof Instance ? g : g.group));
    super(
      makeChecksProvider(),
      name,
      { ...placement(args), checks, boots, results: undefined, passed: undefined },
      {
        ...o,
        dependsOn: [...instances, ...((o?.dependsOn as pulumi.Resource[] | undefined) ?? [])],
        ...(args.host ? { additionalSecretOutputs: ["host"] } : {}),
      },
      "umlfleet",
      "LabChecks",
    );
  }
}
