import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it, vi } from "vitest";
import {
  BootError,
  ERROR_CODES,
  errorFromJSON,
  InvalidSpecError,
  isUmlfleetError,
  STATUS_CODES,
  UmlfleetError,
  type ErrorCode,
} from "../../src";

describe("docs/errors.md", () => {
  it("lists exactly the codes in src/errors.ts", () => {
    const doc = readFileSync(join(__dirname, "..", "..", "docs", "errors.md"), "utf8");
    const documented = [...doc.matchAll(/^\| `(UMLFLEET_[A-Z_]+)` \|/gm)].map((m) => m[1]).sort();
    expect(documented).toEqual(Object.keys(ERROR_CODES).sort());
  });
});

/** One error of each code, as the runtime throws it. */
function sample(code: ErrorCode): UmlfleetError {
  if (code === "UMLFLEET_INVALID_SPEC")
    return new InvalidSpecError("instance", [{ field: "/nics/0/mac", value: "zz", message: "must match" }]);
  if (code === "UMLFLEET_BOOT_FAILED" || code === "UMLFLEET_BOOT_TIMEOUT")
    return new BootError(code, "instance a: kernel panic during boot", {
      instance: "a",
      argv: ["/usr/bin/bwrap", "--", "/k", "mem=64M"],
      exitCode: 134,
      signal: null,
      timedOut: code === "UMLFLEET_BOOT_TIMEOUT",
      durationMs: 812,
      consoleTail: "Kernel panic - not syncing",
    });
  return new UmlfleetError(code, `something about ${code}`, { field: "/name", value: "x", nested: { n: 1 } });
}

describe("errors that travel", () => {
  it.each(Object.keys(ERROR_CODES) as ErrorCode[])(
    "%s goes through JSON and comes back as the same class with the same fields",
    (code) => {
      const e = sample(code);
      const body = JSON.parse(JSON.stringify(e)) as Record<string, unknown>;
      expect(body).toEqual({
        statusCode: STATUS_CODES[code],
        code,
        error: expect.any(String),
        message: e.message,
        details: JSON.parse(JSON.stringify(e.details)),
      });
      expect(body).not.toHaveProperty("stack");
      const back = errorFromJSON(body);
      expect(back.constructor).toBe(e.constructor);
      expect(back.code).toBe(code);
      expect(back.message).toBe(e.message);
      expect(back.details).toEqual(JSON.parse(JSON.stringify(e.details)));
      expect(back.statusCode).toBe(e.statusCode);
      if (e instanceof InvalidSpecError) expect((back as InvalidSpecError).problems).toEqual(e.problems);
      if (e instanceof BootError) expect((back as BootError).facts).toEqual(e.facts);
      expect(isUmlfleetError(back, code)).toBe(true);
    },
  );

  it("a body that is not an umlfleet error is refused as one naming what came", () => {
    for (const bad of [null, "boom", { code: "EVIL", message: "x" }, { code: "UMLFLEET_NOT_FOUND" }]) {
      const e = errorFromJSON(bad);
      expect(e.code).toBe("UMLFLEET_COMMAND_FAILED");
      expect(e.message).toContain("not an umlfleet error");
    }
  });

  it("isUmlfleetError recognises errors of another copy of the module (instanceof does not)", async () => {
    vi.resetModules();
    // The query makes a second, separate copy of the module (as a second install would).
    const other = (await import(
      /* @vite-ignore */ `../../src/errors?copy=${Date.now()}`
    )) as typeof import("../../src/errors");
    const foreign = new other.UmlfleetError("UMLFLEET_NOT_FOUND", "from another copy");
    expect(foreign).not.toBeInstanceOf(UmlfleetError);
    expect(isUmlfleetError(foreign)).toBe(true);
    expect(isUmlfleetError(foreign, "UMLFLEET_NOT_FOUND")).toBe(true);
    expect(isUmlfleetError(foreign, "UMLFLEET_CONFLICT")).toBe(false);
    expect(isUmlfleetError(new Error("plain"))).toBe(false);
    expect(isUmlfleetError({ code: "UMLFLEET_NOT_FOUND" })).toBe(false);
  });
});
