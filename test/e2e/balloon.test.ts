/**
 * vmsilo-balloond with real qemu under TCG, outside systemd (test/e2e/nspawn/balloond.test.ts runs it
 * under its unit): three test guests, each with the generated virtio-balloon device, booted by the
 * generated launchers; the daemon reads the generated manifest and a stand-in PSI file.
 *
 *  - idle guests give memory back: within 30 s each balloon holds at least half of what the guest had
 *    available when the daemon first saw it;
 *  - a guest that takes memory (the guest's `vmsilo.test.memload`) gets it back: its balloon shrinks
 *    within BALLOON_REACTION_S of the load's start, and the load completes;
 *  - host pressure: once the PSI file says the host is critical, the idle guests' balloons grow
 *    within BALLOON_REACTION_S;
 *  - the daemon stays under its memory budget (16 MiB resident).
 *
 * The daemon's debug log of the run is what docs/balloon-run.svg is drawn from (balloon-svg.ts):
 * UPDATE_DOCS=1 writes it to docs/balloon-run.log.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { ROOT } from "../support/harness.js";
import { skip, sleep, tempDir, testGuest, uniqueVmName, waitFor } from "./support.js";
import { parseBalloonLog, type BalloonRun } from "./balloon-log.js";
import { BALLOON_REACTION_S, CALM, CRITICAL, balloonConfig, bootGuests, rssKiB, startDaemon } from "./balloon-support.js";

const MIB = 1024 * 1024;

test("vmsilo-balloond, real qemu under TCG: idle guests give memory back, a loaded guest gets it back, host pressure reclaims", async (t) => {
  const g = testGuest();
  if (typeof g === "string") return skip(t, `balloon end-to-end: ${g}`);
  const names = ["a", "b", "c"].map((l) => uniqueVmName(`bl${l}`));
  const loaded = names[2]!;
  const config = balloonConfig(g, names, { mib: 96, after: 25 });
  const guests = await bootGuests(config, "balloon-e2e");
  const psi = join(tempDir("balloon-psi"), "memory");
  writeFileSync(psi, CALM);
  const daemon = startDaemon(guests.out, config, ["--psi-path", psi]);
  t.after(async () => {
    await daemon.stop();
    await guests.stop();
  });
  const run = (): BalloonRun => parseBalloonLog(daemon.err);
  const since = Date.now();
  let maxRss = 0;
  const sample = () => {
    if (daemon.running && daemon.child.pid) maxRss = Math.max(maxRss, rssKiB(daemon.child.pid));
  };

  // Idle: within 30 s, each idle guest's balloon holds at least half of what it had available at first.
  const idle = names.slice(0, 2);
  await waitFor("the idle guests' balloons to take half of their available memory", () => {
    sample();
    const r = run();
    return idle.every((n) => {
      const s = r.vms[n];
      return s !== undefined && s.samples.length > 0 && s.samples.at(-1)!.actual >= 0.5 * s.samples[0]!.avail;
    });
  }, 30000).catch((e) => assert.fail(`${(e as Error).message}\n${daemon.err.slice(-4000)}`));
  const idleAt = Date.now() - since;

  // The loaded guest: its balloon shrinks soon after the load starts, and the load completes.
  const c = guests.consoles[2]!;
  await waitFor("the guest's load to start", () => c.text().includes("VMSILO-TEST memload start"), 60000);
  const loadSeen = run().vms[loaded]!.samples.length;
  const peak = Math.max(...run().vms[loaded]!.samples.map((s) => s.target));
  await waitFor("the loaded guest's balloon to give memory back", () => {
    sample();
    const s = run().vms[loaded]!.samples.slice(loadSeen);
    return s.some((x) => x.target < peak - 32 * MIB);
  }, BALLOON_REACTION_S * 1000).catch((e) => assert.fail(`${(e as Error).message}\n${c.text().slice(-2000)}\n${daemon.err.slice(-4000)}`));
  await waitFor("the load to complete", () => /VMSILO-TEST memload done 0/.test(c.text()), BALLOON_REACTION_S * 1000).catch((e) => assert.fail(`${(e as Error).message}\n${c.text().slice(-2000)}`));

  // Host pressure: the idle guests give more.
  await sleep(2000);
  const before = Object.fromEntries(idle.map((n) => [n, run().vms[n]!.samples.at(-1)!.target]));
  writeFileSync(psi, CRITICAL);
  await waitFor("host pressure to grow the idle guests' balloons", () => {
    sample();
    return idle.every((n) => run().vms[n]!.samples.at(-1)!.target > before[n]! + 8 * MIB);
  }, BALLOON_REACTION_S * 1000).catch((e) => assert.fail(`${(e as Error).message}\n${daemon.err.slice(-4000)}`));
  await sleep(2000);
  writeFileSync(psi, CALM);
  await sleep(3000);
  sample();

  assert.ok(daemon.running, daemon.err.slice(-2000));
  assert.ok(maxRss > 0 && maxRss < 16 * 1024, `vmsilo-balloond's resident memory: ${maxRss} KiB, budget 16384 KiB`);
  console.log(`balloon e2e: idle guests returned half their available memory after ${idleAt} ms; daemon RSS ${maxRss} KiB`);
  if (process.env.UPDATE_DOCS) writeFileSync(join(ROOT, "docs", "balloon-run.log"), daemon.err);
});
