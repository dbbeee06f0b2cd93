#!/usr/bin/env node
// Generates src/spec.generated.ts from schema/*.json: the TypeScript shapes of
// the specs come from the schemas, where every field's rules live, so the two
// cannot drift. `npm run gen:spec` writes it; test/unit/spec-types.test.ts
// fails when the committed file is not what this prints.
//   node scripts/gen-spec-types.js          # print
//   node scripts/gen-spec-types.js --write  # write src/spec.generated.ts
"use strict";
const { readFileSync, writeFileSync } = require("node:fs");
const { join } = require("node:path");
const { compile } = require("json-schema-to-typescript");
const prettier = require("prettier");

const ROOT = join(__dirname, "..");
const SCHEMAS = [
  "base",
  "disk",
  "network",
  "instance",
  "serial-link",
  "kernel",
  "instance-group",
  "host",
  "lab-checks",
];

async function generate() {
  const parts = [];
  for (const name of SCHEMAS) {
    const schema = JSON.parse(readFileSync(join(ROOT, "schema", `${name}.json`), "utf8"));
    parts.push(
      await compile(schema, schema.title, {
        cwd: join(ROOT, "schema"),
        bannerComment: "",
        additionalProperties: false,
        maxItems: -1,
        declareExternallyReferenced: true,
        format: false,
      }),
    );
  }
  const text = [
    "/* Generated from schema/*.json by scripts/gen-spec-types.js (`npm run gen:spec`): do not edit. */",
    ...parts,
  ].join("\n");
  const options = (await prettier.resolveConfig(join(ROOT, "src", "spec.generated.ts"))) ?? {};
  return prettier.format(text, { ...options, parser: "typescript" });
}

module.exports = { generate };

if (require.main === module) {
  generate().then(
    (text) => {
      if (process.argv.includes("--write")) writeFileSync(join(ROOT, "src", "spec.generated.ts"), text);
      else process.stdout.write(text);
    },
    (e) => {
      console.error(e);
      process.exit(1);
    },
  );
}
