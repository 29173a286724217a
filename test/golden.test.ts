/** Whole-tree golden output for each example; `UPDATE_GOLDEN=1` rewrites test/golden/<example>/. */
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, lstatSync, readdirSync, readFileSync, readlinkSync, rmSync, statSync } from "node:fs";
import { join, relative } from "node:path";
import { example, EXAMPLES, render, ROOT, writeTree } from "./support/harness.js";
import { isLink } from "../src/render/files.js";

function listFiles(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { recursive: true, encoding: "utf8" })
    .filter((p) => !lstatSync(join(dir, p)).isDirectory())
    .map((p) => relative(dir, join(dir, p)))
    .sort();
}

for (const name of EXAMPLES) {
  test(`golden tree for examples/${name}.json`, () => {
    const dir = join(ROOT, "test", "golden", name);
    const tree = render(example(name));
    if (process.env.UPDATE_GOLDEN) {
      rmSync(dir, { recursive: true, force: true });
      writeTree(tree, dir);
    }
    assert.deepEqual([...tree.keys()].sort(), listFiles(dir), "the set of generated files differs from the golden tree (UPDATE_GOLDEN=1 to accept)");
    for (const f of tree.values()) {
      const golden = join(dir, f.path);
      if (isLink(f)) {
        assert.equal(readlinkSync(golden), f.link, `${f.path}: link target`);
        continue;
      }
      assert.equal(f.content, readFileSync(golden, "utf8"), `${f.path} differs from the golden copy (UPDATE_GOLDEN=1 to accept)`);
      assert.equal(statSync(golden).mode & 0o777, f.mode, `${f.path}: mode`);
    }
  });
}
