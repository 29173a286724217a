/**
 * User-facing text cites no internal document (SPEC, ORIGINAL, SECURITY-REVIEW, DESIGN.md) and none of
 * their labels (D9, E.3.7, §B5b, F4, S0:686): users do not have them, so the text says the fact itself.
 * Scanned: README.md, docs/ (docs/schema.md included), the NixOS module without its comments
 * (option descriptions, assertion and warning messages), templates/, every string literal of src/
 * (the schema's doc strings, error messages, text written into generated files; not the comments)
 * and the rendered trees of the examples.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { join, relative } from "node:path";
import ts from "typescript";
import { example, EXAMPLES, regularFiles, render, ROOT } from "../support/harness.js";

const LABEL = new RegExp(
  [
    String.raw`\b(?:SPEC|ORIGINAL|SECURITY-REVIEW)\b`, // the internal documents
    String.raw`\b(?:DESIGN|E2E|STYLE)\.md\b`,
    String.raw`§\s?\w+(?:\.\w+)*|§`, // their sections: §B5b, §E, §2
    String.raw`\b[A-G]\.\d+(?:\.\d+)*\b`, // ORIGINAL's sections: E.3.7, A.2.1
    String.raw`\b[BDF]\d{1,2}[ab]?\b`, // ORIGINAL's artifacts (B5b), SPEC's decisions (D9), findings (F4)
    String.raw`\bS[0-4]:\d+`, // seed line citations
  ].join("|"),
  "g",
);

/** The labels in `text`, in order. */
const labelsIn = (text: string): string[] => text.match(LABEL) ?? [];

/** One line of user-facing text and where it is (`file:line`). */
interface Line {
  where: string;
  text: string;
}

const linesOf = (where: string, text: string, first = 1): Line[] => text.split("\n").map((t, i) => ({ where: `${where}:${first + i}`, text: t }));

function filesUnder(dir: string, ext?: string): string[] {
  return readdirSync(join(ROOT, dir), { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile() && (ext === undefined || e.name.endsWith(ext)))
    .map((e) => relative(ROOT, join(e.parentPath, e.name)))
    .sort();
}

const fileLines = (path: string): Line[] => linesOf(path, readFileSync(join(ROOT, path), "utf8"));

/** A Nix line without its comment: whole-line `#` comments, and a ` #` after an even number of `"`. */
function nixCode(line: string): string {
  if (line.trimStart().startsWith("#")) return "";
  for (let i = line.indexOf(" #"); i !== -1; i = line.indexOf(" #", i + 1)) {
    if ((line.slice(0, i).match(/(?<!\\)"/g) ?? []).length % 2 === 0) return line.slice(0, i);
  }
  return line;
}

/** The text of every string literal and template part of a TypeScript file, where it starts. */
function tsStrings(path: string): Line[] {
  const source = ts.createSourceFile(path, readFileSync(join(ROOT, path), "utf8"), ts.ScriptTarget.Latest, true);
  const out: Line[] = [];
  const visit = (node: ts.Node) => {
    if (ts.isStringLiteral(node) || ts.isNoSubstitutionTemplateLiteral(node) || ts.isTemplateHead(node) || ts.isTemplateMiddle(node) || ts.isTemplateTail(node)) {
      out.push(...linesOf(path, node.text, source.getLineAndCharacterOfPosition(node.getStart(source)).line + 1));
    }
    node.forEachChild(visit);
  };
  visit(source);
  return out;
}

function userText(): Line[] {
  return [
    ...fileLines("README.md"),
    ...filesUnder("docs", ".md").flatMap(fileLines),
    ...filesUnder("nixos-module", ".nix").flatMap((p) => fileLines(p).map((l) => ({ ...l, text: nixCode(l.text) }))),
    ...filesUnder("templates").flatMap(fileLines),
    ...filesUnder("src", ".ts").flatMap(tsStrings),
    ...EXAMPLES.flatMap((name) => regularFiles(render(example(name))).flatMap((f) => linesOf(`rendered examples/${name}.json: ${f.path}`, f.content))),
  ];
}

const findings = (lines: Line[]): string[] => lines.flatMap((l) => labelsIn(l.text).map((label) => `${l.where}: "${label}" in: ${l.text.trim()}`));

test("labels are detected, look-alikes are not", () => {
  assert.deepEqual(labelsIn("Seconds a graceful stop may take (SPEC D9)."), ["SPEC", "D9"]);
  assert.deepEqual(labelsIn("follows ORIGINAL.md §B5b with the defects of §E fixed (E.3.7, F4, S0:686)"), ["ORIGINAL", "§B5b", "§E", "E.3.7", "F4", "S0:686"]);
  assert.deepEqual(labelsIn("see DESIGN.md, SECURITY-REVIEW and B17"), ["DESIGN.md", "SECURITY-REVIEW", "B17"]);
  assert.deepEqual(labelsIn("the original's 0xD9, v53.0, sha256-ABD9=, D-Bus, specification, PCI 00:1f.0"), []);
  assert.deepEqual(findings(linesOf("sample.md", "fine\nstopped hard (SPEC D9)")), ['sample.md:2: "SPEC" in: stopped hard (SPEC D9)', 'sample.md:2: "D9" in: stopped hard (SPEC D9)']);
});

test("the Nix scan leaves out comments only", () => {
  assert.equal(nixCode("  # SPEC D1"), "");
  assert.equal(nixCode('  description = "x (SPEC D1)"; # D2'), '  description = "x (SPEC D1)";');
  assert.equal(nixCode('  message = "a # b D3";'), '  message = "a # b D3";');
});

test("the TypeScript scan reads string literals and templates, not comments", () => {
  const lines = tsStrings("src/config/schema.ts");
  assert.ok(lines.some((l) => l.text.startsWith("Seconds a graceful stop may take")), "a doc string of the schema is scanned");
  assert.ok(!lines.some((l) => l.text.includes("schema version 1. Field names follow")), "a comment is not");
});

test("user-facing text cites no internal document or label", () => {
  const lines = userText();
  assert.ok(lines.length > 10000, `scanned ${lines.length} lines`);
  const found = findings(lines);
  assert.equal(found.length, 0, `${found.length} internal labels in user-facing text (say the fact itself):\n${found.join("\n")}`);
});
