/**
 * A checker of crosvm command lines against upstream's CLI description (test/contract/vmm/crosvm-cli.json,
 * extracted from crosvm HEAD; see test/contract/vmm/README.md). It parses an argv the way crosvm does:
 *
 *   1. `prepare_argh_args()` (src/main.rs): rewrites (`--host_ip`, `-h`), then every element that starts with
 *      `-` (and is not just `-`) is split at its first `=` (parsing_rules.equals_split);
 *   2. argh: global options (CrosvmCmdlineArgs) before the subcommand, the subcommand path (`run`,
 *      `device gpu`, `usb attach`, ...), then that command's options, switches and positionals;
 *   3. each value by its parser: serde_keyvalue structs (key_value_structs), `true|false`, integers, the JSON
 *      of `device gpu --params`, `SharedDir`'s colon syntax.
 *
 * `checkCrosvmArgv` returns every problem found (empty = accepted). The serde_keyvalue tokenizer is exported
 * for round-trip tests of the generator's quoting (`crosvmKvString`).
 */
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { ROOT } from "../support/harness.js";

export type Arch = "linux-x86_64" | "linux-aarch64";

export interface CliOption {
  readonly name: string;
  readonly kind: "option" | "switch" | "positional";
  readonly repeated: boolean;
  readonly value: string | null;
  readonly short?: string;
  readonly aliases?: readonly string[];
  readonly available?: Readonly<Record<string, boolean>>;
  readonly deprecated?: boolean;
  readonly deprecation_note?: string;
  readonly runtime_deprecation_warning?: { readonly message?: string };
  readonly hidden?: boolean;
  readonly parser?: string;
  readonly from_str_fn?: string;
  readonly rust_type?: string;
  readonly source?: string;
}

export interface CliCommand {
  readonly options: readonly CliOption[];
  readonly positional: readonly CliOption[];
  readonly subcommands?: readonly string[];
  readonly available?: Readonly<Record<string, boolean>>;
}

export interface KvKey {
  readonly name: string;
  readonly type?: string;
  readonly aliases?: readonly string[];
  readonly required?: boolean;
  readonly flag_form?: boolean;
  readonly flatten?: boolean;
  readonly available?: Readonly<Record<string, boolean>>;
  readonly with?: string;
  readonly values?: readonly string[];
}

export interface KvVariant {
  readonly name: string;
  readonly rust_variant?: string;
  readonly shape?: string;
  readonly aliases?: readonly string[];
  readonly keys?: readonly KvKey[];
  readonly available?: Readonly<Record<string, boolean>>;
}

export interface KvStruct {
  readonly kind: string;
  readonly keys?: readonly KvKey[];
  readonly variants?: readonly KvVariant[];
  readonly positional_first_key?: string | null;
  readonly serde_container?: Readonly<Record<string, unknown>>;
  readonly values?: unknown;
  readonly defined_in?: string;
}

export interface CrosvmCli {
  readonly parsing_rules: {
    readonly argv_rewrites: ReadonlyArray<{ readonly from: string; readonly to: string }>;
    readonly bool_valued_options: ReadonlyArray<{ readonly subcommand: string; readonly name: string }>;
  };
  readonly global_options: readonly CliOption[];
  readonly subcommands: Readonly<Record<string, CliCommand>>;
  readonly key_value_structs: Readonly<Record<string, KvStruct>>;
}

/** Upstream's CLI and API definitions, kept in the repository (test/contract/vmm/README.md). */
export const VMM_DIR = join(ROOT, "test", "contract", "vmm");

/**
 * The upstream data lives beside the repository, not in it; where it is absent (the Nix build
 * sandbox builds from the repository alone) a test file that needs it says so and runs nothing.
 */
export function loadCrosvmCli(): CrosvmCli {
  if (!existsSync(join(VMM_DIR, "crosvm-cli.json"))) {
    console.log(`SKIP: ${VMM_DIR} is absent; the crosvm contract checks need it`);
    process.exit(0);
  }
  return JSON.parse(readFileSync(join(VMM_DIR, "crosvm-cli.json"), "utf8")) as CrosvmCli;
}

// ------------------------------------------------------------------------------------------------
// serde_keyvalue (serde_keyvalue/src/key_values.rs): the tokenizer

/** One value as serde_keyvalue's deserializer sees it before it knows the target type. */
export type KvToken =
  /** `key` without `=`: a bool flag (`console`), true. */
  | { readonly kind: "flag" }
  /** `"..."` (with `\"` and `\\` unescaped) or `'...'` (no escapes). */
  | { readonly kind: "quoted"; readonly text: string; readonly quote: '"' | "'" }
  /** An unquoted run: up to the next `,` or `]`; cannot contain `"` `'` `[`; never empty. */
  | { readonly kind: "bare"; readonly text: string }
  /** `[...]`, brackets balanced outside quotes; `raw` is the text between the outer brackets. */
  | { readonly kind: "list"; readonly raw: string };

