import { existsSync, rmSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { localStack, pulumiBinDir } from "../../automation/local-stack";
import { quickUp } from "../../automation/quick-up";
import { newTestDir } from "../helpers/paths";

/**
 * quickUp gives what stack.up() gives (outputs, the summary's changes,
 * errors) from the engine's events, with the real CLI on a file backend.
 */
describe.skipIf(!existsSync(join(pulumiBinDir(), "pulumi")))("quickUp", () => {
  const dir = newTestDir("quick-up");
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  let fail = false;
  const program = () => {
    if (fail) return Promise.reject(new Error("the program failed on purpose"));
    return Promise.resolve({ count: 3, name: "fleet", nested: { a: [1, 2] } });
  };

  it("returns the outputs and changes stack.up() returns, and leaves the stack's own methods in place", async () => {
    const stack = await localStack({ projectName: "quick", stackName: "q", program, backendDir: dir });
    const first = await quickUp(stack);
    expect(first.summary.resourceChanges).toEqual({ create: 1 });
    expect(first.summary.result).toBe("succeeded");
    expect(first.timings.preludeMs).toBeLessThanOrEqual(first.timings.summaryMs!);
    expect(first.timings.summaryMs).toBeLessThanOrEqual(first.timings.cliExitMs!);
    const quick = await quickUp(stack);
    const plain = await stack.up();
    expect(quick.outputs).toEqual(plain.outputs);
    expect(quick.outputs.count).toEqual({ value: 3, secret: false });
    expect(quick.summary.resourceChanges).toEqual(plain.summary.resourceChanges);
    expect(plain.summary.resourceChanges).toEqual({ same: 1 });
    // The read-back methods are the Automation API's again.
    expect(await stack.outputs()).toEqual(plain.outputs);
    expect((await stack.info())?.kind).toBe("update");
  }, 180_000);

  it("fails as stack.up() fails when the program throws", async () => {
    const stack = await localStack({ projectName: "quick", stackName: "q", program, backendDir: dir });
    fail = true;
    await expect(quickUp(stack)).rejects.toThrow(/failed on purpose/);
    fail = false;
    expect((await stack.outputs()).count).toEqual({ value: 3, secret: false });
  }, 180_000);
});
