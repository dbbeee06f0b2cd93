import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { ERROR_CODES } from "../../src";

describe("docs/errors.md", () => {
  it("lists exactly the codes in src/errors.ts", () => {
    const doc = readFileSync(join(__dirname, "..", "..", "docs", "errors.md"), "utf8");
    const documented = [...doc.matchAll(/^\| `(UMLFLEET_[A-Z_]+)` \|/gm)].map((m) => m[1]).sort();
    expect(documented).toEqual(Object.keys(ERROR_CODES).sort());
  });
});
