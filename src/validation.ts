import Ajv, { type ErrorObject, type ValidateFunction } from "ajv";
import { existsSync, readFileSync, readdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { InvalidSpecError, type FieldProblem } from "./errors";
import { captureRoots, instanceFeatureProblems, networkFeatureProblems } from "./feature-checks";
import { labChecksProblems } from "./lab-checks";
import type { InstanceGroupSpec, InstanceSpec, LabChecksSpec, SpecKind, SpecOf } from "./spec";

/** The package root (holds package.json and schema/), from src/ or dist/src/. */
export function packageRoot(): string {
  let dir = __dirname;
  for (;;) {
    if (existsSync(join(dir, "package.json")) && existsSync(join(dir, "schema"))) return dir;
    const up = dirname(dir);
    if (up === dir) throw new Error(`umlfleet: no package root above ${__dirname}`);
    dir = up;
  }
}

export const SCHEMA_DIR = join(packageRoot(), "schema");

/** This umlfleet's version (package.json). */
export function packageVersion(): string {
  return (JSON.parse(readFileSync(join(packageRoot(), "package.json"), "utf8")) as { version: string })
    .version;
}
/** The schema file (in schema/) of each spec kind. */
export const SCHEMA_FILE: Record<SpecKind, string> = {
  kernel: "kernel.json",
  base: "base.json",
  disk: "disk.json",
  network: "network.json",
  instance: "instance.json",
  "serial-link": "serial-link.json",
  "instance-group": "instance-group.json",
};

/** Debian's packaged UML kernel (package user-mode-linux). */
export const DEBIAN_KERNEL = "/usr/bin/linux.uml";

/**
 * The kernel an instance or group that names none boots: the host's
 * `$UMLFLEET_KERNEL`, else Debian's. A host setting, like the state folder:
 * Debian's 6.1 kernel cannot run guest processes on CPUs whose XSAVE area is
 * larger than it handles (AMX; docs/kernel.md), where the built kernel can.
 */
export function defaultKernel(env: NodeJS.ProcessEnv = process.env): string {
  return env.UMLFLEET_KERNEL || DEBIAN_KERNEL;
}

/**
 * Validates specs against schema/. Each schema is compiled once, when first
 * used: the provider makes four validators at load, and compiling every
 * schema for each took most of the 3 s its first call waited (measured under
 * load; a no-op `up` uses a few kinds only).
 * `validate` never mutates its input: it returns a copy with defaults filled in,
 * or throws InvalidSpecError (UMLFLEET_INVALID_SPEC) naming every bad field.
 */
export class SpecValidator {
  private readonly ajv: Ajv;
  private readonly compiled = new Map<string, ValidateFunction>();

  /**
   * `kernel`: what a spec without one boots (default: defaultKernel()).
   * `captureDirs`: where capture files may be written (default: captureRoots()).
   */
  constructor(
    private readonly kernel: string = defaultKernel(),
    readonly captureDirs: readonly string[] = captureRoots(),
  ) {
    this.ajv = new Ajv({
      allErrors: true,
      useDefaults: true,
      verbose: true,
      discriminator: true,
      strict: false,
      // The files are checked against JSON Schema's meta-schema by test/unit/schema-files.test.ts,
      // not at each start: that took 30-50 ms of every provider's and agent's start.
      validateSchema: false,
    });
    const files = readdirSync(SCHEMA_DIR).filter((f) => f.endsWith(".json"));
    for (const file of files)
      this.ajv.addSchema(JSON.parse(readFileSync(join(SCHEMA_DIR, file), "utf8")) as object, file);
    for (const file of Object.values(SCHEMA_FILE))
      if (!files.includes(file)) throw new Error(`umlfleet: schema ${file} missing`);
  }

  /** The compiled validator of a schema file (or the state folder's definition), compiled on first use. */
  private fn(key: string): ValidateFunction {
    let fn = this.compiled.get(key);
    if (!fn) {
      fn =
        key === "stateDir"
          ? this.ajv.compile({ $ref: "common.json#/definitions/stateDir" })
          : this.ajv.getSchema(key);
      if (!fn) throw new Error(`umlfleet: schema ${key} missing`);
      this.compiled.set(key, fn);
    }
    return fn;
  }
  private get stateDir(): ValidateFunction {
    return this.fn("stateDir");
  }
  private get host(): ValidateFunction {
    return this.fn("host.json");
  }
  private get labChecks(): ValidateFunction {
    return this.fn("lab-checks.json");
  }

  /**
   * Problems with a state folder path (schema common.json#/definitions/stateDir):
   * it reaches UML's command line and socket paths, so a space or comma in
   * it would break a boot rather than fail here. `field` names where it came
   * from (a resource's `stateDir`, or `$UMLFLEET_STATE_DIR`).
   */
  stateDirProblems(path: unknown, field = "stateDir"): FieldProblem[] {
    const fn = this.stateDir;
    if (fn(path)) return [];
    return simplify(fn.errors ?? []).map((p) => ({ ...p, field, value: path }));
  }

  /** Throw UMLFLEET_INVALID_SPEC naming `field` when `path` is no valid state folder. */
  checkStateDir(path: unknown, field = "stateDir"): string {
    const problems = this.stateDirProblems(path, field);
    if (problems.length > 0)
      throw new InvalidSpecError(
        "host",
        problems.map((p) => ({ ...p, field: `/${field}` })),
      );
    return path as string;
  }

  /**
   * Problems with a Host's spec (schema/host.json), empty when valid. A bad
   * private key is never quoted: its value is reported as "(secret)".
   */
  hostProblems(spec: unknown): FieldProblem[] {
    if (this.host(spec)) return [];
    return simplify(this.host.errors ?? []).map((p) =>
      p.field.startsWith("/ssh/privateKey") ? { ...p, value: "(secret)" } : p,
    );
  }

  /** Problems with a LabChecks spec (schema/lab-checks.json, then src/lab-checks.ts), empty when valid. */
  labChecksProblems(spec: unknown): FieldProblem[] {
    if (!this.labChecks(spec)) return simplify(this.labChecks.errors ?? []);
    return labChecksProblems(spec as LabChecksSpec);
  }

  /** A LabChecks spec with its defaults, or UMLFLEET_INVALID_SPEC naming every bad field. */
  validateLabChecks(spec: unknown): LabChecksSpec {
    const copy: unknown = structuredClone(spec);
    const problems = this.labChecksProblems(copy);
    if (problems.length > 0) throw new InvalidSpecError("lab-checks", problems);
    return copy as LabChecksSpec;
  }

  /** Problems with `spec`, empty when valid. Fills defaults into `spec`. */
  problems(kind: SpecKind, spec: unknown): FieldProblem[] {
    const fn = this.fn(SCHEMA_FILE[kind]);
    const kernelFromHost =
      (kind === "instance" || kind === "instance-group") &&
      !!spec &&
      typeof spec === "object" &&
      (spec as { kernel?: unknown }).kernel === undefined;
    if (kernelFromHost) (spec as { kernel?: string }).kernel = this.kernel;
    if (!fn(spec)) {
      const problems = simplify(fn.errors ?? []);
      // A bad default is the host's setting, not the spec's: say so.
      return kernelFromHost
        ? problems.map((p) =>
            p.field === "/kernel"
              ? { ...p, message: `${p.message} (the host default, $UMLFLEET_KERNEL)` }
              : p,
          )
        : problems;
    }
    if (kind === "instance-group") return this.memberProblems(spec as SpecOf["instance-group"]);
    if (kind === "network") return networkFeatureProblems(spec as SpecOf["network"], this.captureDirs);
    return semanticProblems(kind, spec as SpecOf[typeof kind]);
  }

  /** Each member of a group is checked as the instance it becomes; fields are named under /members/<member>. */
  private memberProblems(group: SpecOf["instance-group"]): FieldProblem[] {
    const out: FieldProblem[] = [];
    for (const member of Object.keys(group.members)) {
      const spec = memberInstanceSpec(group, member);
      for (const p of this.problems("instance", spec)) {
        // name, rootDisk and kernel come from the group: report them where the user wrote them.
        const field = /^\/(name|rootDisk)(\/|$)/.test(p.field)
          ? `/members/${member}`
          : /^\/kernel(\/|$)/.test(p.field)
            ? p.field
            : `/members/${member}${p.field}`;
        out.push({ ...p, field, value: field === `/members/${member}` ? member : p.value });
      }
    }
    return out;
  }

  validate<K extends SpecKind>(kind: K, spec: unknown): SpecOf[K] {
    const copy: unknown = spec === undefined ? undefined : structuredClone(spec);
    const problems = this.problems(kind, copy);
    if (problems.length > 0) throw new InvalidSpecError(kind, problems);
    return copy as SpecOf[K];
  }
}

/** The instance spec of group member `member`: its own fields, the group's kernel, its overlay `<member>-root`. */
export function memberInstanceSpec(group: InstanceGroupSpec, member: string): InstanceSpec {
  return {
    ...structuredClone(group.members[member]!),
    name: member,
    rootDisk: memberRootDisk(member),
    ...(group.kernel !== undefined ? { kernel: group.kernel } : {}),
  };
}
export const memberRootDisk = (member: string) => `${member}-root`;

/** Ajv errors as one problem per bad field, named by JSON pointer, wrappers dropped. */
export function simplify(errors: ErrorObject[]): FieldProblem[] {
  const out: FieldProblem[] = [];
  const seen = new Set<string>();
  for (const e of errors) {
    // oneOf/if wrappers only repeat what their branches said, except a oneOf
    // that failed because several branches matched: that is its own problem.
    const severalMatched =
      e.keyword === "oneOf" && Array.isArray((e.params as { passingSchemas?: unknown }).passingSchemas);
    if (
      (e.keyword === "oneOf" && !severalMatched) ||
      e.keyword === "if" ||
      e.keyword === "allOf" ||
      // "property name must be valid": the name's own pattern error says which and why.
      e.keyword === "propertyNames"
    )
      continue;
    let field = e.instancePath;
    let value: unknown = e.data;
    let message: string;
    const described = (e.parentSchema as { description?: string } | undefined)?.description;
    switch (e.keyword) {
      case "required":
        field += `/${(e.params as { missingProperty: string }).missingProperty}`;
        value = undefined;
        message = "is required";
        break;
      case "additionalProperties":
        field += `/${(e.params as { additionalProperty: string }).additionalProperty}`;
        value = (e.data as Record<string, unknown>)[
          (e.params as { additionalProperty: string }).additionalProperty
        ];
        message = "is not a known field";
        break;
      case "pattern":
        message = described ? `is not allowed: ${described}` : `must match ${String(e.schema)}`;
        break;
      case "oneOf":
        message = "sets more than one of its alternative forms; set exactly one";
        break;
      case "false schema":
        message = "is not allowed for this kind";
        break;
      case "discriminator": {
        const tag = (e.params as { tag: string }).tag;
        field += `/${tag}`;
        value = (e.data as Record<string, unknown> | undefined)?.[tag];
        message = "is not a known kind";
        break;
      }
      case "not":
        message = field.startsWith("/kernelArgs/")
          ? "is a host-side UML option or reserved key, which kernelArgs may not set"
          : described
            ? `is not allowed: ${described}`
            : "is not allowed in this combination";
        break;
      case "enum":
        message = `must be one of ${JSON.stringify(e.schema)}`;
        break;
      case "const":
        message = `must be ${JSON.stringify(e.schema)}`;
        break;
      default:
        message = e.message ?? e.keyword;
    }
    const key = `${field}\u0000${message}`;
    if (!seen.has(key)) {
      seen.add(key);
      out.push({ field, value, message });
    }
  }
  // A failed validation always names something, even if every error above was a wrapper.
  if (out.length === 0 && errors.length > 0) {
    const e = errors[0]!;
    out.push({ field: e.instancePath, value: e.data, message: e.message ?? e.keyword });
  }
  return out;
}

/** Rules a JSON Schema cannot say: uniqueness across items, distinct link ends. */
function semanticProblems(kind: SpecKind, spec: SpecOf[SpecKind]): FieldProblem[] {
  const problems: FieldProblem[] = [];
  const unique = (
    items: unknown[] | undefined,
    key: (x: never) => string,
    path: (i: number) => string,
    what: string,
  ) => {
    const seen = new Map<string, number>();
    (items ?? []).forEach((item, i) => {
      const k = key(item as never);
      if (seen.has(k))
        problems.push({ field: path(i), value: k, message: `${what} repeats item ${seen.get(k)}` });
      else seen.set(k, i);
    });
  };
  if (kind === "instance") {
    const s = spec as SpecOf["instance"];
    unique(
      s.shares,
      (x: { name: string }) => x.name,
      (i) => `/shares/${i}/name`,
      "share name",
    );
    unique(
      s.shares,
      (x: { guestPath: string }) => x.guestPath,
      (i) => `/shares/${i}/guestPath`,
      "guest path",
    );
    unique(
      [s.rootDisk, ...(s.disks ?? []).map((d) => d.disk), ...(s.swapDisk ? [s.swapDisk] : [])],
      (x: string) => x,
      (i) => (i === 0 ? "/rootDisk" : i <= (s.disks?.length ?? 0) ? `/disks/${i - 1}/disk` : "/swapDisk"),
      "disk",
    );
    const macs = new Map<string, number>();
    (s.nics ?? []).forEach((n, i) => {
      if (!n.mac) return;
      if (macs.has(n.mac))
        problems.push({
          field: `/nics/${i}/mac`,
          value: n.mac,
          message: `MAC address repeats NIC ${macs.get(n.mac)}`,
        });
      else macs.set(n.mac, i);
    });
    if (s.maxMemoryMiB !== undefined && s.maxMemoryMiB < s.memoryMiB) {
      problems.push({
        field: "/maxMemoryMiB",
        value: s.maxMemoryMiB,
        message: `must be at least memoryMiB (${s.memoryMiB})`,
      });
    }
    problems.push(...instanceFeatureProblems(s));
  }
  if (kind === "serial-link") {
    const s = spec as SpecOf["serial-link"];
    if (s.a.instance === s.b.instance && s.a.line === s.b.line)
      problems.push({ field: "/b", value: s.b, message: "joins a serial line to itself" });
  }
  return problems;
}