export interface KvPair {
  /** The key as written, or null when it was left out (the implicit first key). */
  readonly key: string | null;
  readonly value: KvToken;
}

export class KvSyntaxError extends Error {
  constructor(
    message: string,
    readonly pos: number,
  ) {
    super(`${message} at position ${pos}`);
  }
}

/** any_identifier: an ASCII alphanumeric or `_`, then alphanumerics, `_` or `-` (may start with a digit). */
const IDENTIFIER = /^[A-Za-z0-9_][A-Za-z0-9_-]*/;
const isSeparator = (c: string | undefined) => c === undefined || c === "," || c === "]";

/**
 * Scan one value at `pos` (the text after `=`): a double-quoted string (only `\"` and `\\` escapes), a
 * single-quoted string (no escapes), a bracketed list, or an unquoted run. The value must be followed by
 * `,`, `]` or the end, as serde_keyvalue's `parse_string`/`confirm_separator` require.
 */
export function scanKvValue(s: string, pos: number): { token: KvToken; end: number } {
  const c = s[pos];
  let token: KvToken;
  let i = pos;
  if (c === '"' || c === "'") {
    const { text, end } = scanQuoted(s, pos);
    token = { kind: "quoted", text, quote: c };
    i = end;
  } else if (c === "[") {
    let depth = 0;
    for (;;) {
      const d = s[i];
      if (d === undefined) throw new KvSyntaxError("expected ']'", i);
      if (d === '"' || d === "'") {
        i = scanQuoted(s, i).end;
        continue;
      }
      if (d === "[") depth++;
      if (d === "]" && --depth === 0) break;
      i++;
    }
    token = { kind: "list", raw: s.slice(pos + 1, i) };
    i++;
  } else {
    while (i < s.length && !",\"'[]".includes(s[i]!)) i++;
    if (i === pos) throw new KvSyntaxError("expected a string", pos);
    token = { kind: "bare", text: s.slice(pos, i) };
  }
  if (!isSeparator(s[i])) throw new KvSyntaxError(`" and ' can only be used in quoted strings (found ${JSON.stringify(s[i])})`, i);
  return { token, end: i };
}

function scanQuoted(s: string, pos: number): { text: string; end: number } {
  const q = s[pos]!;
  let i = pos + 1;
  let text = "";
  for (;;) {
    const c = s[i];
    if (c === undefined) throw new KvSyntaxError(`unterminated ${q}-quoted string`, pos);
    if (c === q) return { text, end: i + 1 };
    if (q === '"' && c === "\\") {
      const n = s[i + 1];
      if (n !== '"' && n !== "\\") throw new KvSyntaxError(`only \\" and \\\\ may be escaped in a double-quoted string, got \\${n ?? ""}`, i);
      text += n;
      i += 2;
      continue;
    }
    text += c;
    i++;
  }
}

export interface TokenizeOptions {
  /** Field names of the struct (serde's FIELDS): decides whether a leading identifier is a key. */
  readonly fields?: readonly string[];
  /** The struct's first field, when the struct allows it to be given without `key=`. */
  readonly firstKey?: string | null;
}

/**
 * Split a serde_keyvalue string into key/value pairs the way `from_key_values` walks it: the implicit first
 * key (key_values.rs deserialize_struct), identifiers as keys, `=` or a bare flag, one value, then `,` or the
 * end. Throws KvSyntaxError where crosvm would fail to parse, whatever the target type.
 */
export function tokenizeKeyValues(s: string, opts: TokenizeOptions = {}): KvPair[] {
  const pairs: KvPair[] = [];
  let implicit = false;
  if (opts.firstKey) {
    const m = IDENTIFIER.exec(s);
    implicit = m ? s[m[0].length] !== "=" && !(opts.fields ?? []).includes(m[0]) : true;
  }
  let pos = 0;
  while (pos < s.length && s[pos] !== "]") {
    let key: string | null = null;
    let hasEqual = true;
    if (implicit) {
      implicit = false;
    } else {
      const m = IDENTIFIER.exec(s.slice(pos));
      if (!m) throw new KvSyntaxError("expected an identifier", pos);
      key = m[0];
      pos += key.length;
      if (s[pos] === "=") pos++;
      else if (isSeparator(s[pos])) hasEqual = false;
      else throw new KvSyntaxError("expected '='", pos);
    }
    if (hasEqual) {
      const { token, end } = scanKvValue(s, pos);
      pairs.push({ key, value: token });
      pos = end;
    } else {
      pairs.push({ key, value: { kind: "flag" } });
    }
    if (s[pos] === ",") pos++;
    else if (!isSeparator(s[pos])) throw new KvSyntaxError("expected ','", pos);
  }
  if (pos < s.length) throw new KvSyntaxError("remaining characters in input", pos);
  return pairs;
}

