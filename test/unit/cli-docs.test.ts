import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { main, VERBS } from "../../src/cli/main";
import type { Io } from "../../src/cli/verb";

const DOC = readFileSync(join(__dirname, "..", "..", "docs", "cli.md"), "utf8");
/** Verbs the page documents before they land (another change adds them): checked once they exist. */
const PENDING: string[] = [];

/** docs/cli.md's `### <verb>` sections: name -> text. */
const sections = new Map(
  [...DOC.matchAll(/^### (\S+)\n([\s\S]*?)(?=^### |(?![\s\S]))/gm)].map((m) => [m[1]!, m[2]!]),
);
const flat = (s: string) => s.replace(/\s+/g, " ");

async function help(args: string[]) {
  let out = "";
  const io: Io = { out: (t) => (out += t), err: (t) => (out += t), env: {} };
  return { status: await main(args, io), out };
}

describe("docs/cli.md is the CLI's reference", () => {
  it("documents every command and nothing else (but the pending ones)", () => {
    expect([...sections.keys()].filter((v) => !PENDING.includes(v)).sort()).toEqual(
      Object.keys(VERBS).sort(),
    );
  });

  it.each(Object.keys(VERBS))(
    "%s: its section starts with the usage `--help` prints and says its summary",
    async (name) => {
      const r = await help([name, "--help"]);
      expect(r.status).toBe(0);
      const usage = /^usage: (umlfleet .*)$/m.exec(r.out)?.[1];
      expect(usage).toBe(`umlfleet ${VERBS[name]!.usage}`);
      const section = sections.get(name) ?? "";
      expect(/^```\n(.*)\n```$/m.exec(section)?.[1], `the first block of ### ${name}`).toBe(usage);
      const summary = VERBS[name]!.summary;
      expect(flat(section)).toContain(summary[0]!.toUpperCase() + summary.slice(1));
      // Every flag of the usage line is explained in the section's text (not only in the usage
      // block); --state-dir, which most share, once at the top of the page.
      expect(DOC.slice(0, DOC.indexOf("## "))).toContain("`--state-dir DIR`");
      for (const flag of (usage!.match(/--?[a-z][a-z-]*/g) ?? []).filter((f) => f !== "--state-dir"))
        expect(section.replace(/^```\n.*\n```$/m, ""), `${name}: ${flag}`).toContain(flag);
    },
  );

  it("lists the exit statuses the commands use", () => {
    for (const s of ["| 0 |", "| 1 |", "| 2 |", "`exec` exits with the status"]) expect(DOC).toContain(s);
  });

  it("--help works on every command, also after other arguments, but not after -- (a guest's command)", async () => {
    for (const name of Object.keys(VERBS)) expect((await help([name, "-h"])).status).toBe(0);
    expect((await help(["ls", "--json", "--help"])).out).toContain("usage: umlfleet ls");
    const r = await help(["exec", "--state-dir", "/nonexistent/cli-docs", "x", "--", "ls", "--help"]);
    expect(r.out).not.toContain("usage: umlfleet exec");
  });
});
