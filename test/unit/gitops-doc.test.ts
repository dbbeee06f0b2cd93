import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";

const REPO = join(__dirname, "..", "..");
const DOC = readFileSync(join(REPO, "docs", "gitops.md"), "utf8");
const WORKFLOW = readFileSync(join(REPO, "examples", "gitops", "github-actions.yml"), "utf8");

describe("docs/gitops.md shows the example workflow's own lines", () => {
  it("each yaml block is a run of lines of examples/gitops/github-actions.yml (which the e2e test runs)", () => {
    const blocks = [...DOC.matchAll(/^```yaml\n([\s\S]*?)^```$/gm)].map((m) => m[1]!.replace(/\n$/, ""));
    expect(blocks.length).toBeGreaterThan(0);
    for (const b of blocks) expect(WORKFLOW, b).toContain(`${b}\n`);
    expect(WORKFLOW).not.toContain(`${blocks[0]!.replace("--diff", "--diff-x")}\n`);
  });

  it("the example's files the page names exist", () => {
    for (const f of ["index.ts", "Pulumi.lab.yaml", "github-actions.yml", "Pulumi.yaml"])
      expect(() => readFileSync(join(REPO, "examples", "gitops", f)), f).not.toThrow();
  });
});
