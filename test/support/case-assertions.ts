/**
 * The `## assert-…` lines of annotated cases (test/cases/README.md): parsed from a case file and
 * checked against one run of `vmsilo-gen render --dry-run`. Used by the JSON cases
 * (test/cases.test.ts) and the recipes' Nix cases (test/recipes.test.ts).
 */
import assert from "node:assert/strict";
import { isDeepStrictEqual } from "node:util";
import { parseUnit } from "../../src/systemd/unit.js";
import type { RunResult } from "./harness.js";

function words(line: string): string[] {
  const out: string[] = [];
  const re = /"((?:[^"\\]|\\.)*)"|(\S+)/g;
  for (let m; (m = re.exec(line)); ) out.push(m[1] !== undefined ? m[1].replace(/\\(.)/g, "$1") : m[2]!);
  return out;
}

/** The assertions of a case file's `## ` lines, each as its words. */
export function parseAssertions(text: string): string[][] {
  return text
    .split("\n")
    .filter((l) => l.startsWith("## "))
    .map((l) => {
      // `assert-json PATH POINTER JSON`: the JSON is the rest of the line, as written.
      const json = /^(!?assert-json)\s+(\S+)\s+(\S+)\s+(.+)$/.exec(l.slice(3));
      return json ? json.slice(1, 5) : words(l.slice(3));
    });
}

/** A case file without its assertion lines. */
export const caseBody = (text: string): string =>
  text
    .split("\n")
    .filter((l) => !l.startsWith("##"))
    .join("\n");

export function parseDryRun(stdout: string): Map<string, string> {
  const files = new Map<string, string>();
  const parts = stdout.split(/^---(.+)---$/m);
  for (let i = 1; i < parts.length; i += 2) files.set(parts[i]!, parts[i + 1]!.replace(/^\n/, ""));
  return files;
}

const contains = (hay: readonly string[], needle: readonly string[]) => hay.some((_, i) => needle.every((n, j) => hay[i + j] === n));

/** Checks every assertion against the run (exit status included), failing on the first that does not hold. */
export function checkAssertions(asserts: string[][], r: RunResult): void {
  assert.ok(asserts.length > 0, "a case needs at least one assertion");
  const expectFail = asserts.some(([a]) => a === "assert-failed");
  const report = () => `stderr:\n${r.stderr}\nstdout:\n${r.stdout.slice(0, 20000)}`;
  if (expectFail) assert.equal(r.status, 2, `expected exit 2\n${report()}`);
  else assert.equal(r.status, 0, `render failed\n${report()}`);
  const files = parseDryRun(r.stdout);
  const manifest = files.has("share/vmsilo/manifest.json") ? JSON.parse(files.get("share/vmsilo/manifest.json")!) : { vms: {} };
  for (const [name, ...args] of asserts) {
    const negate = name!.startsWith("!");
    const kind = negate ? name!.slice(1) : name!;
    let ok: boolean;
    let what: string;
    switch (kind) {
      case "assert-failed":
        continue;
      case "assert-stderr-contains":
        ok = r.stderr.includes(args[0]!);
        what = `stderr contains ${JSON.stringify(args[0])}\n${r.stderr}`;
        break;
      case "assert-argv": {
        const [vm, ...seq] = args;
        const argv: string[] = manifest.vms[vm!]?.launchArgv ?? [];
        ok = contains(argv, seq);
        what = `argv of ${vm} contains ${JSON.stringify(seq)}\nargv: ${JSON.stringify(argv, null, 1)}`;
        break;
      }
      case "assert-unit-key": {
        const [unit, section, key, value] = args;
        const path = [...files.keys()].find((p) => p.endsWith(`/systemd/system/${unit}`) || p.endsWith(`/systemd/user/${unit}`));
        const entries = path ? parseUnit(files.get(path)!) : [];
        ok = entries.some((e) => e.section === section && e.key === key && e.value === value);
        what = `${unit} [${section}] ${key}=${value}\n${path ? files.get(path) : "(no such unit)"}`;
        break;
      }
      case "assert-file":
        ok = files.has(args[0]!);
        what = `file ${args[0]} exists\nfiles: ${[...files.keys()].join("\n")}`;
        break;
      case "assert-json": {
        // A JSON file's value at an RFC 6901 pointer equals the given JSON.
        const [path, pointer, value] = args;
        let at: unknown = files.has(path!) ? JSON.parse(files.get(path!)!) : undefined;
        for (const part of pointer!.split("/").slice(1)) at = (at as Record<string, unknown> | undefined)?.[part.replace(/~1/g, "/").replace(/~0/g, "~")];
        ok = isDeepStrictEqual(at, JSON.parse(value!));
        what = `${path} at ${pointer} is ${value}, got ${JSON.stringify(at)}`;
        break;
      }
      case "assert-file-contains":
        ok = files.get(args[0]!)?.includes(args[1]!) ?? false;
        what = `${args[0]} contains ${JSON.stringify(args[1])}\n${files.get(args[0]!) ?? "(no such file)"}`;
        break;
      default:
        throw new Error(`unknown assertion ${name}`);
    }
    assert.equal(ok, !negate, `${negate ? "NOT " : ""}${what}`);
  }
}
