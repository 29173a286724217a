/** Shared test support: the examples, rendering into temporary trees, running the CLI. */
import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync, chmodSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { generate } from "../../src/generate.js";
import type { FileTree } from "../../src/render/files.js";

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

export function tempDir(label: string): string {
  return mkdtempSync(join(tmpdir(), `vmsilo-${label}-`));
}

/** Write a tree under `dir` (modes kept); returns `dir`. */
export function writeTree(tree: FileTree, dir: string): string {
  for (const f of tree.values()) {
    const p = join(dir, f.path);
    mkdirSync(dirname(p), { recursive: true });
    writeFileSync(p, f.content);
    chmodSync(p, f.mode);
  }
  return dir;
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
  return [...tree.values()].filter((f) => f.mode === 0o755).map((f) => f.path);
}

/** True when `cmd` is on PATH; tests that need it print a visible SKIP line otherwise. */
export function have(cmd: string): boolean {
  return spawnSync("sh", ["-c", `command -v ${cmd}`], { stdio: "ignore" }).status === 0;
}
