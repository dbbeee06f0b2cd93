import Ajv, { type ValidateFunction } from "ajv";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { InvalidSpecError } from "../errors";
import { ROUTES, type DriverMethod } from "../client/routes";
import { SCHEMA_DIR, simplify } from "../validation";

/** A request body the schema accepted. */
export interface AgentRequest {
  args: unknown[];
  timeoutMs?: number;
  /** The calling stack (CallOptions.owner). */
  owner?: string;
}

/**
 * Checks request bodies against schema/agent.json (which reuses the resource
 * schemas by $ref) before the agent does anything with them. No defaults are
 * filled in: the driver validates the specs again and fills them itself.
 */
export class RequestValidator {
  private readonly routes = new Map<DriverMethod, ValidateFunction>();

  constructor() {
    const ajv = new Ajv({ allErrors: true, verbose: true, discriminator: true, strict: false });
    for (const file of readdirSync(SCHEMA_DIR)) {
      if (file.endsWith(".json"))
        ajv.addSchema(JSON.parse(readFileSync(join(SCHEMA_DIR, file), "utf8")) as object, file);
    }
    for (const m of Object.keys(ROUTES) as DriverMethod[]) {
      const fn = ajv.getSchema(`agent.json#/definitions/routes/${m}`);
      if (!fn) throw new Error(`umlfleet: schema/agent.json has no route ${m}`);
      this.routes.set(m, fn);
    }
  }

  /** The body as a request of `method`, or UMLFLEET_INVALID_SPEC naming every bad field (/args/0/name, /timeoutMs). */
  check(method: DriverMethod, body: unknown): AgentRequest {
    const fn = this.routes.get(method)!;
    if (!fn(body)) throw new InvalidSpecError(method, simplify(fn.errors ?? []));
    return body as AgentRequest;
  }
}
