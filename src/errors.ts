/**
 * One error vocabulary for the runtime, the agent and the provider.
 * Every code is listed in docs/errors.md; test/unit/errors.test.ts fails when
 * the list and this table disagree.
 */
export const ERROR_CODES = {
  UMLFLEET_INVALID_SPEC: "A spec failed schema validation; nothing was done.",
  UMLFLEET_NOT_FOUND: "The named base, disk, network, instance or link does not exist.",
  UMLFLEET_CONFLICT: "A resource of that name exists with a different spec, or belongs to another stack.",
  UMLFLEET_IN_USE: "The resource is used by another one and cannot be removed.",
  UMLFLEET_BASE_MISMATCH: "An overlay's COW header names another base than the one given.",
  UMLFLEET_BASE_CHANGED:
    "A base image no longer holds the bytes recorded when it was made (or is gone): nothing boots or is made over it.",
  UMLFLEET_COW_CORRUPT: "A file is not a valid UML COW v3 overlay.",
  UMLFLEET_DISK_DAMAGED:
    "A disk file was deleted, truncated or its overlay header changed behind umlfleet's back: nothing boots on it.",
  UMLFLEET_BOOT_FAILED: "The guest exited or panicked before it was ready.",
  UMLFLEET_BOOT_TIMEOUT: "The guest did not become ready before the deadline; it was killed.",
  UMLFLEET_MCONSOLE_TIMEOUT: "An mconsole call got no answer before its deadline.",
  UMLFLEET_MCONSOLE_ERROR: "The guest's mconsole answered with an error.",
  UMLFLEET_NOT_RUNNING: "The instance is not running.",
  UMLFLEET_EXEC_TIMEOUT: "A command in the guest did not finish before its deadline.",
  UMLFLEET_COMMAND_FAILED: "A host tool (mke2fs, vde_switch, bwrap, ...) failed.",
  UMLFLEET_SWITCH_FAILED: "The virtual switch did not start.",
  UMLFLEET_LOCK_TIMEOUT: "Another operation held the resource's lock past the deadline.",
  UMLFLEET_OPERATION_TIMEOUT:
    "An operation did not finish before its deadline; what it had begun was cleaned up.",
  UMLFLEET_CANCELLED: "An operation was cancelled by its caller; what it had begun was cleaned up.",
  UMLFLEET_RESTART_REQUIRED: "The change cannot be applied to a running guest.",
  UMLFLEET_PERMISSION_DENIED:
    "The host user lacks a privilege the spec needs (CAP_NET_ADMIN to make a host link's tap).",
  UMLFLEET_STATE_CORRUPT: "A state file could not be read.",
  UMLFLEET_STATE_WRITE_FAILED:
    "A file in the state folder could not be written (no space left, read-only, no permission); nothing was recorded for it.",
  UMLFLEET_HOST_UNSUPPORTED:
    "This host cannot do what the spec asks (a missing tool, privilege or apt mirror); nothing was done.",
  UMLFLEET_BAD_REQUEST: "An agent request's body is not a JSON object; nothing was done.",
  UMLFLEET_REQUEST_TOO_LARGE: "An agent request's body is larger than the agent accepts; nothing was done.",
  UMLFLEET_UNKNOWN_ROUTE: "The agent has no such route (the path of an agent request).",
  UMLFLEET_METHOD_NOT_ALLOWED: "The agent's route exists but not for this HTTP method.",
  UMLFLEET_AGENT_PROTOCOL: "The agent's answer was not a well-formed umlfleet response.",
  UMLFLEET_AGENT_MISSING: "The target host has no umlfleet-agent command on its PATH for the SSH user.",
  UMLFLEET_VERSION_MISMATCH: "The target host's umlfleet differs from the provider's.",
  UMLFLEET_HOST_UNREACHABLE:
    "The target host could not be reached (refused, timed out, unknown name, connection lost).",
  UMLFLEET_HOST_KEY_MISMATCH:
    "The target host's SSH host key is unknown or differs from the pinned one; nothing was sent.",
  UMLFLEET_HOST_AUTH_FAILED: "The target host refused the SSH user or key.",
  UMLFLEET_HOST_UNSUITABLE: "A host lacks what umlfleet needs to run guests there; nothing was made on it.",
  UMLFLEET_LAB_INVALID:
    "A Netkit/Kathará lab folder holds a line or file umlfleet cannot import; nothing was declared.",
  UMLFLEET_CHECK_FAILED: "A lab check did not get what it expects; the update failed.",
} as const;

export type ErrorCode = keyof typeof ERROR_CODES;