// ------------------------------------------------------------------------------------------------
// Types of values

const INT_RANGES: Readonly<Record<string, readonly [bigint, bigint]>> = Object.freeze({
  u8: [0n, 255n],
  u16: [0n, 65535n],
  u32: [0n, 4294967295n],
  u64: [0n, 18446744073709551615n],
  usize: [0n, 18446744073709551615n],
  i8: [-128n, 127n],
  i16: [-32768n, 32767n],
  i32: [-2147483648n, 2147483647n],
  i64: [-9223372036854775808n, 9223372036854775807n],
  isize: [-9223372036854775808n, 9223372036854775807n],
  RawDescriptor: [-2147483648n, 2147483647n],
  "libc::uid_t": [0n, 4294967295n],
});
const isInt = (t: string) => Object.hasOwn(INT_RANGES, t);

const STRING_TYPES = new Set(["String", "PathBuf", "std::path::PathBuf", "MacAddress", "PciAddress", "Ipv4Addr", "Uuid", "[u8; DISK_ID_LEN]"]);

const stripOption = (t: string) => {
  const m = /^Option<(.*)>$/.exec(t.trim());
  return m ? m[1]!.trim() : t.trim();
};
const lastSegment = (t: string) => t.replace(/^.*::/, "");

/** serde_keyvalue's any_number: optional `-`, optional 0x/0o/0b, ASCII alphanumerics, then from_str_radix. */
function kvNumber(text: string): bigint | null {
  const m = /^(-?)(0x|0o|0b)?([A-Za-z0-9]+)$/.exec(text);
  if (!m) return null;
  const radix = m[2] === "0x" ? 16 : m[2] === "0o" ? 8 : m[2] === "0b" ? 2 : 10;
  const digits = m[3]!.toLowerCase();
  const alphabet = "0123456789abcdefghijklmnopqrstuvwxyz".slice(0, radix);
  if (![...digits].every((d) => alphabet.includes(d))) return null;
  let n = 0n;
  for (const d of digits) n = n * BigInt(radix) + BigInt(alphabet.indexOf(d));
  return m[1] ? -n : n;
}

const inRange = (n: bigint, t: string) => n >= INT_RANGES[t]![0] && n <= INT_RANGES[t]![1];

/** Rust's `FromStr` for integers (argh scalars): optional sign (`-` only for signed), decimal digits. */
function rustIntFromStr(text: string, t: string): boolean {
  const m = /^([+-]?)([0-9]+)$/.exec(text);
  if (!m || !isInt(t)) return false;
  const n = m[1] === "-" ? -BigInt(m[2]!) : BigInt(m[2]!);
  return inRange(n, t);
}

/** Unit-variant names (and aliases) of an enum in key_value_structs, or null when it is not such an enum. */
function enumValues(cli: CrosvmCli, type: string, arch: Arch): string[] | null {
  const ent = cli.key_value_structs[lastSegment(stripOption(type))];
  if (!ent || ent.kind !== "enum" || ent.values !== undefined || !ent.variants) return null;
  if (!ent.variants.every((v) => v.shape === "unit")) return null;
  return ent.variants.filter((v) => v.available?.[arch] !== false).flatMap((v) => [v.name, ...(v.aliases ?? [])]);
}

