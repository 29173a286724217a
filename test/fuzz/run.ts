/**
 * `npm run fuzz`: every parser harness (support.ts) for FUZZ_SECONDS seconds (default 60) from its
 * seed corpus, with ASan and UBSan; exits 1 at the first finding, with libFuzzer's report.
 */
import { buildFuzzers, FUZZERS, fuzzPrerequisites, runFuzzer, seedCorpus } from "./support.js";

const SECONDS = Number(process.env.FUZZ_SECONDS ?? 60);
const missing = fuzzPrerequisites();
if (missing) {
  console.error(`fuzz: ${missing}`);
  process.exit(1);
}
const bins = buildFuzzers();
for (const f of FUZZERS) {
  const r = runFuzzer(bins[f], seedCorpus(f), [`-max_total_time=${SECONDS}`], (SECONDS + 60) * 1000);
  const execs = /stat::number_of_executed_units: (\d+)/.exec(r.output)?.[1] ?? "?";
  if (r.status !== 0) {
    console.error(`fuzz: ${f} found something (status ${r.status}):\n${r.output.slice(-8000)}`);
    process.exit(1);
  }
  console.log(`${f}: ${execs} inputs in ${SECONDS} s, coverage ${r.cov} edges, clean`);
}