/** The HTTP status each code answers with (the agent's responses; issue #11). */
export const STATUS_CODES: Record<ErrorCode, number> = {
  UMLFLEET_INVALID_SPEC: 400,
  UMLFLEET_NOT_FOUND: 404,
  UMLFLEET_CONFLICT: 409,
  UMLFLEET_IN_USE: 409,
  UMLFLEET_BASE_MISMATCH: 409,
  UMLFLEET_BASE_CHANGED: 409,
  UMLFLEET_COW_CORRUPT: 422,
  UMLFLEET_DISK_DAMAGED: 409,
  UMLFLEET_BOOT_FAILED: 500,
  UMLFLEET_BOOT_TIMEOUT: 504,
  UMLFLEET_MCONSOLE_TIMEOUT: 504,
  UMLFLEET_MCONSOLE_ERROR: 502,
  UMLFLEET_NOT_RUNNING: 409,
  UMLFLEET_EXEC_TIMEOUT: 504,
  UMLFLEET_COMMAND_FAILED: 500,
  UMLFLEET_SWITCH_FAILED: 500,
  UMLFLEET_LOCK_TIMEOUT: 503,
  UMLFLEET_OPERATION_TIMEOUT: 504,
  UMLFLEET_CANCELLED: 499,
  UMLFLEET_RESTART_REQUIRED: 409,
  UMLFLEET_PERMISSION_DENIED: 403,
  UMLFLEET_STATE_CORRUPT: 500,
  UMLFLEET_STATE_WRITE_FAILED: 507,
  UMLFLEET_HOST_UNSUPPORTED: 501,
  UMLFLEET_BAD_REQUEST: 400,
  UMLFLEET_REQUEST_TOO_LARGE: 413,
  UMLFLEET_UNKNOWN_ROUTE: 404,
  UMLFLEET_METHOD_NOT_ALLOWED: 405,
  // The rest arise on the client's side of the wire; the status says which side failed.
  UMLFLEET_AGENT_PROTOCOL: 502,
  UMLFLEET_AGENT_MISSING: 502,
  UMLFLEET_VERSION_MISMATCH: 409,
  UMLFLEET_HOST_UNREACHABLE: 502,
  UMLFLEET_HOST_KEY_MISMATCH: 502,
  UMLFLEET_HOST_AUTH_FAILED: 502,
  UMLFLEET_HOST_UNSUITABLE: 422,
  UMLFLEET_LAB_INVALID: 400,
  UMLFLEET_CHECK_FAILED: 422,
};

const REASON: Record<number, string> = {
  400: "Bad Request",
  403: "Forbidden",
  404: "Not Found",
  405: "Method Not Allowed",
  409: "Conflict",
  413: "Payload Too Large",
  422: "Unprocessable Entity",
  499: "Client Closed Request",
  500: "Internal Server Error",
  501: "Not Implemented",
  502: "Bad Gateway",
  503: "Service Unavailable",
  504: "Gateway Timeout",
};

/** An error as it travels (agent responses, logs): no stack, facts as JSON. */
export interface ErrorBody {
  statusCode: number;
  code: ErrorCode;
  error: string;
  message: string;
  details: Record<string, unknown>;
}

/**
 * The brand of every UmlfleetError, shared by every copy of this module: the
 * provider loads umlfleet by package name while tests and programs may hold
 * another copy, and `instanceof` fails across copies.
 */
const BRAND = Symbol.for("umlfleet.UmlfleetError");

/** Base class of every error umlfleet throws on purpose. Facts travel as fields. */
export class UmlfleetError extends Error {
  readonly code: ErrorCode;
  /** Extra facts (field, value, exitCode, consoleTail, ...), safe to serialize. */
  readonly details: Readonly<Record<string, unknown>>;

  constructor(
    code: ErrorCode,
    message: string,
    details: Record<string, unknown> = {},
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = "UmlfleetError";
    this.code = code;
    this.details = details;
    Object.defineProperty(this, BRAND, { value: true });
  }

  get statusCode(): number {
    return STATUS_CODES[this.code];
  }

  /** `{statusCode, code, error, message, details}`: what crosses a wire; errorFromJSON rebuilds it. */
  toJSON(): ErrorBody {
    return {
      statusCode: this.statusCode,
      code: this.code,
      error: REASON[this.statusCode] ?? "Error",
      message: this.message,
      details: JSON.parse(JSON.stringify(this.details)) as Record<string, unknown>,
    };
  }
}

/** One failed field of a spec. `field` is a JSON pointer like `/nics/0/mac`. */
export interface FieldProblem {
  field: string;
  value: unknown;
  message: string;
}

