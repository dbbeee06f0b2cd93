import { defineConfig } from "vitest/config";

// Integration and e2e tests boot real UML guests on a 2-core machine: they run
// one file at a time and get generous deadlines (never wall-clock assertions).
// Two files at once took 16-17 min instead of 30 here, but a CI run that way
// failed four tests that wait on guests under load (a serial line read before
// the reader opened it, a guest's sshd not yet listening, a capture's TCP
// frame, a check that assumed no other provider ran); three are fixed, the
// capture one is not understood yet.
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
