/**
 * vmsilo-console-log, which writes a console relay's console.log on /run: a guest flooding its
 * console cannot make the file pass its bound (1 MiB, docs/model.md), the newest output is what
 * stays, and a link in the file's place is refused, never followed.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { readFileSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { buildAgent, missingTools, tempDir } from "../vmrun/support.js";
import { skip } from "../e2e/support.js";

const LIMIT = 1024 * 1024;

function logger(t: { skip(msg?: string): void }): string | null {
  const missing = missingTools();
  if (missing) {
    skip(t, `vmsilo-console-log: ${missing}`);
    return null;
  }
  return join(buildAgent(["all"]).dir, "vmsilo-console-log");
}

test("vmsilo-console-log: 5 MiB of console output leave at most 1 MiB, the newest half or more of it", (t) => {
  const bin = logger(t);
  if (!bin) return;
  const log = join(tempDir("console-log"), "console.log");
  writeFileSync(log, "", { mode: 0o600 });
  // Numbered lines, so that what stays can be told from what was cut.
  const lines: string[] = [];
  for (let i = 0, n = 0; n < 5 * LIMIT; i++) n += (lines[i] = `console line ${i} ${"x".repeat(i % 97)}\n`).length;
  const input = lines.join("");
  const r = spawnSync(bin, [log], { input, maxBuffer: 1 << 20 });
  assert.equal(r.status, 0, String(r.stderr));
  const size = statSync(log).size;
  assert.ok(size <= LIMIT, `console.log is ${size} bytes, above ${LIMIT}`);
  assert.ok(size >= LIMIT / 2, `console.log kept only ${size} bytes, below ${LIMIT / 2}`);
  const kept = readFileSync(log, "utf8");
  assert.ok(input.endsWith(kept), "console.log is not the newest part of the output");
  assert.equal(statSync(log).mode & 0o777, 0o600, "the file's mode changed");
});

test("vmsilo-console-log: output below the bound is kept whole, appended to what the file holds", (t) => {
  const bin = logger(t);
  if (!bin) return;
  const log = join(tempDir("console-log"), "console.log");
  writeFileSync(log, "before\n");
  for (const chunk of ["boot 1\n", "boot 2\n"]) assert.equal(spawnSync(bin, [log], { input: chunk }).status, 0);
  assert.equal(readFileSync(log, "utf8"), "before\nboot 1\nboot 2\n");
});

test("vmsilo-console-log: a link in the file's place is refused (exit 1), its target untouched; a usage error exits 2", (t) => {
  const bin = logger(t);
  if (!bin) return;
  const dir = tempDir("console-log");
  const target = join(dir, "target");
  writeFileSync(target, "precious\n");
  symlinkSync(target, join(dir, "console.log"));
  const r = spawnSync(bin, [join(dir, "console.log")], { input: "flood\n", encoding: "utf8" });
  assert.equal(r.status, 1);
  assert.match(r.stderr, /^vmsilo-console-log: cannot open .*console\.log: Too many levels of symbolic links$/m);
  assert.equal(readFileSync(target, "utf8"), "precious\n");
  const missing = spawnSync(bin, [join(dir, "absent")], { input: "", encoding: "utf8" });
  assert.equal(missing.status, 1, "a missing file is not created");
  assert.equal(spawnSync(bin, [], { encoding: "utf8" }).status, 2);
});
