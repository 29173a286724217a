/**
 * Disposable VMs under real systemd (harness.ts, disposable.sh): a qemu disposable VM with two
 * slots, one preloaded, booting the test guest (TCG). vm-run --disposable takes a slot through its
 * use socket, runs the command with vm-run's semantics in a fresh instance, and the slot is wiped
 * (its instance stopped; the preloaded one booted afresh) when vm-run ends; two at once get two
 * slots, a third finds the pool full and fails with its message; a vm-run killed with -9 still has
 * its instance wiped, and so does one ended by SIGTERM. The guests' agents are reached as in nspawn.test.ts (virtio-serial and a
 * relay, by drop-ins), everything else is the generated tree. It also times a disposable `true`
 * on the preloaded slot and on a cold one (test/bench/disposable-bench.ts compares them).
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { readOr, skip } from "../support.js";
import { runDisposables } from "./disposable.js";

test("in systemd-nspawn: vm-run --disposable takes a slot, runs the command in a fresh instance, wipes it after, even after kill -9; a full pool fails with its message", (t) => {
  const run = runDisposables("disposable");
  if (typeof run === "string") return skip(t, run);
  t.after(run.remove);
  const result = run.result;
  const context = () => `${run.context()}\n--- errs\n${["preloaded", "cold", "full", "use", "h1", "h2", "killed", "idle"].map((n) => `${n}: ${readOr(join(run.results, `${n}.err`))}`).join("\n")}`;
  assert.ok(run.done, context());
  assert.deepEqual(run.failed, [], context());
  for (const [name, status] of [["preloaded", 0], ["cold", 0], ["full", 125], ["holder1", 0], ["holder2", 0], ["use", 7]] as const) {
    assert.match(result, new RegExp(`^${name}-status ${status}$`, "m"), `${name}\n${context()}`);
  }
  const n = (k: string) => Number(new RegExp(`^${k} (\\d+)$`, "m").exec(result)?.[1]);
  assert.ok(n("full-ms") < 5000, `a full pool answered after ${n("full-ms")} ms`);
  assert.match(result, /^termed-status 143$/m, context());
  assert.ok(n("slot-use-rss-kib") > 0 && n("slot-use-rss-kib") < 8 * 1024, `vmsilo-slot-use holds ${n("slot-use-rss-kib")} KiB`);
  console.log(`disposable true: preloaded ${n("preloaded-ms")} ms, cold ${n("cold-ms")} ms`);
});
