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
  private readonly ajv: Ajv;
  private readonly routes = new Map<DriverMethod, ValidateFunction>();

  constructor() {
    // validateSchema off: checking the files against JSON Schema's meta-schema took another 30-50 ms
    // of each agent's start; test/unit/schema-files.test.ts checks them.
    this.ajv = new Ajv({
      allErrors: true,
      verbose: true,
      discriminator: true,
      strict: false,
      validateSchema: false,
    });
    let routes: object | undefined;
    for (const file of readdirSync(SCHEMA_DIR)) {
      if (!file.endsWith(".json")) continue;
      const schema = JSON.parse(readFileSync(join(SCHEMA_DIR, file), "utf8")) as {
        definitions?: { routes?: object };
      };
      this.ajv.addSchema(schema, file);
      if (file === "agent.json") routes = schema.definitions?.routes;
    }
    // Every route is named in the schema; each is compiled at its first request, not here: an
    // agent starts for each SSH session, and compiling all of them took 130-150 ms of its start.
    for (const m of Object.keys(ROUTES))
      if (!routes || !(m in routes)) throw new Error(`umlfleet: schema/agent.json has no route ${m}`);
  }

  /** The body as a request of `method`, or UMLFLEET_INVALID_SPEC naming every bad field (/args/0/name, /timeoutMs). */
  check(method: DriverMethod, body: unknown): AgentRequest {
    let fn = this.routes.get(method);
    if (!fn) {
      fn = this.ajv.getSchema(`agent.json#/definitions/routes/${method}`)!;
      this.routes.set(method, fn);
    }
    if (!fn(body)) throw new InvalidSpecError(method, simplify(fn.errors ?? []));
    return body as AgentRequest;
  }
}
