/**
 * `vm-run --disposable <vm> true` on a preloaded slot against a cold one, under TCG in systemd-nspawn
 * (test/e2e/nspawn/disposable.sh times both in its run; goal: preloaded ≤ 0.2× cold).
 *
 *   npx tsc -p . && node dist/test/bench/disposable-bench.js        (needs root and systemd-nspawn)
 */
import { runDisposables } from "../e2e/nspawn/disposable.js";

const run = runDisposables("disposable-bench");
if (typeof run === "string") {
  console.log(`SKIP: disposable VMs not measured: ${run}`);
  process.exit(0);
}
const n = (k: string) => Number(new RegExp(`^${k} (\\d+)$`, "m").exec(run.result)?.[1]);
const [preloaded, cold] = [n("preloaded-ms"), n("cold-ms")];
if (!run.done || run.failed.length || !(preloaded > 0) || !(cold > 0)) {
  console.error(`disposable-bench: the run did not complete cleanly\n${run.context()}`);
  run.remove();
  process.exit(1);
}
run.remove();
const ratio = preloaded / cold;
console.log(`\nvm-run --disposable <vm> true (qemu, TCG, systemd-nspawn):`);
console.log(`  preloaded slot  ${preloaded} ms`);
console.log(`  cold slot       ${cold} ms (boots the guest)`);
console.log(`  preloaded/cold  ${ratio.toFixed(3)} (goal ≤ 0.2: ${ratio <= 0.2 ? "met" : "NOT met"})`);
