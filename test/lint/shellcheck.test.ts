/**
 * Lint layer: every generated script through shellcheck (all severities, style included), for both
 * examples and for a configuration full of hostile-but-valid values. Any finding fails the test and
 * is printed. Without shellcheck the tests print `SKIP: shellcheck not installed` and skip.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { rmSync } from "node:fs";
import { join } from "node:path";
import { example, EXAMPLES, fileAt, skipWithoutTool, render, scripts, tempDir, writeTree } from "../support/harness.js";
import type { FileTree } from "../../src/render/files.js";
import { HOSTILE_STORE, hostileConfig } from "./stub-root.js";


/** shellcheck over every script (mode 0755) of `tree`; returns its report ("" when clean). */
function shellcheck(tree: FileTree, exclude: readonly string[] = []): { files: string[]; report: string } {
  const dir = writeTree(tree, tempDir("shellcheck"));
  try {
    const files = scripts(tree);
    assert.ok(files.length > 0, "no scripts generated");
    // --shell=bash: the shebang is #!/nix/store/…/bin/bash, which shellcheck does not recognise.
    // -x follows `source` lines (there are none today; keeps it honest if one appears).
    const args = ["-x", "--severity=style", "--shell=bash", "--format=gcc", ...(exclude.length ? [`--exclude=${exclude.join(",")}`] : []), "--", ...files];
    const r = spawnSync("shellcheck", args, { cwd: dir, encoding: "utf8" });
    if (r.error) throw r.error;
    const report = (r.stdout + r.stderr).trim();
    // Exit 0: clean; 1: findings (printed). Anything else is shellcheck failing, which must not pass.
    assert.ok(r.status === 0 || (r.status === 1 && report !== ""), `shellcheck exited ${r.status}: ${report}`);
    return { files, report };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}


for (const name of EXAMPLES) {
  test(`shellcheck: every script of examples/${name}.json is clean`, (t) => {
    if (skipWithoutTool(t, "shellcheck", "shellcheck")) return;
    const { files, report } = shellcheck(render(example(name)));
    assert.equal(report, "", `shellcheck findings in ${files.length} scripts of examples/${name}.json:\n${report}`);
  });
}

test("shellcheck: the scripts of a tree with a disposable VM are clean (vm-start's refusals, vm-list's slots)", (t) => {
  if (skipWithoutTool(t, "shellcheck", "shellcheck")) return;
  const c: any = example("minimal");
  c.programs = example("desktop").programs;
  c.nixosVms.work.disposable = { enable: true, slots: 2, preload: 1 };
  const { files, report } = shellcheck(render(c));
  assert.equal(report, "", `shellcheck findings in ${files.length} scripts:\n${report}`);
});

/*
 * The hostile configuration puts `$HOME`, backticks, `\` and quotes into values on purpose. Its
 * scripts are checked with exactly two exclusions, both about such data inside single quotes:
 *   SC2016 "Expressions don't expand in single quotes": `'$HOME'` is the literal text we must pass;
 *   SC1003 "Want to escape a single quote?": `'\'` is a lone backslash argument, correctly quoted.
 * Every other check stays on, so an unquoted or half-quoted value (SC2086, SC1009, parse errors …)
 * still fails. The examples above run with no exclusion at all.
 */
const HOSTILE_DATA_EXCLUSIONS = ["SC2016", "SC1003"];

test("shellcheck: scripts stay clean with hostile paths, crosvm arguments and kernel parameters", (t) => {
  if (skipWithoutTool(t, "shellcheck", "shellcheck")) return;
  const tree = render(hostileConfig(example("desktop"), null));
  const launch = fileAt(tree, "libexec/vmsilo/work/launch").content;
  assert.ok(launch.includes("'--x=$(reboot)'"), "the hostile crosvm argument reaches the launcher, single-quoted");
  const { report } = shellcheck(tree, HOSTILE_DATA_EXCLUSIONS);
  assert.equal(report, "", `shellcheck findings with hostile values:\n${report}`);
});

test("shellcheck: scripts stay clean when program store paths hold every character a store path may", (t) => {
  if (skipWithoutTool(t, "shellcheck", "shellcheck")) return;
  // Every program but bash (its path is the shebang, which no quoting can protect).
  const tree = render(hostileConfig(example("desktop"), HOSTILE_STORE));
  const { report } = shellcheck(tree, HOSTILE_DATA_EXCLUSIONS);
  assert.equal(report, "", `shellcheck findings with hostile program paths:\n${report}`);
});

test("bash -n: every hostile script parses", () => {
  const tree = render(hostileConfig(example("desktop"), HOSTILE_STORE));
  const dir = writeTree(tree, tempDir("bash-n"));
  try {
    for (const f of scripts(tree)) {
      const r = spawnSync("bash", ["-n", join(dir, f)], { encoding: "utf8" });
      assert.equal(r.status, 0, `${f} does not parse:\n${r.stderr}`);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
