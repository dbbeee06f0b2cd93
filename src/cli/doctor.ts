import { hostFacts, localRunner } from "../host/host-facts";
import { USAGE_ERROR, type Verb } from "./verb";

/** `umlfleet doctor [--json]`: what this machine lacks, each with its install command. */
export const doctor: Verb = {
  usage: "doctor [--json]",
  summary: "check this machine for what umlfleet needs; exits 1 if something is missing",
  async run(args, io) {
    const bad = args.find((a) => a !== "--json");
    if (bad !== undefined) {
      io.err(`umlfleet doctor: unknown argument ${JSON.stringify(bad)} (usage: umlfleet ${this.usage})\n`);
      return USAGE_ERROR;
    }
    const facts = await hostFacts(localRunner(io.env));
    // Optional needs (a host link) are reported, never counted as missing.
    const missing = facts.filter((f) => !f.ok && !f.optional);
    const unavailable = facts.filter((f) => !f.ok && f.optional);
    if (args.includes("--json")) {
      io.out(`${JSON.stringify({ ok: missing.length === 0, facts }, null, 2)}\n`);
    } else {
      // One line per need; a missing one names its package and the command that installs it.
      for (const f of facts) {
        const pkg = f.package ? ` (${f.package})` : "";
        io.out(
          f.ok
            ? `ok       ${f.id}: ${f.detail}\n`
            : f.optional
              ? `optional ${f.id}${pkg}: ${f.what}: ${f.detail}; to have it: ${f.fix}\n`
              : `MISSING  ${f.id}${pkg}: ${f.what}: ${f.detail}; fix: ${f.fix}\n`,
        );
      }
      io.out(
        missing.length === 0
          ? `umlfleet doctor: all ${facts.length - unavailable.length} present${unavailable.length ? ` (optional, not available: ${unavailable.map((f) => f.id).join(", ")})` : ""}\n`
          : `umlfleet doctor: ${missing.length} missing: ${missing.map((f) => f.package ?? f.id).join(", ")}\n`,
      );
    }
    return missing.length === 0 ? 0 : 1;
  },
};
