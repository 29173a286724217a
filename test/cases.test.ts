/**
 * Annotated cases (test/cases/*.case): `## assert-…` lines, then a JSON document deep-merged over
 * examples/minimal.json (objects merge, everything else replaces). Each case runs the real CLI
 * (`render --dry-run`); see test/cases/README.md for the assertions.
 */
import { test } from "node:test";
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { ROOT, TEST_PREFIX, example, runCli, tempDir } from "./support/harness.js";
import { caseBody, checkAssertions, parseAssertions } from "./support/case-assertions.js";

const CASES = join(ROOT, "test", "cases");

function merge(base: unknown, over: unknown): unknown {
  if (typeof base === "object" && base && !Array.isArray(base) && typeof over === "object" && over && !Array.isArray(over)) {
    const out: Record<string, unknown> = { ...(base as Record<string, unknown>) };
    for (const [k, v] of Object.entries(over)) out[k] = k in out ? merge(out[k], v) : v;
    return out;
  }
  return over;
}

for (const file of readdirSync(CASES).filter((f) => f.endsWith(".case")).sort()) {
  test(`case ${file}`, () => {
    const text = readFileSync(join(CASES, file), "utf8");
    const config = merge(example("minimal"), JSON.parse(caseBody(text)));
    const dir = tempDir("case");
    const cfgFile = join(dir, "vmsilo.json");
    writeFileSync(cfgFile, JSON.stringify(config));
    const r = runCli(["render", "--dry-run", "--config", cfgFile, "--out", join(dir, "out"), "--prefix", TEST_PREFIX]);
    checkAssertions(parseAssertions(text), r);
  });
}
