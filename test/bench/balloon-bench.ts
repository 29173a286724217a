/**
 * vmsilo-balloond's benchmark: three idle TCG guests of 1 GiB (the test guest, floors and daemon
 * settings at their defaults but the log level, debug, to count polls), booted by the generated
 * launchers. Prints the share of the guests' available memory (as each reported it when the daemon
 * first saw it) that their balloons hold 30 s after the daemon started (goal ≥ 60 %), and the
 * daemon's resident memory and CPU time per poll. Needs root or the e2e prerequisites.
 *
 *   npx tsc -p . && node dist/test/bench/balloon-bench.js
 */
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { sleep, tempDir, testGuest, uniqueVmName } from "../e2e/support.js";
import { parseBalloonLog } from "../e2e/balloon-log.js";
import { CALM, bootGuests, rssKiB, startDaemon } from "../e2e/balloon-support.js";
import { configSchema } from "../../src/config/schema.js";

const g = testGuest();
if (typeof g === "string") {
  console.log(`SKIP: balloon benchmark: ${g}`);
  process.exit(0);
}
const names = ["a", "b", "c"].map((l) => uniqueVmName(`bb${l}`));
const { qemuTestConfig } = await import("../e2e/support.js");
const configs = names.map((n) => qemuTestConfig(g, n, { memory: 1024, kernelParams: ["console=ttyS0", "quiet"] }) as Record<string, any>);
const defaults = configSchema.fields!.balloond!.default as Record<string, unknown>;
const config = { ...configs[0], balloond: { ...defaults, logLevel: "debug" }, nixosVms: Object.assign({}, ...configs.map((c) => c.nixosVms)) };
const guests = await bootGuests(config, "balloon-bench");
const psi = join(tempDir("balloon-bench-psi"), "memory");
writeFileSync(psi, CALM);
const daemon = startDaemon(guests.out, config, ["--psi-path", psi]);
const pid = daemon.child.pid!;
let rss = 0;
for (let i = 0; i < 30; i++) {
  await sleep(1000);
  rss = Math.max(rss, rssKiB(pid));
}
// Time on a CPU in nanoseconds (schedstat's first field): finer than the clock ticks of /proc/<pid>/stat.
const cpuMs = Number(readFileSync(`/proc/${pid}/schedstat`, "utf8").split(" ")[0]) / 1e6;
const run = parseBalloonLog(daemon.err);
await daemon.stop();
await guests.stop();
let held = 0;
let free = 0;
for (const n of names) {
  const s = run.vms[n]?.samples ?? [];
  if (!s.length) continue;
  free += s[0]!.avail;
  held += s.at(-1)!.actual;
}
const polls = run.host.length;
console.log(`balloon: idle guests' available memory returned within 30 s: ${((100 * held) / Math.max(1, free)).toFixed(1)} % (${(held / 2 ** 20).toFixed(0)} of ${(free / 2 ** 20).toFixed(0)} MiB; goal >= 60 %)`);
console.log(`balloon: vmsilo-balloond resident ${rss} KiB (budget 16384), CPU ${(cpuMs / Math.max(1, polls)).toFixed(3)} ms per poll over ${polls} polls of ${names.length} VMs`);
