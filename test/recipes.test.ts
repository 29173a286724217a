/**
 * Every recipe (docs/recipes/*.md) shows one configuration, in its one ```nix block, and that
 * block is a case: test/cases/recipes/<recipe>.nix, the same text after its `## assert-…` lines
 * (test/cases/README.md). The case is added to a host (test/nix/nix/configs/recipe-host.nix) and
 * evaluated in the NixOS module against nixpkgs' lib; its vmsilo.json is rendered by the real CLI
 * and the assertions are checked on the result.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { ROOT, TEST_PREFIX, runCli, tempDir } from "./support/harness.js";
import { caseBody, checkAssertions, parseAssertions } from "./support/case-assertions.js";
import { evalModule, skipWithoutLib } from "./nix/support.js";
import { codeBlocks } from "./support/markdown.js";

const RECIPES = join(ROOT, "docs", "recipes");
const CASES = join(ROOT, "test", "cases", "recipes");

const recipes = readdirSync(RECIPES)
  .filter((f) => f.endsWith(".md") && f !== "README.md")
  .sort();

test("the recipes are listed in docs/recipes/README.md", () => {
  const index = readFileSync(join(RECIPES, "README.md"), "utf8");
  assert.ok(recipes.length >= 4, `${recipes.length} recipes`);
  for (const r of recipes) assert.ok(index.includes(`(${r})`), `README.md links ${r}`);
});

test("every recipe case belongs to a recipe", () => {
  for (const c of readdirSync(CASES)) assert.ok(recipes.includes(c.replace(/\.nix$/, ".md")), `${c} has no recipe docs/recipes/${c.replace(/\.nix$/, ".md")}`);
});

for (const recipe of recipes) {
  const name = recipe.replace(/\.md$/, "");
  const casePath = join(CASES, `${name}.nix`);

  test(`recipe ${recipe}: its configuration is test/cases/recipes/${name}.nix`, () => {
    const blocks = codeBlocks(readFileSync(join(RECIPES, recipe), "utf8"), "nix");
    assert.equal(blocks.length, 1, "a recipe shows its configuration in exactly one ```nix block (other snippets: sh, text)");
    assert.ok(existsSync(casePath), `test/cases/recipes/${name}.nix is missing: the block, with ## assertions above it`);
    assert.equal(blocks[0]!.trim(), caseBody(readFileSync(casePath, "utf8")).trim(), "the recipe's block and its case differ");
  });

  test(`recipe ${recipe}: evaluates in the NixOS module and renders`, (t) => {
    if (!existsSync(casePath) || skipWithoutLib(t)) return;
    const text = readFileSync(casePath, "utf8");
    const result = evalModule("recipe-host", [`import ${JSON.stringify(casePath)}`]);
    assert.deepEqual(result.failedAssertions, []);
    const dir = tempDir("recipe");
    const file = join(dir, "vmsilo.json");
    writeFileSync(file, JSON.stringify(result.json));
    const r = runCli(["render", "--dry-run", "--config", file, "--out", join(dir, "out"), "--prefix", TEST_PREFIX]);
    checkAssertions(parseAssertions(text), r);
  });
}
