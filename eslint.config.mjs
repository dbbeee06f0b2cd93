import tseslint from "typescript-eslint";
import layers from "./eslint.layers.mjs";

export default tseslint.config(
  {
    ignores: [
      "dist/",
      "node_modules/",
      "**/*.mjs",
      "vitest.config.ts",
      "bin/",
      "bench/results/",
      "test/**/*.js",
    ],
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
  ...layers,
);
