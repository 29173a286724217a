import { type Argv, systemdExec } from "../shell/quote.js";

/**
 * A systemd unit file as data: ordered sections, repeatable keys. Values are literal text;
 * `serialiseUnit` escapes `%` (specifiers) in them. A value built with `exec()` is a command line
 * quoted by the one systemd quoting function; `raw()` is text written as is (for `%i`).
 */
export type UnitValue = string | number | boolean | { exec: Argv; prefix?: string } | { raw: string };

export interface UnitEntry {
  readonly key: string;
  readonly value: UnitValue;
}

export interface UnitSection {
  readonly name: string;
  readonly entries: UnitEntry[];
}

export interface UnitFile {
  /** File name, e.g. `vmsilo-work-vm.service`. */
  readonly name: string;
  /** Where the unit's content comes from, written as a comment at the top. */
  readonly source: string;
  readonly sections: UnitSection[];
}

export const exec = (argv: Argv, prefix = ""): UnitValue => ({ exec: argv, prefix });
export const raw = (text: string): UnitValue => ({ raw: text });

export function unitFile(name: string, source: string): UnitFile {
  return { name, source, sections: [] };
}

/** Append `key=value` to `section` (created on first use), skipping undefined values. */
export function add(unit: UnitFile, section: string, key: string, ...values: Array<UnitValue | undefined>): void {
  let s = unit.sections.find((x) => x.name === section);
  if (!s) {
    s = { name: section, entries: [] };
    unit.sections.push(s);
  }
  for (const value of values) if (value !== undefined) s.entries.push({ key, value });
}

/** All values of `key` in `section`, as serialised text (what tests and readers see). */
export function values(unit: UnitFile, section: string, key: string): string[] {
  const s = unit.sections.find((x) => x.name === section);
  return s ? s.entries.filter((e) => e.key === key).map((e) => serialiseValue(e.value)) : [];
}

function serialiseValue(value: UnitValue): string {
  if (typeof value === "boolean") return value ? "yes" : "no";
  if (typeof value === "number") return String(value);
  if (typeof value === "string") {
    if (/[\n\r]/.test(value)) throw new Error(`unit value cannot contain a line break: ${JSON.stringify(value)}`);
    return value.replace(/%/g, "%%");
  }
  if ("raw" in value) return value.raw;
  return (value.prefix ?? "") + systemdExec(value.exec);
}

/** The unit as text, after `header` (comment lines without their `# `). */
export function serialiseUnit(unit: UnitFile, header: readonly string[]): string {
  const lines = header.map((l) => `# ${l}`);
  for (const section of unit.sections) {
    lines.push("", `[${section.name}]`);
    // Entries of one key stay together, at the place the key first appears, in insertion order.
    const keys = [...new Set(section.entries.map((e) => e.key))];
    for (const k of keys) for (const e of section.entries) if (e.key === k) lines.push(`${k}=${serialiseValue(e.value)}`);
  }
  return lines.join("\n") + "\n";
}

/** Parse unit text back into (section, key, value) triples; used by tests and the case harness. */
export function parseUnit(text: string): Array<{ section: string; key: string; value: string }> {
  const out: Array<{ section: string; key: string; value: string }> = [];
  let section = "";
  for (const line of text.split("\n")) {
    if (!line || line.startsWith("#") || line.startsWith(";")) continue;
    const m = /^\[(.+)\]$/.exec(line);
    if (m) {
      section = m[1]!;
      continue;
    }
    const eq = line.indexOf("=");
    if (eq > 0) out.push({ section, key: line.slice(0, eq), value: line.slice(eq + 1) });
  }
  return out;
}
