/**
 * vm-run throughput under real systemd: sustained calls per second through the generated command
 * socket (Accept=yes) and the per-connection proxy unit, in systemd-nspawn (test/e2e/nspawn-load.ts,
 * the same harness as the load test): BENCH_CALLS calls in a row (default 1000), then 32 callers
 * at once with BENCH_CALLS / 32 calls each. Every call starts one proxy unit, so this is mostly what
 * systemd takes to start a sandboxed service; the transport to the agent is a unix socket.
 *
 *   npx tsc -p . && node dist/test/bench/vmrun-systemd-bench.js        (needs root and systemd-nspawn)
 */
import { loadInNspawn, resultNumber } from "../e2e/nspawn-load.js";

const CALLS = Number(process.env.BENCH_CALLS ?? 1000);
const PAR = 32;
const per = Math.max(1, Math.round(CALLS / PAR));
const r = loadInNspawn({ seq: CALLS, par: PAR, per, timeoutS: 1800 });
if (typeof r === "string") {
  console.log(`SKIP: vm-run under systemd not measured: ${r}`);
  process.exit(0);
}
const fails = resultNumber(r.result, "seq-fails") + [...r.result.matchAll(/^par-fails \d+ (\d+)$/gm)].reduce((n, m) => n + Number(m[1]), 0);
if (!/^done$/m.test(r.result) || fails !== 0) {
  console.error(`vmrun-systemd-bench: the load did not complete cleanly (${fails} failed calls)\n${r.context()}`);
  process.exit(1);
}
const rate = (calls: number, ms: number) => `${((calls * 1000) / ms).toFixed(1)} calls/s (${(ms / calls).toFixed(1)} ms per call)`;
console.log(`\nvm-run through the generated socket and proxy units under systemd (systemd-nspawn):`);
console.log(`  sequential  ${CALLS} calls: ${rate(CALLS, resultNumber(r.result, "seq-ms"))}`);
console.log(`  parallel    ${PAR}×${per} calls: ${rate(PAR * per, resultNumber(r.result, "par-ms"))}`);
console.log(`  the command socket kept listening; no proxy lingered; no unit failed`);
