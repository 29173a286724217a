/**
 * A tiny closed-schema language: each node validates a JSON value, fills defaults, and describes
 * itself for the reference page (docs/schema.md). One definition drives validation and docs.
 */
export interface Issue {
  readonly path: string;
  readonly message: string;
}

export interface Ctx {
  readonly issues: Issue[];
}

export interface Node<T> {
  /** Short type text for the reference page, e.g. `integer 1–1048576`. */
  readonly type: string;
  readonly doc: string;
  /** JSON of the default; absent when the field is required. */
  readonly default?: unknown;
  /** What the field produces in the generated output, for the reference page. */
  readonly produces?: string;
  readonly fields?: Record<string, Node<unknown>>;
  readonly item?: Node<unknown>;
  check(value: unknown, path: string, ctx: Ctx): T | undefined;
}

export type Infer<N> = N extends Node<infer T> ? T : never;

interface Meta<T> {
  doc: string;
  default?: T;
  produces?: string;
}

/** An attribute name as it appears in an option path: bare when it reads as a Nix identifier,
 * else quoted (`routes."0.0.0.0/0"`), so a name containing '.' cannot be misread as two levels. */
export function pathKey(key: string): string {
  return /^[A-Za-z_][A-Za-z0-9_-]*$/.test(key) ? key : JSON.stringify(key);
}

export function describe(value: unknown): string {
  const s = JSON.stringify(value);
  return s === undefined ? String(value) : s.length > 60 ? s.slice(0, 57) + "..." : s;
}

function fail(ctx: Ctx, path: string, expected: string, value: unknown): undefined {
  ctx.issues.push({ path: path || "(document)", message: `must be ${expected}, got ${describe(value)}` });
  return undefined;
}

function leaf<T>(type: string, expected: string, meta: Meta<T>, ok: (v: unknown) => boolean): Node<T> {
  return {
    type,
    ...meta,
    check(value, path, ctx) {
      return ok(value) ? (value as T) : fail(ctx, path, expected, value);
    },
  };
}

export const bool = (meta: Meta<boolean>) => leaf<boolean>("boolean", "true or false", meta, (v) => typeof v === "boolean");

export function int(min: number, max: number, meta: Meta<number>): Node<number> {
  return leaf<number>(`integer ${min}–${max}`, `an integer from ${min} to ${max}`, meta, (v) => Number.isInteger(v) && (v as number) >= min && (v as number) <= max);
}

/** A string matching `pattern`; `expected` says in words what that is. */
export function str(pattern: RegExp, expected: string, meta: Meta<string>): Node<string> {
  return leaf<string>(`string: ${expected}`, expected, meta, (v) => typeof v === "string" && pattern.test(v));
}

export function oneOf<const V extends string>(choices: readonly V[], meta: Meta<V>): Node<V> {
  const text = choices.map((c) => `"${c}"`).join(", ");
  return leaf<V>(`one of ${text}`, `one of ${text}`, meta, (v) => typeof v === "string" && (choices as readonly string[]).includes(v));
}

export function nullable<T>(inner: Node<T>, meta: Meta<T | null>): Node<T | null> {
  return {
    type: `null or ${inner.type}`,
    ...meta,
    check(value, path, ctx) {
      return value === null ? null : inner.check(value, path, ctx);
    },
  };
}

export function list<T>(item: Node<T>, meta: Meta<T[]> & { maxItems?: number; unique?: boolean }): Node<T[]> {
  return {
    type: `list of ${item.type}`,
    doc: meta.doc,
    default: meta.default,
    produces: meta.produces,
    item: item as Node<unknown>,
    check(value, path, ctx) {
      if (!Array.isArray(value)) return fail(ctx, path, "a list", value);
      if (meta.maxItems !== undefined && value.length > meta.maxItems) {
        ctx.issues.push({ path, message: `must have at most ${meta.maxItems} entries, got ${value.length}` });
        return undefined;
      }
      const out: T[] = [];
      let okAll = true;
      value.forEach((v, i) => {
        const r = item.check(v, `${path}[${i}]`, ctx);
        if (r === undefined) okAll = false;
        else out.push(r);
      });
      if (meta.unique) {
        const seen = new Set<string>();
        value.forEach((v, i) => {
          const k = JSON.stringify(v);
          if (seen.has(k)) ctx.issues.push({ path: `${path}[${i}]`, message: `duplicates an earlier entry ${describe(v)}` });
          seen.add(k);
        });
      }
      return okAll ? out : undefined;
    },
  };
}

