import { defineConfig } from "vitest/config";

// Integration and e2e tests boot real UML guests on a 2-core machine. Two test
// files run at once: one at a time left about two thirds of the cores idle
// (tests wait on guests, ssh and the pulumi CLI), and each file works in its
// own folders under the test root, its own state folders, Pulumi homes and
// host labs (test/helpers/hosts.ts claims a subnet no other lab holds), so two
// do not see each other. Deadlines stay generous (never wall-clock assertions).
export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    testTimeout: 240_000,
    hookTimeout: 240_000,
    fileParallelism: true,
    minWorkers: 1,
    maxWorkers: 2,
    globalSetup: ["test/global-setup.ts"],
    // expect.poll's default (1 s) is a wall-clock bet a loaded machine loses: wait long enough to prove it happens.
    expect: { poll: { timeout: 20_000 } },
    reporters: ["default"],
  },
});
