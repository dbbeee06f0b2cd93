import { join } from "node:path";
import { ESLint } from "eslint";
import tseslint from "typescript-eslint";
import { describe, expect, it } from "vitest";

const REPO = join(__dirname, "..", "..");

/** Lint one line of code as if it were the file at `path`, with the project's layer rules only. */
async function lintAs(path: string, code: string): Promise<string[]> {
  const layers = ((await import(join(REPO, "eslint.layers.mjs"))) as { default: object[] }).default;
  const eslint = new ESLint({
    cwd: REPO,
    overrideConfigFile: true,
    overrideConfig: [{ files: ["**/*.ts"], languageOptions: { parser: tseslint.parser } }, ...layers],
  });
  const [result] = await eslint.lintText(code, { filePath: join(REPO, path) });
  return result!.messages.map((m) => `${m.ruleId}: ${m.message}`);
}

describe("the layers point inward (npm run lint enforces them)", () => {
  it("src/uml importing src/host fails", async () => {
    const msgs = await lintAs("src/uml/fixture.ts", 'import { run } from "../host/state";\n');
    expect(msgs).toEqual([
      expect.stringMatching(/^no-restricted-imports: .*src\/uml .* imports nothing of src\/host/),
    ]);
  });

  it("src/uml importing the shared bottom layer is fine", async () => {
    expect(await lintAs("src/uml/fixture.ts", 'import { run } from "../process";\n')).toEqual([]);
  });

  it("src/ importing Pulumi or provider/ fails", async () => {
    expect(await lintAs("src/host/fixture.ts", 'import * as p from "@pulumi/pulumi";\n')).toHaveLength(1);
    expect(await lintAs("src/host/fixture.ts", 'import { x } from "../../provider/impl";\n')).toHaveLength(1);
  });

  it("the provider reaches hosts only through the port: src/host/* but driver.ts, and host IO, fail", async () => {
    expect(
      await lintAs("provider/fixture.ts", 'import { LocalRuntime } from "../src/host/runtime";\n'),
    ).toHaveLength(1);
    expect(await lintAs("provider/fixture.ts", 'import { statSync } from "node:fs";\n')).toHaveLength(1);
    expect(
      await lintAs("provider/fixture.ts", 'import type { HostDriver } from "../src/host/driver";\n'),
    ).toEqual([]);
    // The factory is the one exception.
    expect(
      await lintAs("provider/driver-factory.ts", 'import { LocalRuntime } from "../src/host/runtime";\n'),
    ).toEqual([]);
  });

  it("src/client takes only types from src/host: a value import fails, a type import is fine", async () => {
    expect(
      await lintAs("src/client/fixture.ts", 'import { LocalRuntime } from "../host/runtime";\n'),
    ).toEqual([expect.stringMatching(/^no-restricted-imports: .*src\/client .* only types from src\/host/)]);
    expect(
      await lintAs("src/client/fixture.ts", 'import { hostFacts } from "../host/host-facts";\n'),
    ).toHaveLength(1);
    expect(
      await lintAs("src/client/fixture.ts", 'import type { HostDriver } from "../host/driver";\n'),
    ).toEqual([]);
    expect(await lintAs("src/client/fixture.ts", 'import * as p from "@pulumi/pulumi";\n')).toHaveLength(1);
  });

  it("src/agent serves a driver and may import src/host", async () => {
    expect(await lintAs("src/agent/fixture.ts", 'import { LocalRuntime } from "../host/runtime";\n')).toEqual(
      [],
    );
  });
});
