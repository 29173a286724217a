import { configSchema, SCHEMA_VERSION, type Config } from "./schema.js";
import { isPlainObject, type Issue } from "./types.js";

/** Check a parsed vmsilo.json against the closed schema; returns the config with defaults, or every issue. */
export function validate(input: unknown): { config?: Config; issues: Issue[] } {
  if (isPlainObject(input) && "schemaVersion" in input && input.schemaVersion !== SCHEMA_VERSION) {
    return { issues: [{ path: "schemaVersion", message: `must be ${SCHEMA_VERSION} (this vmsilo-gen reads schema version ${SCHEMA_VERSION}), got ${JSON.stringify(input.schemaVersion)}` }] };
  }
  const ctx = { issues: [] as Issue[] };
  const config = configSchema.check(input, "", ctx);
  return ctx.issues.length || config === undefined ? { issues: ctx.issues } : { config, issues: [] };
}
