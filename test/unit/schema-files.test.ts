import Ajv from "ajv";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { SCHEMA_DIR } from "../../src/validation";

// The validators skip this check at start (it cost every provider and agent 30-50 ms): it is made here.
describe("schema files", () => {
  const files = readdirSync(SCHEMA_DIR).filter((f) => f.endsWith(".json"));

  it.each(files)("%s is a valid JSON Schema (draft-07 meta-schema)", (file) => {
    const ajv = new Ajv({ strict: false });
    const schema = JSON.parse(readFileSync(join(SCHEMA_DIR, file), "utf8")) as object;
    expect(ajv.validateSchema(schema), ajv.errorsText(ajv.errors)).toBe(true);
  });

  it("the check fails for a schema that is not one", () => {
    const ajv = new Ajv({ strict: false });
    expect(ajv.validateSchema({ type: "no-such-type", required: "name" })).toBe(false);
  });
});
