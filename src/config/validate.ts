import { configSchema, SCHEMA_VERSION, type Config } from "./schema.js";
import { describe, isPlainObject, pathKey, type Issue } from "./types.js";

/** Deeper than any vmsilo.json needs (extraConfig included); deeper documents would exhaust the
 * stack of the recursive checks and of JSON.stringify. */
export const MAX_DEPTH = 64;

/** The path of the first value nested deeper than MAX_DEPTH, or null (iterative: no recursion). */
function tooDeep(input: unknown): string | null {
  const stack: Array<[unknown, string, number]> = [[input, "", 0]];
  while (stack.length) {
    const [v, at, depth] = stack.pop()!;
    if (typeof v !== "object" || v === null) continue;
    if (depth >= MAX_DEPTH) return at || "(document)";
    if (Array.isArray(v)) v.forEach((x, i) => stack.push([x, `${at}[${i}]`, depth + 1]));
    else for (const k of Object.keys(v)) stack.push([(v as Record<string, unknown>)[k], at ? `${at}.${pathKey(k)}` : pathKey(k), depth + 1]);
  }
  return null;
}

/** Check a parsed vmsilo.json against the closed schema; returns the config with defaults, or every issue. */
export function validate(input: unknown): { config?: Config; issues: Issue[] } {
  const deep = tooDeep(input);
  if (deep !== null) return { issues: [{ path: deep, message: `must be nested at most ${MAX_DEPTH} levels deep, got more` }] };
  if (isPlainObject(input) && Object.hasOwn(input, "schemaVersion") && input.schemaVersion !== SCHEMA_VERSION) {
    return { issues: [{ path: "schemaVersion", message: `must be ${SCHEMA_VERSION} (this vmsilo-gen reads schema version ${SCHEMA_VERSION}), got ${describe(input.schemaVersion)}` }] };
  }
  const ctx = { issues: [] as Issue[] };
  const config = configSchema.check(input, "", ctx);
  return ctx.issues.length || config === undefined ? { issues: ctx.issues } : { config, issues: [] };
}
