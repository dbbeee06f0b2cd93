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
    // expect.poll's default (1 s) is a wall-clock bet a loaded machine loses: wait long enough to prove it happens.
    expect: { poll: { timeout: 20_000 } },
    reporters: ["default"],
  },
});
