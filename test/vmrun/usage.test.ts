/**
 * vm-run's usage has one source, src/render/usage.ts: the client prints it from the header
 * generated from there (agent/vm-run-usage.h), its man page is made from the same entry.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { ROOT } from "../support/harness.js";
import { vmRunUsageHeader } from "../../src/render/usage.js";

test("agent/vm-run-usage.h is current with usage.ts (UPDATE_DOCS=1 rewrites it)", () => {
  const path = join(ROOT, "agent", "vm-run-usage.h");
  if (process.env.UPDATE_DOCS) writeFileSync(path, vmRunUsageHeader());
  assert.equal(readFileSync(path, "utf8"), vmRunUsageHeader());
});
