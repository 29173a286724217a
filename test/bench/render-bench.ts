/**
 * `npm run bench`: render 1, 10, 100 and 1000 VMs with the real CLI, each as a whole process
 * (start-up included), and print the median of several runs. The last line is the ratio of
 * 100 VMs to 1 VM; the goal is ≤ 1.5.
 *
 * Output goes to tmpfs (/dev/shm, or BENCH_DIR): on these machines the disk's latency for creating
 * files varies tenfold from minute to minute, which would measure the disk, not the generator.
 */
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { CLI, tempDir } from "../support/harness.js";
import { benchConfig as config } from "./render-config.js";

const RUNS = Number(process.env.BENCH_RUNS ?? 7);

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

const parent = process.env.BENCH_DIR ?? (existsSync("/dev/shm") ? "/dev/shm" : undefined);
const dir = parent ? mkdtempSync(join(parent, "vmsilo-bench-")) : tempDir("bench");
console.log(`output under ${dir}`);
const times = new Map<number, number>();
for (const n of [1, 10, 100, 1000]) {
  const file = join(dir, `vms-${n}.json`);
  writeFileSync(file, JSON.stringify(config(n)));
  const samples: number[] = [];
  for (let r = 0; r < RUNS; r++) {
    // A fresh output directory each run, as in a Nix build.
    const out = join(dir, `out-${n}-${r}`);
    const t0 = process.hrtime.bigint();
    const res = spawnSync(process.execPath, [CLI, "render", "--config", file, "--out", out], { stdio: ["ignore", "ignore", "inherit"] });
    const ms = Number(process.hrtime.bigint() - t0) / 1e6;
    if (res.status !== 0) throw new Error(`render of ${n} VMs failed (${res.status})`);
    samples.push(ms);
    rmSync(out, { recursive: true, force: true });
  }
  times.set(n, median(samples));
  console.log(`render ${String(n).padStart(4)} VMs: ${median(samples).toFixed(1)} ms (median of ${RUNS})`);
}
rmSync(dir, { recursive: true, force: true });
console.log(`ratio 100 VMs : 1 VM = ${(times.get(100)! / times.get(1)!).toFixed(2)} (goal <= 1.5)`);
