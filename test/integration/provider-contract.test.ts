import { describe } from "vitest";
import { afterAll } from "vitest";
import { LocalRuntime } from "../../src";
import { newTestDir, processesMentioning, testKernel } from "../helpers/runtime";
import { providerContract } from "../helpers/provider-contract";
import { expect, it } from "vitest";

/** The provider's contract (test/helpers/provider-contract.ts) against LocalRuntime: real files, switches and guests. */
describe("the provider over LocalRuntime", () => {
  const stateDir = `${newTestDir("pc")}/s`;
  providerContract({ stateDir: () => stateDir, kernel: testKernel });
  it("leaves nothing on the host", () => {
    expect(processesMentioning(stateDir)).toEqual([]);
  });
  afterAll(() => new LocalRuntime({ stateDir }).destroyAll());
});
