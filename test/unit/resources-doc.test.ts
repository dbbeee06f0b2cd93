import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";

const REPO = join(__dirname, "..", "..");
const DOC = readFileSync(join(REPO, "docs", "resources.md"), "utf8");

/** Each schema (a resource's fields) and its section of docs/resources.md. */
const SECTIONS: Record<string, string> = {
  host: "Host",
  kernel: "Kernel",
  base: "RootFilesystem (a base)",
  disk: "Disk",
  network: "Network",
  instance: "Instance",
  "serial-link": "SerialLink",
  "instance-group": "InstanceGroup",
  "lab-checks": "LabChecks",
};
/** What a change does: every field says it, in its table row or in a sentence for the whole resource. */
const CHANGE = /\b(live|restart|replace|replaces|update|bookkeeping)\b/;
const WHOLE = /\b(any change|a change|changing)\b[^.]*\b(replaces|is an update)\b/i;

function section(title: string): string {
  const start = DOC.indexOf(`\n## ${title}\n`);
  if (start < 0) return "";
  const end = DOC.indexOf("\n## ", start + 1);
  return DOC.slice(start, end < 0 ? undefined : end);
}
const schema = (kind: string) =>
  JSON.parse(readFileSync(join(REPO, "schema", `${kind}.json`), "utf8")) as {
    properties: Record<string, { default?: unknown }>;
  };
/** A table row's first cell (`\|` inside a cell is a pipe, not a border). */
const cell = (row: string) => row.split(/(?<!\\)\|/)[1] ?? "";
const mentions = (text: string, field: string) =>
  new RegExp("`[^`\\n]*\\b" + field + "\\b[^`\\n]*`").test(text);

describe("docs/resources.md: a reference page per resource", () => {
  it("names the fields every resource shares in its introduction", () => {
    const intro = DOC.slice(0, DOC.indexOf("\n## "));
    for (const f of ["stateDir", "host", "owner"]) expect(mentions(intro, f), f).toBe(true);
  });

  describe.each(Object.entries(SECTIONS))("%s", (kind, title) => {
    const text = section(title);
    const fields = Object.keys(schema(kind).properties).filter((f) => f !== "name");

    it(`has a section "## ${title}"`, () => expect(text).not.toBe(""));

    it.each(fields)("%s: named, with what a change to it does", (field) => {
      expect(mentions(text, field), `${title} names \`${field}\``).toBe(true);
      const row = text.split("\n").find((l) => l.startsWith("|") && mentions(cell(l), field));
      expect(
        (row !== undefined && CHANGE.test(row)) || WHOLE.test(text),
        `${title}: what a change to ${field} does (live, restart, replace)`,
      ).toBe(true);
    });

    it.each(fields.filter((f) => schema(kind).properties[f]!.default !== undefined))(
      "%s: its default",
      (field) => {
        const def = schema(kind).properties[field]!.default;
        const row = text.split("\n").find((l) => l.startsWith("|") && mentions(cell(l), field));
        const shown = typeof def === "string" ? [def, `"${def}"`] : [JSON.stringify(def)];
        expect(
          shown.some((s) => (row ?? text).includes(s)),
          `${title}: ${field}'s default ${JSON.stringify(def)}`,
        ).toBe(true);
      },
    );
  });
});
