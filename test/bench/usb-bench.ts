/**
 * USB attach latency under real systemd (the nspawn harness, ../e2e/nspawn/usb.sh in bench mode):
 * BENCH_USB_RUNS runs (default 100) of `vmsilo-usb attach` as the desktop user, from the CLI's start
 * to the device attached on the crosvm stand-in (the CLI returns once the broker has the stand-in's
 * answer), p50. Where the time goes, measured the same way: `systemctl start` of the broker's unit
 * through polkit when the device is already there (systemd, polkit and the broker's start-up, with
 * almost no broker work), and the broker alone as root without systemd. Goal: p50 ≤ 150 ms.
 *
 *   npx tsc -p . && node dist/test/bench/usb-bench.js        (needs root and systemd-nspawn)
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { bootNspawn, nspawnPrerequisites } from "../e2e/nspawn/harness.js";
import { usbConfig, usbDriver } from "../e2e/nspawn/usb-world.js";

const RUNS = Number(process.env.BENCH_USB_RUNS ?? 100);
const GOAL_MS = 150;
const why = nspawnPrerequisites();
if (why) {
  console.log(`SKIP: USB attach latency not measured: ${why}`);
  process.exit(0);
}
const run = bootNspawn({ label: "usb-bench", config: usbConfig(), driver: usbDriver({ bench_runs: String(RUNS) }), timeoutS: 900 });
let lines: string[] = [];
try {
  lines = readFileSync(join(run.results, "bench.txt"), "utf8").split("\n");
} catch {
  /* reported below */
}
/** The median of one kind's runs, in ms (the lower middle of an even count). */
const p50 = (k: string) => {
  const us = lines.filter((l) => l.startsWith(`${k} `)).map((l) => Number(l.split(" ")[1])).sort((a, b) => a - b);
  return us.length === RUNS ? { ms: us[Math.floor((us.length - 1) / 2)]! / 1000, n: us.length } : null;
};
const cli = p50("cli");
const systemctl = p50("systemctl");
const broker = p50("broker");
if (!run.done || run.failed.length || !cli || !systemctl || !broker) {
  console.error(`usb-bench: the runs did not complete cleanly\n${run.context()}`);
  run.remove();
  process.exit(1);
}
run.remove();
console.log(`\nUSB attach latency (vmsilo-usb attach as the user → device on the crosvm stand-in), systemd-nspawn, ${cli.n} runs:`);
console.log(`  vmsilo-usb attach (CLI start → attached)          p50 ${cli.ms.toFixed(1)} ms  (goal ≤ ${GOAL_MS} ms: ${cli.ms <= GOAL_MS ? "met" : "NOT met"})`);
console.log(`  of which systemctl start through polkit (no move)  p50 ${systemctl.ms.toFixed(1)} ms  (systemd job, polkit check, the unit's sandbox, the broker reading its state)`);
console.log(`  the broker alone (root, no systemd)                p50 ${broker.ms.toFixed(1)} ms  (sysfs, node check, lock, crosvm usb attach, state rename)`);
console.log(`  the rest (the CLI script, find, reading the result) ≈ ${Math.max(0, cli.ms - systemctl.ms - broker.ms).toFixed(1)} ms`);
