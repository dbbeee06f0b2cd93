#!/usr/bin/env node
// Type-checks the JavaScript that ships without a build step (the plugins and
// scripts in bin/ and scripts/), as `npm run lint` does for TypeScript: with
// checkJs, against Node's and @pulumi/pulumi's types. The plugins must keep
// their exact names (the Pulumi CLI looks them up by name), so files without
// a .js ending are handed to the compiler under one.
"use strict";
const { readFileSync, existsSync } = require("node:fs");
const { join } = require("node:path");
const ts = require("typescript");

const ROOT = join(__dirname, "..");
const FILES = [
  "bin/pulumi-language-nodejs",
  "bin/umlfleet",
  "scripts/gen-spec-types.js",
  "scripts/typecheck-js.js",
];
const asJs = (f) => (f.endsWith(".js") ? f : `${f}.js`);

const options = {
  allowJs: true,
  checkJs: true,
  noEmit: true,
  strict: false,
  target: ts.ScriptTarget.ES2022,
  module: ts.ModuleKind.CommonJS,
  moduleResolution: ts.ModuleResolutionKind.Node10,
  types: ["node"],
  skipLibCheck: true,
  esModuleInterop: true,
};
const host = ts.createCompilerHost(options);
const real = new Map(FILES.map((f) => [join(ROOT, asJs(f)), join(ROOT, f)]));
const { getSourceFile, fileExists, readFile } = host;
host.fileExists = (f) => real.has(f) || fileExists.call(host, f);
host.readFile = (f) => (real.has(f) ? readFileSync(real.get(f), "utf8") : readFile.call(host, f));
host.getSourceFile = (f, lang, ...rest) =>
  real.has(f)
    ? ts.createSourceFile(f, readFileSync(real.get(f), "utf8"), lang)
    : getSourceFile.call(host, f, lang, ...rest);

const program = ts.createProgram(
  [...real.keys()].filter((f) => existsSync(real.get(f))),
  options,
  host,
);
const diagnostics = ts.getPreEmitDiagnostics(program);
for (const d of diagnostics) {
  const where = d.file
    ? `${d.file.fileName.replace(/\.js$/, "")}:${d.file.getLineAndCharacterOfPosition(d.start ?? 0).line + 1}`
    : "";
  console.error(`${where} ${ts.flattenDiagnosticMessageText(d.messageText, "\n")}`);
}
process.exit(diagnostics.length ? 1 : 0);