/** An attribute set whose names match `keyPattern` (NixOS `attrsOf`). Output keys are sorted. */
export function record<T>(keyPattern: RegExp, keyExpected: string, item: Node<T>, meta: Meta<Record<string, T>> & { maxKeys?: number }): Node<Record<string, T>> {
  return {
    type: `attribute set (${keyExpected} → ${item.type})`,
    doc: meta.doc,
    default: meta.default,
    produces: meta.produces,
    item: item as Node<unknown>,
    check(value, path, ctx) {
      if (!isPlainObject(value)) return fail(ctx, path, "an attribute set (JSON object)", value);
      const keys = Object.keys(value).sort();
      if (meta.maxKeys !== undefined && keys.length > meta.maxKeys) {
        ctx.issues.push({ path, message: `must have at most ${meta.maxKeys} entries, got ${keys.length}` });
        return undefined;
      }
      const out: Record<string, T> = {};
      let okAll = true;
      for (const k of keys) {
        const at = `${path}.${pathKey(k)}`;
        if (!keyPattern.test(k)) {
          ctx.issues.push({ path: at, message: `name ${JSON.stringify(k)} is not ${keyExpected}` });
          okAll = false;
          continue;
        }
        const r = item.check(value[k], at, ctx);
        if (r === undefined) okAll = false;
        else out[k] = r;
      }
      return okAll ? out : undefined;
    },
  };
}

type Fields = Record<string, Node<unknown>>;
type ObjOf<F extends Fields> = { [K in keyof F]: Infer<F[K]> };

/** A closed object: unknown keys are errors; a missing key takes its default or is reported. */
export function object<F extends Fields>(fields: F, meta: { doc: string; produces?: string }): Node<ObjOf<F>> {
  const names = Object.keys(fields);
  // An object whose every field has a default may itself be left out.
  const allDefaulted = names.every((k) => fields[k]!.default !== undefined);
  return {
    type: "object",
    doc: meta.doc,
    produces: meta.produces,
    default: allDefaulted ? Object.fromEntries(names.map((k) => [k, fields[k]!.default])) : undefined,
    fields,
    check(value, path, ctx) {
      if (!isPlainObject(value)) return fail(ctx, path, "an object", value);
      let okAll = true;
      for (const k of Object.keys(value).sort()) {
        if (!names.includes(k)) {
          ctx.issues.push({ path: join(path, k), message: `unknown option (known: ${names.join(", ")})` });
          okAll = false;
        }
      }
      const out: Record<string, unknown> = {};
      for (const k of names) {
        const node = fields[k]!;
        const at = join(path, k);
        if (!(k in value)) {
          if ("default" in node && node.default !== undefined) out[k] = structuredClone(node.default);
          else {
            ctx.issues.push({ path: at, message: "is required but missing" });
            okAll = false;
          }
          continue;
        }
        const r = node.check(value[k], at, ctx);
        if (r === undefined) okAll = false;
        else out[k] = r;
      }
      return okAll ? (out as ObjOf<F>) : undefined;
    },
  };
}

/** Either of two shapes, tried in order (e.g. `false` or an object). `expected` says in words what
 * the two together accept, for the message when neither does. */
export function either<A, B>(a: Node<A>, b: Node<B>, meta: Meta<A | B> & { expected: string }): Node<A | B> {
  const { expected, ...rest } = meta;
  return {
    type: `${a.type} or ${b.type}`,
    ...rest,
    fields: b.fields ?? a.fields,
    check(value, path, ctx) {
      const probe: Ctx = { issues: [] };
      const ra = a.check(value, path, probe);
      if (ra !== undefined) return ra;
      if (b.fields && isPlainObject(value)) return b.check(value, path, ctx);
      const probeB: Ctx = { issues: [] };
      const rb = b.check(value, path, probeB);
      if (rb !== undefined) return rb;
      return fail(ctx, path, expected, value);
    },
  };
}

export function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function join(path: string, key: string): string {
  return path ? `${path}.${pathKey(key)}` : pathKey(key);
}
