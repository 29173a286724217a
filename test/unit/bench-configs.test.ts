/** The benchmarks' generated configurations stay valid as the examples change (npm run bench
 * is not part of the tests, so nothing else would notice). */
import { test } from "node:test";
import assert from "node:assert/strict";
import { resolve } from "../../src/generate.js";
import { benchConfig } from "../bench/render-config.js";

test("render-bench's configurations of 1 and 100 VMs are valid", () => {
  for (const n of [1, 100]) assert.equal(resolve(benchConfig(n)).vms.length, n);
});
