/**
 * A tiny closed-schema language: each node validates a JSON value, fills defaults, and describes
 * itself for the reference page (docs/schema.md). One definition drives validation and docs.
 */
import { LONE_SURROGATE, LONE_SURROGATE_TEXT } from "./grammar.js";

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
  if (typeof value === "number" && !Number.isFinite(value)) return String(value);
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

/** An integer in [min, max]; `unit` (e.g. "MiB") is said in the type and in the message. */
export function int(min: number, max: number, meta: Meta<number> & { unit?: string }): Node<number> {
  const { unit, ...rest } = meta;
  const range = `${min}–${max}${unit ? ` ${unit}` : ""}`;
  const expected = `an integer from ${min} to ${max}${unit ? ` (${unit})` : ""}`;
  return leaf<number>(`integer ${range}`, expected, rest, (v) => Number.isInteger(v) && (v as number) >= min && (v as number) <= max);
}

/** A string whose problems `problem` names: null when it is fine, else what it must be instead.
 * `expected` is said of a value that is not a string at all. Lone surrogates are refused first. */
export function checkedStr(type: string, expected: string, problem: (s: string) => string | null, meta: Meta<string>): Node<string> {
  return {
    type: `string: ${type}`,
    ...meta,
    check(value, path, ctx) {
      if (typeof value !== "string") return fail(ctx, path, expected, value);
      const p = LONE_SURROGATE.test(value) ? LONE_SURROGATE_TEXT : problem(value);
      return p === null ? value : fail(ctx, path, p, value);
    },
  };
}

/** A string matching `pattern`; `expected` says in words what that is. */
export function str(pattern: RegExp, expected: string, meta: Meta<string>): Node<string> {
  return checkedStr(expected, expected, (s) => (pattern.test(s) ? null : expected), meta);
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
        // A bad name is reported, and its value checked all the same: every issue in one run.
        if (!keyPattern.test(k)) {
          ctx.issues.push({ path: at, message: `name ${describe(k)} is not ${keyExpected}` });
          okAll = false;
        }
        const r = item.check(value[k], at, ctx);
        if (r === undefined) okAll = false;
        else setOwn(out, k, r);
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
          const near = closest(k, names);
          ctx.issues.push({ path: join(path, k), message: `unknown option${near === null ? "" : `; did you mean \`${near}\`?`} (known: ${names.join(", ")})` });
          okAll = false;
        }
      }
      const out: Record<string, unknown> = {};
      for (const k of names) {
        const node = fields[k]!;
        const at = join(path, k);
        if (!Object.hasOwn(value, k)) {
          if (node.default !== undefined) out[k] = structuredClone(node.default);
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
 * the two together accept, for the message when neither does; a value `isB` picks out (by default:
 * an object, when `b` is one) that `a` refuses gets `b`'s own, more precise, message. */
export function either<A, B>(a: Node<A>, b: Node<B>, meta: Meta<A | B> & { expected: string; isB?: (v: unknown) => boolean }): Node<A | B> {
  const { expected, isB = (v: unknown) => b.fields !== undefined && isPlainObject(v), ...rest } = meta;
  return {
    type: `${a.type} or ${b.type}`,
    ...rest,
    fields: b.fields ?? a.fields,
    check(value, path, ctx) {
      const probe: Ctx = { issues: [] };
      const ra = a.check(value, path, probe);
      if (ra !== undefined) return ra;
      if (isB(value)) return b.check(value, path, ctx);
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

/** `o[k] = v` as an own property, even for `k` = "__proto__" (which plain assignment would turn into
 * the object's prototype): configuration keys are data, whatever their name. */
export function setOwn<T>(o: Record<string, T>, k: string, v: T): void {
  Object.defineProperty(o, k, { value: v, enumerable: true, writable: true, configurable: true });
}

/** The candidate nearest to `word` by edit distance, when it is near enough to be a likely typo. */
export function closest(word: string, candidates: readonly string[]): string | null {
  let best: string | null = null;
  let bestDistance = Infinity;
  for (const c of candidates) {
    const d = editDistance(word.toLowerCase(), c.toLowerCase());
    if (d < bestDistance) [best, bestDistance] = [c, d];
  }
  return best !== null && bestDistance <= Math.max(1, Math.floor(Math.min(word.length, best.length) / 3)) ? best : null;
}

/** Levenshtein distance, with a swap of two neighbours counting as one edit (`memroy`). */
function editDistance(a: string, b: string): number {
  if (Math.abs(a.length - b.length) > 3) return Infinity;
  const d = Array.from({ length: a.length + 1 }, (_, i) => Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)));
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      d[i]![j] = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) d[i]![j] = Math.min(d[i]![j]!, d[i - 2]![j - 2]! + 1);
    }
  }
  return d[a.length]![b.length]!;
}

function join(path: string, key: string): string {
  return path ? `${path}.${pathKey(key)}` : pathKey(key);
}
