/** The schema reference is generated from the schema; this keeps the committed copy current. */
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { ROOT } from "./support/harness.js";
import { schemaReference } from "../src/config/reference.js";

test("docs/schema.md matches the schema (UPDATE_DOCS=1 rewrites it)", () => {
  const path = join(ROOT, "docs", "schema.md");
  if (process.env.UPDATE_DOCS) writeFileSync(path, schemaReference());
  assert.equal(readFileSync(path, "utf8"), schemaReference());
});

test("the reference lists every field with its type and default", () => {
  const doc = schemaReference();
  for (const row of ["| `nixosVms.<name>.memory` | integer 64–16777216 MiB | `1024` |", "| `user.uid` | integer 1–4294967294 | required |", "| `nixosVms.<name>.network.interfaces.<name>.addresses[]` |"]) {
    assert.ok(doc.includes(row), row);
  }
});
