import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";

const EXAMPLES = join(__dirname, "..", "..", "examples");
// Each lab (a folder with lab.ts, which its e2e test runs) has a README.
const labs = readdirSync(EXAMPLES).filter((d) => existsSync(join(EXAMPLES, d, "lab.ts")));

/** Fenced blocks of a markdown text: [language, body]. */
function codeBlocks(markdown: string): [string, string][] {
  return [...markdown.matchAll(/^```(\w*)\n([\s\S]*?)^```$/gm)].map((m) => [m[1]!, m[2]!.replace(/\n$/, "")]);
}

/** Lines without their common indentation, trailing blanks dropped. */
function dedent(lines: readonly string[]): string {
  const indent = Math.min(...lines.filter((l) => l.trim()).map((l) => l.length - l.trimStart().length));
  return lines
    .map((l) => l.slice(Number.isFinite(indent) ? indent : 0).trimEnd())
    .join("\n")
    .trimEnd();
}

/** Does `block` appear in `source` as a run of whole lines, indentation aside? */
function containsBlock(source: string, block: string): boolean {
  const want = dedent(block.split("\n"));
  const n = block.split("\n").length;
  const lines = source.split("\n");
  for (let i = 0; i + n <= lines.length; i++) if (dedent(lines.slice(i, i + n)) === want) return true;
  return false;
}

describe("example READMEs show the tested program's own code", () => {
  it("finds the labs", () =>
    expect(labs).toEqual(expect.arrayContaining(["demo", "kernel-lab", "honeypot"])));

  it("the matcher is not vacuous: a changed line, or lines out of their order, do not match", () => {
    const src = "function f() {\n  const a = 1;\n  const b = 2;\n}\n";
    expect(containsBlock(src, "const a = 1;\nconst b = 2;")).toBe(true);
    expect(containsBlock(src, "const a = 1;\nconst b = 3;")).toBe(false);
    expect(containsBlock(src, "const b = 2;\nconst a = 1;")).toBe(false);
    expect(containsBlock(src, "const a")).toBe(false);
  });

  describe.each(labs)("examples/%s/README.md", (lab) => {
    const dir = join(EXAMPLES, lab);
    const readme = join(dir, "README.md");
    const sources = () =>
      readdirSync(dir)
        .filter((f) => f.endsWith(".ts"))
        .map((f) => readFileSync(join(dir, f), "utf8"));

    it("exists and shows code", () => {
      expect(existsSync(readme)).toBe(true);
      expect(
        codeBlocks(readFileSync(readme, "utf8")).filter(([lang]) => lang === "ts").length,
      ).toBeGreaterThan(0);
    });

    it("each TypeScript block is copied, line for line, from the example's program", () => {
      const blocks = codeBlocks(readFileSync(readme, "utf8")).filter(([lang]) => lang === "ts");
      for (const [, block] of blocks)
        expect(
          sources().some((s) => containsBlock(s, block)),
          block,
        ).toBe(true);
    });

    it("each diff block changes lines the program has", () => {
      const blocks = codeBlocks(readFileSync(readme, "utf8")).filter(([lang]) => lang === "diff");
      for (const [, block] of blocks) {
        const lines = block.split("\n");
        const removed = lines.filter((l) => l.startsWith("-")).map((l) => l.slice(1));
        const added = lines.filter((l) => l.startsWith("+")).map((l) => l.slice(1));
        expect(removed.length, block).toBeGreaterThan(0);
        for (const l of removed)
          expect(
            sources().some((s) => containsBlock(s, l)),
            l,
          ).toBe(true);
        expect(added, block).not.toEqual(removed);
      }
    });
  });
});