/** A problem with `token` as a value of Rust type `type`, or null. */
function checkTypedValue(cli: CrosvmCli, key: KvKey, token: KvToken, arch: Arch): string | null {
  const type = key.type ?? "";
  const base = stripOption(type);
  const show = token.kind === "flag" ? "(no value)" : token.kind === "list" ? `[${token.raw}]` : JSON.stringify(token.text);
  if (base === "bool") {
    if (token.kind === "flag" || (token.kind === "bare" && (token.text === "true" || token.text === "false"))) return null;
    return `\`${key.name}\` is a bool: give it as \`${key.name}\` or \`${key.name}=true|false\`, got ${show}`;
  }
  if (token.kind === "flag") return `\`${key.name}\` (${type}) needs a value`;
  if (key.with) return null; // custom deserializer (e.g. GpuParameters' context-types): any well-formed token
  if (isInt(base)) {
    const n = token.kind === "bare" ? kvNumber(token.text) : null;
    if (n === null || !inRange(n, base)) return `\`${key.name}\` needs an unquoted integer of type ${base}, got ${show}`;
    return null;
  }
  const ev = enumValues(cli, type, arch);
  if (ev) {
    if (token.kind !== "bare" || !ev.includes(token.text)) return `\`${key.name}\` must be one of ${ev.join(", ")} (unquoted), got ${show}`;
    return null;
  }
  if (STRING_TYPES.has(base)) {
    if (token.kind === "list") return `\`${key.name}\` (${type}) is a string, got a list ${show}`;
    if (base === "[u8; DISK_ID_LEN]" && Buffer.byteLength(token.text) > 20) return `\`${key.name}\` is at most 20 bytes, got ${show}`;
    return null;
  }
  if (/^(Vec<|\[|\()/.test(base) || cli.key_value_structs[lastSegment(base)]?.kind === "struct") {
    if (token.kind !== "list") return `\`${key.name}\` (${type}) needs a [...] value, got ${show}`;
  }
  return null;
}

/** What serde_keyvalue's deserialize_any makes of an untyped value (used through #[serde(flatten)]). */
function guessKind(token: KvToken): "bool" | "int" | "string" | "seq" | { error: string } {
  if (token.kind === "flag") return "bool";
  if (token.kind === "list") return "seq";
  if (token.kind === "quoted") return "string";
  const n = kvNumber(token.text);
  if (n !== null && n >= INT_RANGES.i64![0] && n <= INT_RANGES.u64![1]) return "int";
  if (token.text.startsWith("true") || token.text.startsWith("false")) {
    return token.text === "true" || token.text === "false" ? "bool" : { error: `${JSON.stringify(token.text)} starts with true/false, so it is read as a bool; quote it` };
  }
  return "string";
}

function checkGuessedValue(key: KvKey, token: KvToken): string | null {
  const kind = guessKind(token);
  if (typeof kind === "object") return `\`${key.name}\`: ${kind.error}`;
  const base = stripOption(key.type ?? "");
  const want = base === "bool" ? "bool" : isInt(base) ? "int" : STRING_TYPES.has(base) ? "string" : null;
  if (want && want !== kind) {
    const text = token.kind === "bare" || token.kind === "quoted" ? JSON.stringify(token.text) : token.kind;
    return `\`${key.name}\` (${key.type}) is type-guessed through #[serde(flatten)] as ${kind} from ${text}${want === "string" ? "; quote it" : ""}`;
  }
  if (want === "int" && token.kind === "bare" && !inRange(kvNumber(token.text)!, base)) return `\`${key.name}\`: ${token.text} does not fit ${base}`;
  return null;
}

// ------------------------------------------------------------------------------------------------
// serde_keyvalue structs

const keyNames = (k: KvKey) => [k.name, ...(k.aliases ?? [])];

/** Problems of `value` parsed as the key=value struct `structName` (empty = accepted). */
export function checkKeyValue(structName: string, value: string, cli: CrosvmCli, arch: Arch = "linux-x86_64"): string[] {
  const ent = cli.key_value_structs[structName];
  if (!ent || !ent.keys) return [`no key=value description of ${structName}`];
  const own = ent.keys.filter((k) => !k.flatten);
  const flattened = ent.keys.filter((k) => k.flatten);
  const fields = own.flatMap(keyNames);
  const firstKey = flattened.length ? null : (ent.positional_first_key ?? null);
  let pairs: KvPair[];
  try {
    pairs = tokenizeKeyValues(value, { fields, firstKey });
  } catch (e) {
    return [`${structName} ${JSON.stringify(value)}: ${(e as Error).message}`];
  }
  const problems: string[] = [];
  const seen = new Map<string, string>();
  const leftovers: Array<{ key: string; value: KvToken }> = [];
  for (const p of pairs) {
    const written = p.key ?? firstKey!;
    const k = own.find((x) => keyNames(x).includes(written));
    if (!k) {
      leftovers.push({ key: written, value: p.value });
      continue;
    }
    const prev = seen.get(k.name);
    if (prev !== undefined) problems.push(`${structName}: duplicate field \`${k.name}\` (as \`${prev}\` and \`${written}\`)`);
    seen.set(k.name, written);
    if (k.available?.[arch] === false) problems.push(`${structName}: key \`${written}\` is not available on ${arch}`);
    const bad = checkTypedValue(cli, k, p.value, arch);
    if (bad) problems.push(`${structName}: ${bad}`);
  }
  if (flattened.length) {
    problems.push(...checkFlattened(cli, structName, flattened, leftovers));
  } else {
    for (const l of leftovers) problems.push(`${structName}: unknown key \`${l.key}\` (valid: ${[...fields].sort().join(", ")})`);
  }
  const isDefault = ent.serde_container?.["default"] === true;
  if (!isDefault) for (const k of own) if (k.required && !seen.has(k.name)) problems.push(`${structName}: missing required key \`${k.name}\``);
  return problems;
}

/** Keys of flattened untagged enums (NetParametersMode): one variant must take exactly these keys. */
function checkFlattened(cli: CrosvmCli, structName: string, flattened: readonly KvKey[], leftovers: ReadonlyArray<{ key: string; value: KvToken }>): string[] {
  const problems: string[] = [];
  const dup = leftovers.map((l) => l.key).filter((k, i, a) => a.indexOf(k) !== i);
  for (const d of new Set(dup)) problems.push(`${structName}: duplicate field \`${d}\``);
  for (const f of flattened) {
    const en = cli.key_value_structs[lastSegment(stripOption(f.type ?? ""))];
    const variants = (en?.variants ?? []).filter((v) => v.shape === "struct");
    const fits = variants.filter((v) => {
      const keys = v.keys ?? [];
      const names = keys.flatMap(keyNames);
      return leftovers.every((l) => names.includes(l.key)) && keys.every((k) => !k.required || leftovers.some((l) => keyNames(k).includes(l.key)));
    });
    if (fits.length === 0) {
      const all = [...new Set([...variants.flatMap((v) => (v.keys ?? []).flatMap(keyNames))])].sort();
      problems.push(
        `${structName}: keys ${JSON.stringify(leftovers.map((l) => l.key))} match no variant of ${f.type} (variants: ${variants.map((v) => `{${(v.keys ?? []).map((k) => k.name).join(", ")}}`).join(" ")}; keys: ${all.join(", ")})`,
      );
      continue;
    }
    // Untagged: the first variant that deserializes wins; report the first one's type problems if none does.
    const perVariant = fits.map((v) => leftovers.flatMap((l) => checkGuessedValue((v.keys ?? []).find((k) => keyNames(k).includes(l.key))!, l.value) ?? []));
    if (perVariant.every((p) => p.length > 0)) problems.push(...perVariant[0]!.map((p) => `${structName}: ${p}`));
  }
  return problems;
}

// ------------------------------------------------------------------------------------------------
// Other value parsers

/** GPU context-type names known to rutabaga (README: taken from the last in-tree rutabaga_gfx). */
export const RUTABAGA_CONTEXT_TYPES = ["virgl", "virgl2", "gfxstream-vulkan", "venus", "cross-domain", "drm", "gfxstream-magma", "gfxstream-gles", "gfxstream-composer"];

/** `device gpu --params`: serde_json into GpuParameters (deny_unknown_fields, kebab-case). */
export function checkGpuParamsJson(value: string, cli: CrosvmCli): string[] {
  let obj: unknown;
  try {
    obj = JSON.parse(value);
  } catch (e) {
    return [`--params is not JSON: ${(e as Error).message}`];
  }
  if (typeof obj !== "object" || obj === null || Array.isArray(obj)) return [`--params must be a JSON object, got ${value}`];
  const keys = cli.key_value_structs["GpuParameters"]?.keys ?? [];
  const problems: string[] = [];
  for (const [k, v] of Object.entries(obj)) {
    const key = keys.find((x) => keyNames(x).includes(k));
    if (!key) {
      problems.push(`--params: unknown JSON key \`${k}\` (GpuParameters has deny_unknown_fields; valid: ${keys.flatMap(keyNames).sort().join(", ")})`);
      continue;
    }
    const base = stripOption(key.type ?? "");
    if (key.name === "context-types") {
      if (typeof v !== "string") problems.push(`--params: context-types must be a ':'-separated string, got ${JSON.stringify(v)}`);
      else for (const n of v.split(":")) if (!RUTABAGA_CONTEXT_TYPES.includes(n)) problems.push(`--params: context type ${JSON.stringify(n)} is unknown to rutabaga (silently dropped)`);
    } else if (base === "bool" && typeof v !== "boolean") problems.push(`--params: \`${k}\` must be JSON true/false, got ${JSON.stringify(v)}`);
    else if (isInt(base) && !(typeof v === "number" && Number.isInteger(v) && inRange(BigInt(v), base))) problems.push(`--params: \`${k}\` must be a JSON integer (${base}), got ${JSON.stringify(v)}`);
    else if (STRING_TYPES.has(base) && typeof v !== "string") problems.push(`--params: \`${k}\` must be a JSON string, got ${JSON.stringify(v)}`);
    else {
      const ev = enumValues(cli, key.type ?? "", "linux-x86_64");
      if (ev && !(typeof v === "string" && ev.includes(v))) problems.push(`--params: \`${k}\` must be one of ${ev.join(", ")}, got ${JSON.stringify(v)}`);
    }
  }
  return problems;
}

/** `--shared-dir SRC:TAG[:key=value...]` (custom FromStr, colon-separated). */
function checkSharedDir(value: string, cli: CrosvmCli): string[] {
  const parts = value.split(":");
  if (parts.length < 2 || !parts[0] || !parts[1]) return [`--shared-dir ${JSON.stringify(value)}: expected SRC:TAG[:key=value...]`];
  const typeKey = cli.key_value_structs["SharedDir"]?.keys?.find((k) => k.name === "type");
  const problems: string[] = [];
  for (const p of parts.slice(2)) {
    const [k, v] = p.split("=", 2);
    if (v === undefined) problems.push(`--shared-dir: ${JSON.stringify(p)} is not key=value`);
    else if (k === "type" && typeKey?.values && !typeKey.values.includes(v)) problems.push(`--shared-dir: type=${v} is not one of ${typeKey.values.join(", ")}`);
  }
  return problems;
}

function scalarKind(o: CliOption): string {
  return (o.parser ?? "").replace(/^FromArgValue\/FromStr scalar: /, "");
}

/** Problems with `value` as the value of option (or positional) `o`. */
function checkOptionValue(o: CliOption, value: string, cli: CrosvmCli, arch: Arch, boolValued: boolean): string[] {
  const where = `\`${o.name} ${value}\``;
  if (o.from_str_fn === "gpu_parameters_from_str") return checkGpuParamsJson(value, cli);
  if (boolValued || o.value === "bool") return value === "true" || value === "false" ? [] : [`${where}: value must be true or false`];
  const parser = o.parser ?? "";
  const struct = o.value ? cli.key_value_structs[o.value] : undefined;
  if (parser.startsWith("serde_keyvalue") && struct?.keys) return checkKeyValue(o.value!, value, cli, arch).map((p) => `${where}: ${p}`);
  if (o.value === "SharedDir") return checkSharedDir(value, cli);
  const kind = scalarKind(o);
  if (kind.startsWith("uint") || kind.startsWith("int")) return rustIntFromStr(value, o.value ?? "") ? [] : [`${where}: not an integer of type ${o.value}`];
  if (kind === "dotted IPv4") return /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/.test(value) ? [] : [`${where}: not a dotted IPv4 address`];
  return [];
}

// ------------------------------------------------------------------------------------------------
// argv

export interface CheckOptions {
  readonly arch?: Arch;
  /** Accept deprecated options (the README's verdict table calls them valid). Default: deprecated is a problem. */
  readonly allowDeprecated?: boolean;
}

interface Arg {
  readonly text: string;
  /** This element came from the value half of a `--opt=value` split. */
  readonly fromEquals: boolean;
}

const isFlag = (a: string) => a.length > 1 && a.startsWith("-");

/** src/main.rs prepare_argh_args(). */
function prepareArghArgs(args: readonly string[], cli: CrosvmCli): Arg[] {
  const out: Arg[] = [];
  for (const a of args) {
    const rw = cli.parsing_rules.argv_rewrites.find((r) => r.from === a);
    if (rw) out.push({ text: rw.to, fromEquals: false });
    else if (isFlag(a) && a.includes("=")) {
      const i = a.indexOf("=");
      out.push({ text: a.slice(0, i), fromEquals: false }, { text: a.slice(i + 1), fromEquals: true });
    } else out.push({ text: a, fromEquals: false });
  }
  return out;
}

const findOption = (options: readonly CliOption[], name: string) => options.find((o) => o.name === name || o.short === name || (o.aliases ?? []).includes(name));

/**
 * Check an argv (argv[0] is the program) as crosvm would parse it, against the upstream description.
 * Returns every problem found; an empty list means the command line is accepted.
 */
export function checkCrosvmArgv(argv: readonly string[], cli: CrosvmCli, opts: CheckOptions = {}): string[] {
  const arch = opts.arch ?? "linux-x86_64";
  const problems: string[] = [];
  const args = prepareArghArgs(argv.slice(1), cli);
  let i = 0;

  /** Consume options of `options` at args[i]; returns when a non-flag is met. */
  const takeOptions = (cmd: string, options: readonly CliOption[], counts: Map<string, number>, stopAtUnknown: boolean): void => {
    while (i < args.length && isFlag(args[i]!.text) && args[i]!.text !== "--") {
      const a = args[i]!;
      const o = findOption(options, a.text);
      if (!o) {
        if (stopAtUnknown) return;
        if (a.text === "--help") problems.push(`\`--help\` prints help and exits`);
        else if (cmd && findOption(cli.global_options, a.text)) {
          problems.push(`\`${a.text}\` is a global option: it must come before the subcommand (\`crosvm ${a.text} ... ${cmd}\`)`);
        } else problems.push(`\`${a.text}\` is not an option of \`crosvm${cmd ? ` ${cmd}` : ""}\`${cmd ? "" : " (global options)"}`);
        i++;
        continue;
      }
      const what = `\`${a.text}\`${a.text !== o.name ? ` (${o.name})` : ""}`;
      if (o.available?.[arch] === false) problems.push(`${what} is not available on ${arch}`);
      if (o.deprecated && !opts.allowDeprecated) {
        problems.push(`${what} is deprecated${o.deprecation_note ? `: ${o.deprecation_note}` : o.runtime_deprecation_warning?.message ? `: ${o.runtime_deprecation_warning.message}` : ""}`);
      }
      const n = (counts.get(o.name) ?? 0) + 1;
      counts.set(o.name, n);
      if (o.kind === "switch") {
        if (args[i + 1]?.fromEquals) problems.push(`${what} is a switch and takes no value: \`${a.text}=${args[i + 1]!.text}\` passes ${JSON.stringify(args[i + 1]!.text)} as a positional argument`);
        i++;
        continue;
      }
      if (n === 2 && !o.repeated) problems.push(`${what} may be given only once (argh: duplicate values provided)`);
      const value = args[i + 1];
      if (value === undefined) {
        problems.push(`${what} needs a value`);
        i++;
        continue;
      }
      const boolValued = cli.parsing_rules.bool_valued_options.some((b) => b.name === o.name && b.subcommand === cmd);
      problems.push(...checkOptionValue(o, value.text, cli, arch, boolValued));
      i += 2;
    }
  };

  // Global options, then the subcommand path.
  takeOptions("", cli.global_options, new Map(), false);
  let path: string[] = [];
  for (;;) {
    const a = args[i];
    if (a === undefined) break;
    const cand = [...path, a.text].join(" ");
    if (!(cand in cli.subcommands)) break;
    path = [...path, a.text];
    i++;
    const sc = cli.subcommands[cand]!;
    if (sc.available?.[arch] === false) problems.push(`\`crosvm ${cand}\` is not available on ${arch}`);
    if (sc.subcommands?.length) takeOptions(cand, sc.options, new Map(), true);
    else break;
  }
  const cmd = path.join(" ");
  if (!cmd) {
    problems.push(args[i] === undefined ? "no subcommand" : `\`${args[i]!.text}\` is not a crosvm subcommand`);
    return problems;
  }
  const sc = cli.subcommands[cmd]!;
  if (sc.subcommands?.length) {
    problems.push(`\`crosvm ${cmd}\` needs a subcommand (${sc.subcommands.join(", ")})`);
    return problems;
  }
  const counts = new Map<string, number>();
  const positionals: Arg[] = [];
  let optionsEnded = false;
  while (i < args.length) {
    const a = args[i]!;
    if (!optionsEnded && a.text === "--") {
      optionsEnded = true;
      i++;
      continue;
    }
    if (!optionsEnded && isFlag(a.text)) {
      takeOptions(cmd, sc.options, counts, false);
      continue;
    }
    positionals.push(a);
    i++;
  }
  const want = sc.positional;
  positionals.forEach((p, k) => {
    const spec = want[k];
    if (!spec) problems.push(`stray positional ${JSON.stringify(p.text)}: \`crosvm ${cmd}\` takes ${want.length} positional argument(s) (${want.map((w) => w.name).join(" ") || "none"}); argh: Unrecognized argument`);
    else problems.push(...checkOptionValue(spec, p.text, cli, arch, false));
  });
  if (positionals.length < want.length) problems.push(`\`crosvm ${cmd}\` needs ${want.length} positional argument(s) (${want.map((w) => w.name).join(" ")}), got ${positionals.length}`);
  return problems;
}

// ------------------------------------------------------------------------------------------------
// systemd Exec*= command lines, to read the argv of a generated unit back (systemd.syntax(7) "Quoting",
// systemd.service(5) "Command lines"; src/core/load-fragment.c config_parse_exec, src/basic/extract-word.c,
// src/basic/escape.c cunescape_one, src/basic/env-util.c replace_env). Strict: anything systemd would
// warn about, ignore, or expand (an unknown escape, a specifier other than %%, an environment variable
// other than $$) is an error here, because a generated unit must never rely on it.

export interface SystemdCommand {
  /** The prefix characters of the first word (`-`, `@`, `:`, `+`, `!`, `!!`). */
  readonly prefixes: string;
  /** The file systemd executes: the first word after %-specifiers, never environment-expanded (execve(command->path, ...)). */
  readonly path: string;
  /** The argv the service manager executes (after unquoting, %% and $$). */
  readonly argv: string[];
}

const SD_WHITESPACE = " \t\n\r";

/** cunescape_one: returns the decoded text and the number of characters consumed after the backslash. */
function cunescapeOne(s: string, i: number): { text: string; len: number } {
  const c = s[i];
  const simple: Record<string, string> = { a: "\x07", b: "\b", f: "\f", n: "\n", r: "\r", t: "\t", v: "\v", "\\": "\\", '"': '"', "'": "'", s: " " };
  if (c !== undefined && Object.hasOwn(simple, c)) return { text: simple[c]!, len: 1 };
  const hex = (n: number) => {
    const h = s.slice(i + 1, i + 1 + n);
    if (h.length !== n || !/^[0-9a-fA-F]+$/.test(h)) throw new Error(`bad \\${c} escape`);
    const v = parseInt(h, 16);
    if (v === 0) throw new Error("\\0 is not allowed");
    return v;
  };
  if (c === "x") {
    const v = hex(2);
    if (v >= 0x80) throw new Error("\\x escape of a non-ASCII byte");
    return { text: String.fromCodePoint(v), len: 3 };
  }
  if (c === "u") return { text: String.fromCodePoint(hex(4)), len: 5 };
  if (c === "U") return { text: String.fromCodePoint(hex(8)), len: 9 };
  if (c !== undefined && /[0-3]/.test(c) && /^[0-7]{2}$/.test(s.slice(i + 1, i + 3))) {
    const v = parseInt(s.slice(i, i + 3), 8);
    if (v === 0 || v >= 0x80) throw new Error("octal escape of NUL or a non-ASCII byte");
    return { text: String.fromCodePoint(v), len: 3 };
  }
  throw new Error(`unknown escape sequence \\${c ?? "(end)"}`);
}

/** extract_first_word(EXTRACT_UNQUOTE|EXTRACT_CUNESCAPE) on s from i: the word and where parsing continues. */
function extractFirstWord(s: string, i: number): { word: string; next: number } | null {
  while (i < s.length && SD_WHITESPACE.includes(s[i]!)) i++;
  if (i >= s.length) return null;
  let word = "";
  let quote: string | null = null;
  while (i < s.length) {
    const c = s[i]!;
    if (c === "\\") {
      if (i + 1 >= s.length) throw new Error("trailing backslash");
      const { text, len } = cunescapeOne(s, i + 1);
      word += text;
      i += 1 + len;
    } else if (quote) {
      if (c === quote) quote = null;
      else word += c;
      i++;
    } else if (c === "'" || c === '"') {
      quote = c;
      i++;
    } else if (SD_WHITESPACE.includes(c)) {
      break;
    } else {
      word += c;
      i++;
    }
  }
  if (quote) throw new Error("unbalanced quoting");
  while (i < s.length && SD_WHITESPACE.includes(s[i]!)) i++;
  return { word, next: i };
}

/** Specifier expansion where only %% is expected, and a template's instance (`%i`) as a word of its own. */
function specifiers(w: string): string {
  if (w === "%i") return w;
  return w.replace(/%(.?)/gs, (_, c: string) => {
    if (c === "%") return "%";
    throw new Error(`specifier %${c} would be expanded in ${JSON.stringify(w)}`);
  });
}

/**
 * replace_env_argv (env-util.c) with no variables wanted: a word that is `$NAME` would be replaced by the
 * variable's words, `${NAME}` by its value (both errors here); `$$` becomes `$`; any other `$` stays.
 */
function environment(w: string): string {
  if (w[0] === "$" && w.length > 1 && w[1] !== "{" && w[1] !== "$") throw new Error(`${JSON.stringify(w)} would be replaced by the words of an environment variable`);
  return w.replace(/\$(.?)/gs, (_, c: string) => {
    if (c === "$") return "$";
    if (c === "{") throw new Error(`\${...} would be an environment variable reference in ${JSON.stringify(w)}`);
    return `$${c}`;
  });
}

/** Parse the value of an Exec*= setting into the commands systemd runs (strict; throws on anything unexpected). */
export function parseSystemdExec(value: string): SystemdCommand[] {
  let p = value.replace(/^[ \t\n\r]+|[ \t\n\r]+$/g, "");
  const commands: SystemdCommand[] = [];
  let semicolon: boolean;
  do {
    semicolon = false;
    const first = extractFirstWord(p, 0);
    if (!first) break;
    p = p.slice(first.next);
    if (first.word === ";") {
      semicolon = true;
      continue;
    }
    let f = first.word;
    let prefixes = "";
    while (f && "-@:+!".includes(f[0]!) && !(f[0] === "!" && prefixes.includes("+"))) {
      prefixes += f[0];
      f = f.slice(1);
    }
    const path = specifiers(f);
    if (!path) throw new Error("empty executable path");
    if (/[\x00-\x1f\x7f\\"']/.test(path)) throw new Error(`executable name contains special characters: ${JSON.stringify(path)}`);
    if (path.endsWith("/") || !path.startsWith("/")) throw new Error(`not an absolute executable path: ${JSON.stringify(path)}`);
    const argv: string[] = prefixes.includes("@") ? [] : [path];
    while (p) {
      if (p[0] === ";" && (p.length === 1 || SD_WHITESPACE.includes(p[1]!))) {
        p = p.slice(1).replace(/^[ \t\n\r]+/, "");
        semicolon = true;
        break;
      }
      if (p[0] === "\\" && p[1] === ";" && (p.length === 2 || SD_WHITESPACE.includes(p[2]!))) {
        argv.push(";");
        p = p.slice(2).replace(/^[ \t\n\r]+/, "");
        continue;
      }
      const w = extractFirstWord(p, 0);
      if (!w) break;
      p = p.slice(w.next);
      argv.push(specifiers(w.word));
    }
    commands.push({ prefixes, path, argv: prefixes.includes(":") ? argv : argv.map(environment) });
  } while (semicolon);
  return commands;
}
