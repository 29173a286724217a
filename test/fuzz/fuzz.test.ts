/**
 * The parsers of untrusted bytes under libFuzzer with ASan and UBSan (support.ts): each harness runs
 * RUNS inputs from its seed corpus and must end without a finding (a crash, a sanitizer report, or a
 * harness invariant: an argv outside its payload, a terminal control byte out of the filter).
 * `npm run fuzz` runs the same harnesses for a minute each.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { buildFuzzers, FUZZERS, fuzzPrerequisites, runFuzzer, seedCorpus } from "./support.js";

const RUNS = 20000;
/** Edges each harness reaches from its seeds (about 80% of what it reached when written): a
 * harness whose input no longer gets past the preamble falls below. */
const MIN_COV = { "fuzz-agent-request": 40, "fuzz-client-answer": 120, "fuzz-proxy-handshake": 15, "fuzz-tray-frame": 60, "fuzz-json": 60 } as const;
const missing = fuzzPrerequisites();
if (missing) console.log(`SKIP: fuzzing harnesses not run: ${missing}`);

test(`libFuzzer: each parser harness runs ${RUNS} inputs clean under ASan and UBSan`, { skip: missing ?? false }, () => {
  const bins = buildFuzzers();
  for (const f of FUZZERS) {
    const r = runFuzzer(bins[f], seedCorpus(f), [`-runs=${RUNS}`], 120000);
    assert.equal(r.status, 0, `${f}:\n${r.output.slice(-4000)}`);
    assert.match(r.output, new RegExp(`Done ${RUNS} runs`), `${f}:\n${r.output.slice(-2000)}`);
    assert.ok(r.cov >= MIN_COV[f], `${f}: coverage ${r.cov} edges, expected at least ${MIN_COV[f]}:\n${r.output.slice(-2000)}`);
  }
});
