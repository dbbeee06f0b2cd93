/**
 * A generated corpus of invalid resource specs, derived from schema/*.json and
 * a valid seed spec per kind: every field the schema declares is given wrong
 * types, out-of-range and huge numbers, hostile strings (`..`, NUL, newline,
 * comma, `=`, a leading `-`, 4 KiB names, shell metacharacters) and unknown
 * neighbours. Hostile strings come from fast-check with a fixed seed, so a
 * failure names a case that comes back on the next run.
 *
 * The oracle is the schema's own constraint read here (a pattern, an enum, a
 * range), not the validator under test, so a validator that lets one through
 * fails the test. String fields with no constraint at all are listed in
 * FREE_TEXT with the reason they never reach a command line or a path: a new
 * unconstrained string field fails the test until it is classified.
 */
import { readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import fc from "fast-check";
import type { SpecKind } from "../../src/spec";
import { SCHEMA_FILE } from "../../src/validation";

type Schema = Record<string, unknown> & {
  type?: string | string[];
  properties?: Record<string, Schema>;
  items?: Schema;
  additionalProperties?: boolean | Schema;
  oneOf?: Schema[];
  allOf?: Schema[];
  $ref?: string;
  pattern?: string;
  enum?: unknown[];
  const?: unknown;
  minimum?: number;
  maximum?: number;
  maxLength?: number;
  maxItems?: number;
  not?: unknown;
};

export interface BadSpec {
  kind: SpecKind;
  /** What was done, e.g. "hostile string '../x'". */
  label: string;
  /** JSON pointer of the mutated field; the error must name it (or a parent for structural cases). */
  field: string;
  spec: unknown;
}

/** Unconstrained string fields (JSON pointer with `*` for array items and members) and why they are safe. */
export const FREE_TEXT: Record<string, string> = {
  "base:/source/files/*/content":
    "file content: written into the image by mke2fs -d from a staged file, never a word",
  "instance:/files/*/content":
    "file content: staged as a host file bound read-only into the sandbox, copied by the guest's init",
  "instance:/startup":
    "a shell script for the guest's own shell: staged as a file, never on a host command line",
  "kernel:/build/extraConfig/*":
    "a line of the kernel build's .config (a file, never a command word); its pattern admits quoted strings with spaces",
};

/**
 * Constrained fields that may legitimately hold some hostile-looking strings:
 * the predicate says which, and the comment why. Everything else must refuse
 * every hostile string.
 */
const MAY_HOLD: Record<string, (v: string) => boolean> = {};
/** A safe absolute path by the test's own definition: plain characters, no `.` or `..` segment. */
const safePath = (v: string) =>
  /^\/[A-Za-z0-9._+@/-]*$/.test(v) && !v.split("/").some((seg) => seg === "." || seg === "..");
for (const key of [
  "kernel:/path",
  "base:/source/path",
  "base:/source/files/*/path",
  "instance:/kernel",
  "instance:/shares/*/hostPath",
  "instance:/shares/*/guestPath",
  "instance:/files/*/path",
  "instance:/files/*/source",
  "network:/capture/path",
  "instance-group:/kernel",
])
  MAY_HOLD[key] = safePath;

const SCHEMA_DIR = join(__dirname, "..", "..", "schema");

function loadSchemas(): Map<string, Schema> {
  const out = new Map<string, Schema>();
  for (const f of readdirSync(SCHEMA_DIR))
    if (f.endsWith(".json")) out.set(f, JSON.parse(readFileSync(join(SCHEMA_DIR, f), "utf8")) as Schema);
  return out;
}

/** Follow `$ref` and merge `allOf` so one schema object holds a field's whole rule. */
function resolve(s: Schema, file: string, all: Map<string, Schema>): [Schema, string] {
  let cur = s;
  let curFile = file;
  while (cur.$ref) {
    const [refFile, pointer] = cur.$ref.split("#");
    const f = refFile || curFile;
    let target: unknown = all.get(f);
    for (const part of (pointer ?? "").split("/").filter(Boolean))
      target = (target as Record<string, unknown>)[part];
    cur = { ...(target as Schema), ...cur, $ref: (target as Schema).$ref };
    curFile = f;
  }
  if (cur.allOf) {
    let merged: Schema = { ...cur, allOf: undefined };
    for (const part of cur.allOf) {
      const [r] = resolve(part, curFile, all);
      if (r.if || r.then) continue; // conditionals are the validator's semantic layer
      merged = {
        ...r,
        ...merged,
        pattern: merged.pattern ?? r.pattern,
        maxLength: merged.maxLength ?? r.maxLength,
      };
    }
    cur = merged;
  }
  return [cur, curFile];
}

const HOSTILE_FIXED = [
  "",
  "..",
  "../x",
  "a/../b",
  "/a/../../etc/shadow",
  "a\u0000b",
  "a\nb",
  "a\rb",
  "a,b",
  "a,ubd1=/etc/shadow",
  "a=b",
  "-a",
  "--help",
  " a",
  "a b",
  "a:b",
  "$(id)",
  "`id`",
  "a;id",
  "a|id",
  "a&b",
  "a'b",
  'a"b',
  "a\\b",
  "a\tb",
  "A",
  "a".repeat(4096),
  "/".repeat(2000),
  "é",
  "a\u202eb",
];

/** fast-check: a plausible value with a hostile token spliced in (deterministic). */
function sampledHostile(count: number, seed: number): string[] {
  const token = fc.constantFrom(
    "..",
    "\u0000",
    "\n",
    ",",
    "=",
    " ",
    ":",
    ";",
    "$(",
    "`",
    "'",
    '"',
    "\\",
    "*",
  );
  const plain = fc.stringMatching(/^[a-z0-9/._-]{0,12}$/);
  const lead = fc.constantFrom("", "-", "--", "/", "../");
  const arb = fc.tuple(lead, plain, token, plain).map(([l, a, t, b]) => `${l}${a}${t}${b}`);
  return fc.sample(arb, { numRuns: count, seed });
}

function typeOf(s: Schema): string | undefined {
  if (s.const !== undefined) return typeof s.const;
  if (s.enum) return typeof s.enum[0];
  return Array.isArray(s.type) ? undefined : s.type;
}

function setAt(root: unknown, path: string[], value: unknown): unknown {
  if (path.length === 0) return structuredClone(value);
  const copy = structuredClone(root) as Record<string, unknown>;
  let cur: Record<string, unknown> = copy;
  // A field of an optional object the seed leaves out: make the object around it.
  for (const p of path.slice(0, -1)) cur = (cur[p] ??= {}) as Record<string, unknown>;
  cur[path[path.length - 1]] = value;
  return copy;
}

const WRONG_TYPES: [string, unknown][] = [
  ["number", 7],
  ["string", "x"],
  ["boolean", true],
  ["null", null],
  ["array", []],
  ["object", {}],
];
const JS_TYPE: Record<string, string> = {
  integer: "number",
  number: "number",
  string: "string",
  boolean: "boolean",
};

/**
 * Every invalid spec the corpus makes for `kind` from `seed` (a valid spec).
 * `pattern` is the field's JSON pointer with `*` for items, for FREE_TEXT.
 */
export function badSpecs(kind: SpecKind, seed: unknown, unclassified: string[], rngSeed = 42): BadSpec[] {
  const all = loadSchemas();
  const out: BadSpec[] = [];
  const hostile = [...HOSTILE_FIXED, ...sampledHostile(12, rngSeed)];

  const visit = (raw: Schema, file: string, value: unknown, path: string[], generic: string): void => {
    const [s, f] = resolve(raw, file, all);
    // `not: {}` forbids the field outright (any value is refused, covered by its parent).
    if (s.not !== undefined && JSON.stringify(s.not) === "{}") return;
    const field = path.length === 0 ? "" : "/" + path.join("/");
    const add = (label: string, v: unknown, at = field) =>
      out.push({ kind, label, field: at, spec: setAt(seed, path, v) });
    const t = typeOf(s);

    // Wrong types for any typed field.
    if (t) {
      for (const [name, v] of WRONG_TYPES) {
        const matches =
          (name === "number" && (t === "integer" || t === "number")) ||
          (name === "array" && t === "array") ||
          (name === "object" && t === "object") ||
          JS_TYPE[t] === name ||
          t === name;
        if (!matches) add(`${name} where ${t} is expected`, v);
      }
    }
    if (t === "string" || s.pattern || s.enum || s.const !== undefined) {
      if (`${kind}:/${generic}` in FREE_TEXT) {
        if (typeof s.maxLength === "number")
          add(`string over maxLength ${s.maxLength}`, "a".repeat(s.maxLength + 1));
        return;
      }
      const constrained = s.pattern || s.enum || s.const !== undefined || s.maxLength !== undefined;
      if (!constrained) {
        const key = `${kind}:/${generic}`;
        if (!(key in FREE_TEXT)) unclassified.push(key);
        return;
      }
      // Hostile strings are expected refused whatever the schema says (the
      // schema is what is under test), unless the field is listed as allowed
      // to hold that string and why.
      const allowed = MAY_HOLD[`${kind}:/${generic}`];
      for (const h of hostile) if (!allowed?.(h)) add(`hostile string ${JSON.stringify(h.slice(0, 40))}`, h);
      if (typeof s.maxLength === "number")
        add(`string over maxLength ${s.maxLength}`, "a".repeat(s.maxLength + 1));
      return;
    }
    if (t === "integer" || t === "number") {
      if (typeof s.minimum === "number") add(`below minimum ${s.minimum}`, s.minimum - 1);
      if (typeof s.maximum === "number") add(`above maximum ${s.maximum}`, s.maximum + 1);
      add("huge", 1e300);
      add("negative huge", -1e300);
      if (t === "integer") add("fractional", (s.minimum ?? 0) + 0.5);
      return;
    }
    if (t === "array" && s.items) {
      const items: unknown[] = Array.isArray(value) ? value : [];
      if (typeof s.maxItems === "number" && items.length > 0)
        add(
          `over maxItems ${s.maxItems}`,
          Array.from({ length: s.maxItems + 1 }, () => structuredClone(items[0])),
        );
      items.forEach((item, i) => visit(s.items!, f, item, [...path, String(i)], `${generic}/*`));
      return;
    }
    if (t === "object" || s.properties || s.oneOf) {
      const obj = (value ?? {}) as Record<string, unknown>;
      let branch = s;
      if (s.oneOf) {
        branch =
          s.oneOf
            .map((b) => resolve(b, f, all)[0])
            .find((b) => {
              const k = b.properties?.kind;
              return k && (k.const === obj.kind || k.enum?.includes(obj.kind));
            }) ?? resolve(s.oneOf[0], f, all)[0];
      }
      if (branch.additionalProperties === false)
        add("unknown field", { ...obj, colour: "red" }, `${field}/colour`);
      for (const [k, sub] of Object.entries(branch.properties ?? {}))
        visit(sub, f, obj[k], [...path, k], generic ? `${generic}/${k}` : k);
    }
  };

  visit({ $ref: `${SCHEMA_FILE[kind]}#` }, SCHEMA_FILE[kind], seed, [], "");
  return out;
}

/** Group members are validated as instances: the instance corpus, moved under /members/<member>. */
export function badGroupMembers(
  groupSeed: { members: Record<string, object> },
  instanceSeed: object,
): BadSpec[] {
  const member = Object.keys(groupSeed.members)[0];
  const unclassified: string[] = [];
  const fromGroup = new Set(["/name", "/rootDisk", "/kernel"]);
  return badSpecs("instance", instanceSeed, unclassified)
    .filter((b) => ![...fromGroup].some((f) => b.field === f || b.field.startsWith(`${f}/`)))
    .filter((b) => b.field !== "/colour" && b.field !== "")
    .map((b) => {
      const m = { ...(b.spec as Record<string, unknown>) };
      delete m.name;
      delete m.rootDisk;
      delete m.kernel;
      return {
        kind: "instance-group" as const,
        label: `member ${b.label}`,
        field: `/members/${member}${b.field}`,
        spec: { ...structuredClone(groupSeed), members: { [member]: m } },
      };
    });
}
