import { defineConfig } from "vitest/config";

// Integration and e2e tests boot real UML guests on a 2-core machine: they run
// one file at a time and get generous deadlines (never wall-clock assertions).
export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    testTimeout: 240_000,
    hookTimeout: 240_000,
    fileParallelism: false,
    globalSetup: ["test/global-setup.ts"],
    reporters: ["default"],
  },
});
