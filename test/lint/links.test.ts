/** Every link the generator writes points at a program its package really provides (PACKAGE_CONTENTS). */
import { test } from "node:test";
import assert from "node:assert/strict";
import { isLink } from "../../src/render/files.js";
import { example, EXAMPLES, render } from "../support/harness.js";
import { PACKAGE_CONTENTS } from "./stub-root.js";

for (const name of EXAMPLES) {
  test(`examples/${name}.json: every generated link names a program of a configured package`, () => {
    const config = example(name) as { programs: Record<string, string> };
    const links = [...render(config).values()].filter(isLink);
    assert.ok(links.length > 0, "the tree has links (bin/vm-run)");
    for (const l of links) {
      const owner = Object.entries(config.programs).find(([, path]) => l.link.startsWith(`${path}/bin/`));
      assert.ok(owner, `${l.path} -> ${l.link}: not inside a configured package's bin/`);
      const [key, path] = owner;
      const provided = PACKAGE_CONTENTS[key as keyof typeof PACKAGE_CONTENTS].bin ?? [];
      assert.ok(provided.includes(l.link.slice(`${path}/bin/`.length)), `${l.path} -> ${l.link}: programs.${key} has no such program`);
    }
  });
}
