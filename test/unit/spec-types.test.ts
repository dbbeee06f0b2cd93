import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";

const ROOT = join(__dirname, "..", "..");
// The generator the `gen:spec` script runs: schema/*.json to TypeScript.
const { generate } = require(join(ROOT, "scripts", "gen-spec-types.js")) as {
  generate: () => Promise<string>;
};

describe("spec types come from the schemas", () => {
  it("src/spec.generated.ts is what schema/*.json give now (else: npm run gen:spec)", async () => {
    const committed = readFileSync(join(ROOT, "src", "spec.generated.ts"), "utf8");
    expect(committed, "schema/*.json and src/spec.generated.ts drifted: run `npm run gen:spec`").toBe(
      await generate(),
    );
  }, 60_000);
});
