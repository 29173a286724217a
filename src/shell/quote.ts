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

/** Bare, or double-quoted with C-style escapes; `text` already has its `%` (and `$`) escaped. */
function systemdQuote(text: string): string {
  if (SYSTEMD_SAFE.test(text) && text.length > 0) return text;
  const inner = text.replace(/[\\"\n\t\r]/g, (c) => ({ "\\": "\\\\", '"': '\\"', "\n": "\\n", "\t": "\\t", "\r": "\\r" })[c]!);
  return `"${inner}"`;
}

/**
 * Quote one argument of a systemd Exec*= command line (systemd.service(5) "Command lines").
 * `%` is doubled (specifiers) and `$` is doubled (environment expansion); words with anything
 * else unusual are double-quoted with C-style escapes.
 */
export function systemdExecWord(word: string): string {
  if (word.includes("\0")) throw new Error("a systemd command-line word cannot contain a NUL byte");
  return systemdQuote(word.replace(/%/g, "%%").replace(/\$/g, "$$$$"));
}

/**
 * A whole Exec*= command line. The command (first word) gets `%` doubled but not `$`: systemd
 * expands specifiers in it, but execve()s it as written, without the `$$` -> `$` it applies to the
 * arguments (load-fragment.c config_parse_exec, execute.c). systemd refuses to run a command whose
 * path holds quotes, backslashes or control characters; no quoting can change that.
 */
export function systemdExec(argv: Argv): string {
  if (argv.length === 0) throw new Error("empty command line");
  const [command, ...args] = argv as [string, ...string[]];
  if (!command.startsWith("/")) throw new Error(`command must be an absolute path, got ${command}`);
  if (command.includes("\0")) throw new Error("a systemd command cannot contain a NUL byte");
  return [systemdQuote(command.replace(/%/g, "%%")), ...args.map(systemdExecWord)].join(" ");
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

/**
 * A qemu option value in QemuOpts syntax (`-drive`, `-device`, `-netdev`, `-chardev`, …):
 * `first,key=value,…`, where a comma inside a value is written twice (qemu-options.hx: "to
 * include a comma in a value, double it"). Keys are the caller's fixed names; `true`/`false`
 * become `on`/`off`. A value cannot start a new option this way, whatever it holds.
 */
export function qemuOpts(first: string | null, pairs: ReadonlyArray<readonly [string, KvValue]>): string {
  const esc = (v: string) => {
    if (v.includes("\0")) throw new Error("a qemu option value cannot contain a NUL byte");
    return v.replace(/,/g, ",,");
  };
  const words = pairs.map(([k, v]) => `${k}=${typeof v === "string" ? esc(v) : typeof v === "boolean" ? (v ? "on" : "off") : String(v)}`);
  return [...(first === null ? [] : [esc(first)]), ...words].join(",");
}

/**
 * A word inside a bash array literal `( … )`: as shellQuote, but a word with a comma is always
 * single-quoted, so `(a,b)` cannot read as a mistaken list separator (shellcheck SC2054).
 */
export function shellArrayWord(word: string): string {
  return word.includes(",") ? `'${word.replace(/'/g, `'\\''`)}'` : shellQuote(word);
}
