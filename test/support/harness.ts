/** Shared test support: the examples, rendering into temporary trees, running the CLI. */
import { spawnSync } from "node:child_process";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { generate } from "../../src/generate.js";
import { type FileTree, type GeneratedFile, isLink, regularFiles } from "../../src/render/files.js";
import { writeEntries } from "../../src/write-tree.js";

/** The repository root (tests run from dist/test/...). */
export const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "..");
export const CLI = join(ROOT, "dist", "src", "cli.js");
/** The install prefix used for every rendering in tests and golden trees. */
export const TEST_PREFIX = "/nix/store/00000000000000000000000000000000-vmsilo";
export const EXAMPLES = ["minimal", "desktop"] as const;

export function readJson(path: string): unknown {
  return JSON.parse(readFileSync(path, "utf8"));
}

export function example(name: string): Record<string, unknown> {
  return readJson(join(ROOT, "examples", `${name}.json`)) as Record<string, unknown>;
}

export function render(config: unknown, prefix = TEST_PREFIX): FileTree {
  return generate(config, { prefix });
}

/** `s` as an absolute path the path grammar accepts: its names, without empty, `.` and `..` ones,
 * edge spaces trimmed (for generators of hostile-but-valid paths). */
export function normalisedPath(s: string): string {
  return `/${s.split("/").map((n) => n.trim()).filter((n) => n !== "" && n !== "." && n !== "..").join("/")}`;
}

export function tempDir(label: string): string {
  return mkdtempSync(join(tmpdir(), `vmsilo-${label}-`));
}

export { regularFiles };

/** Write a tree under `dir` (modes kept); returns `dir`. */
export function writeTree(tree: FileTree, dir: string): string {
  writeEntries(tree, dir);
  return dir;
}

/** The regular file at `path` of a tree (fails the test when it is missing or a link). */
export function fileAt(tree: FileTree, path: string): GeneratedFile {
  const e = tree.get(path);
  assert.ok(e !== undefined && !isLink(e), `${path}: no such generated file`);
  return e;
}

export interface RunResult {
  status: number | null;
  stdout: string;
  stderr: string;
}

export function runCli(args: string[], input?: string): RunResult {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: "utf8", input });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** Files of the tree that are scripts (by mode). */
export function scripts(tree: FileTree): string[] {
  return regularFiles(tree).filter((f) => f.mode === 0o755).map((f) => f.path);
}

/**
 * Skip the test, with a visible SKIP line naming the Debian package, when `tool` is not on PATH;
 * true when skipped.
 */
export function skipWithoutTool(t: { skip(msg?: string): void }, tool: string, debianPackage: string): boolean {
  if (have(tool)) return false;
  console.log(`SKIP: ${tool} not installed (apt-get install ${debianPackage})`);
  t.skip(`${tool} not installed`);
  return true;
}

/** Temporary directories made by tempDirRemovedAtExit, removed when the test process exits. */
const removedAtExit: string[] = [];
process.on("exit", () => removedAtExit.forEach((d) => rmSync(d, { recursive: true, force: true })));
/** A temporary directory removed when this test process exits (after its servers and VMs are stopped). */
export function tempDirRemovedAtExit(label: string): string {
  const d = tempDir(label);
  removedAtExit.push(d);
  return d;
}

/** True when `cmd` is on PATH; tests that need it print a visible SKIP line otherwise. */
export function have(cmd: string): boolean {
  return spawnSync("sh", ["-c", `command -v ${cmd}`], { stdio: "ignore" }).status === 0;
}
