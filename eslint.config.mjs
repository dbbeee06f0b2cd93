import js from "@eslint/js";
import globals from "globals";
import tseslint from "typescript-eslint";
import layers from "./eslint.layers.mjs";

export default tseslint.config(
  {
    ignores: ["dist/", "node_modules/", "**/*.mjs", "vitest.config.ts", "bench/results/", "test/**/*.js"],
  },
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
    rules: {
      "@typescript-eslint/no-floating-promises": "error",
      "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_" }],
      "@typescript-eslint/require-await": "off",
      "@typescript-eslint/no-require-imports": "off",
    },
  },
  {
    // vitest's asymmetric matchers (expect.stringContaining, ...) are typed any.
    files: ["test/**/*.ts"],
    rules: { "@typescript-eslint/no-unsafe-assignment": "off" },
  },
  {
    // The JavaScript that ships without a build (the plugins keep their exact
    // names: the Pulumi CLI looks them up by name). scripts/typecheck-js.js
    // type-checks them (checkJs) as part of `npm run lint`.
    files: ["bin/pulumi-language-nodejs", "bin/umlfleet", "scripts/*.js"],
    languageOptions: {
      sourceType: "commonjs",
      globals: globals.node,
      parserOptions: { projectService: false, project: false },
    },
    rules: {
      ...tseslint.configs.disableTypeChecked.rules,
      ...js.configs.recommended.rules,
      "@typescript-eslint/no-require-imports": "off",
      "@typescript-eslint/no-unused-vars": "off",
      "no-unused-vars": ["error", { argsIgnorePattern: "^_", caughtErrors: "none" }],
    },
  },
  ...layers,
);
