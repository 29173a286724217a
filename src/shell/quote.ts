/**
 * The one place each target's quoting lives. A command line stays an argv array (`Argv`) until
 * it is written into a script (POSIX shell) or a unit file (systemd Exec*=); these functions are
 * the only way it becomes text.
 */
export type Argv = readonly string[];
/** An argv grouped into lines for people reading a script; `lines.flat()` is the argv. */
export type ArgvLines = readonly Argv[];

const SHELL_SAFE = /^[A-Za-z0-9_@%+=:,./-]+$/;

/** Quote one word for bash/POSIX sh. Safe words stay bare so generated scripts stay readable. */
export function shellQuote(word: string): string {
  if (word.includes("\0")) throw new Error("a shell word cannot contain a NUL byte");
  if (SHELL_SAFE.test(word)) return word;
  return `'${word.replace(/'/g, `'\\''`)}'`;
}

export function shellJoin(argv: Argv): string {
  return argv.map(shellQuote).join(" ");
}

/** A long command as shell text, one group per line, continued with backslashes. */
export function shellLines(lines: ArgvLines): string {
  return lines.map(shellJoin).join(" \\\n  ");
}

const SYSTEMD_SAFE = /^[A-Za-z0-9_@+=:,./-]+$/;

/**
 * Quote one word of a systemd Exec*= command line (systemd.service(5) "Command lines").
 * `%` is doubled (specifiers) and `$` is doubled (environment expansion) in every word; words
 * with anything else unusual are double-quoted with C-style escapes.
 */
export function systemdExecWord(word: string): string {
  if (word.includes("\0")) throw new Error("a systemd command-line word cannot contain a NUL byte");
  const escaped = word.replace(/%/g, "%%").replace(/\$/g, "$$$$");
  if (SYSTEMD_SAFE.test(escaped) && escaped.length > 0) return escaped;
  const inner = escaped.replace(/[\\"\n\t\r]/g, (c) => ({ "\\": "\\\\", '"': '\\"', "\n": "\\n", "\t": "\\t", "\r": "\\r" })[c]!);
  return `"${inner}"`;
}

export function systemdExec(argv: Argv): string {
  if (argv.length === 0) throw new Error("empty command line");
  if (!argv[0]!.startsWith("/")) throw new Error(`command must be an absolute path, got ${argv[0]}`);
  return argv.map(systemdExecWord).join(" ");
}

/** A crosvm (serde_keyvalue) string value: bare when unambiguous, else double-quoted with \" and \\ escaped. */
export function crosvmKvString(value: string): string {
  const bare = /^[A-Za-z0-9_./:@+-]+$/.test(value) && !/^(true|false|[0-9-])/.test(value);
  return bare ? value : `"${value.replace(/[\\"]/g, "\\$&")}"`;
}

export type KvValue = string | number | boolean;

/** Render `key=value,…` pairs for crosvm; order is the caller's (callers pass a fixed order). */
export function crosvmKv(pairs: ReadonlyArray<readonly [string, KvValue]>): string {
  return pairs
    .map(([k, v]) => (typeof v === "string" ? `${k}=${crosvmKvString(v)}` : `${k}=${String(v)}`))
    .join(",");
}