/** Thrown before any side effect when a spec is invalid. */
/** What an error shows of a secret: a password hash is never repeated in clear. */
export const SECRET_SHOWN = "[secret]";
const SECRET_KEY = /password/i;

/** `value` with every property whose name speaks of a password replaced by SECRET_SHOWN. */
export function redactSecrets(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(redactSecrets);
  if (value === null || typeof value !== "object") return value;
  return Object.fromEntries(
    Object.entries(value).map(([k, v]) => [k, SECRET_KEY.test(k) ? SECRET_SHOWN : redactSecrets(v)]),
  );
}

export class InvalidSpecError extends UmlfleetError {
  readonly problems: readonly FieldProblem[];
  constructor(kind: string, shown: FieldProblem[]) {
    // A bad password hash (or one under a mistyped key) is named, never shown.
    const problems = shown.map((p) => ({
      ...p,
      value: SECRET_KEY.test(p.field) ? SECRET_SHOWN : redactSecrets(p.value),
    }));
    const lines = problems.map((p) => `${kind}${p.field || "/"}: ${p.message} (got ${quote(p.value)})`);
    super("UMLFLEET_INVALID_SPEC", `invalid ${kind} spec: ${lines.join("; ")}`, {
      kind,
      problems,
    });
    this.name = "InvalidSpecError";
    this.problems = problems;
  }
}

/** A guest that failed to boot: what ran, how it ended, and the console's last lines. */
export class BootError extends UmlfleetError {
  constructor(
    code: "UMLFLEET_BOOT_FAILED" | "UMLFLEET_BOOT_TIMEOUT",
    message: string,
    readonly facts: {
      instance: string;
      argv: readonly string[];
      exitCode: number | null;
      signal: string | null;
      timedOut: boolean;
      durationMs: number;
      consoleTail: string;
    },
  ) {
    super(code, `${message}\n--- console tail ---\n${facts.consoleTail}`, { ...facts });
    this.name = "BootError";
  }
}

/** Throw UMLFLEET_IN_USE when `usedBy` is not empty: removing `what` would pull it from under them. */
export function refuseIfInUse(what: string, name: string, usedBy: readonly string[], users: string): void {
  if (usedBy.length === 0) return;
  throw new UmlfleetError(
    "UMLFLEET_IN_USE",
    `${what} ${JSON.stringify(name)} is used by ${users} ${usedBy.join(", ")}`,
    {
      name,
      usedBy,
    },
  );
}

/** Render a value for an error message: short, quoted, never multi-line. */
export function quote(value: unknown): string {
  let text: string;
  try {
    text = typeof value === "string" ? JSON.stringify(value) : (JSON.stringify(value) ?? String(value));
  } catch {
    try {
      text = String(value);
    } catch {
      text = `(a ${typeof value} that cannot be shown)`;
    }
  }
  return text.length > 120 ? `${text.slice(0, 117)}...` : text;
}

/** Is `e` an UmlfleetError (of `code`), from this or any other copy of umlfleet? */
export function isUmlfleetError(e: unknown, code?: ErrorCode): e is UmlfleetError {
  return (
    typeof e === "object" &&
    e !== null &&
    (e as Record<symbol, unknown>)[BRAND] === true &&
    (code === undefined || (e as UmlfleetError).code === code)
  );
}

/**
 * The error an ErrorBody describes, as the class that threw it: the same
 * code, message and details; InvalidSpecError with its problems, BootError
 * with its facts. A body that is not one (an unknown code, a missing field)
 * is UMLFLEET_COMMAND_FAILED naming what came.
 */
export function errorFromJSON(body: unknown): UmlfleetError {
  const b = body as Partial<ErrorBody> | null;
  const known = typeof b?.code === "string" && b.code in ERROR_CODES;
  if (!b || !known || typeof b.message !== "string") {
    return new UmlfleetError("UMLFLEET_COMMAND_FAILED", `not an umlfleet error: ${quote(body)}`, { body });
  }
  const details = b.details && typeof b.details === "object" ? b.details : {};
  let e: UmlfleetError;
  if (b.code === "UMLFLEET_INVALID_SPEC" && Array.isArray(details.problems)) {
    e = new InvalidSpecError(
      typeof details.kind === "string" ? details.kind : "spec",
      details.problems as FieldProblem[],
    );
  } else if ((b.code === "UMLFLEET_BOOT_FAILED" || b.code === "UMLFLEET_BOOT_TIMEOUT") && details.instance) {
    e = new BootError(b.code, "", details as unknown as BootError["facts"]);
  } else {
    e = new UmlfleetError(b.code!, b.message, details);
  }
  e.message = b.message;
  return e;
}
