/**
 * docs/balloon-run.svg is the picture of the run recorded in docs/balloon-run.log (the daemon's debug
 * log of test/e2e/balloon.test.ts), drawn by balloon-log.ts: `UPDATE_DOCS=1` redraws it.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { ROOT } from "../support/harness.js";
import { balloonSvg, parseBalloonLog } from "./balloon-log.js";

export const BALLOON_SVG_TITLE = "vmsilo-balloond: three TCG guests, one loaded at 25 s, host critical at the end";

test("docs/balloon-run.svg is drawn from docs/balloon-run.log, and the run shows each phase", () => {
  const run = parseBalloonLog(readFileSync(join(ROOT, "docs", "balloon-run.log"), "utf8"));
  const names = Object.keys(run.vms);
  assert.equal(names.length, 3, "three guests in the recorded run");
  for (const n of names) assert.ok(run.vms[n]!.samples.some((s) => s.actual > 0), `${n}: its balloon took memory`);
  assert.ok(run.host.some((h) => h.critical), "the host was critical in the recorded run");
  assert.ok(Object.values(run.vms).some((v) => v.samples.some((s) => s.why === "guest-pressure" || s.why === "deflate")), "a guest got memory back");
  const svg = balloonSvg(run, BALLOON_SVG_TITLE);
  const path = join(ROOT, "docs", "balloon-run.svg");
  if (process.env.UPDATE_DOCS) writeFileSync(path, svg);
  assert.equal(readFileSync(path, "utf8"), svg, "docs/balloon-run.svg is out of date: UPDATE_DOCS=1 node --test dist/test/e2e/balloon-svg.test.js");
});

test("the log parser reads the daemon's poll and VM lines", () => {
  const run = parseBalloonLog(
    [
      "vmsilo-balloond: debug: poll t=1000 host total=100 avail=50 psi=0.00 critical=0 slack=50331648",
      "vmsilo-balloond: debug: vm=a avail=104857600 actual=0 target=0 want=50331648 why=inflate",
      "vmsilo-balloond: info: a: balloon 0 -> 48 MiB (inflate; …)",
      "vmsilo-balloond: debug: poll t=2000 host total=100 avail=50 psi=60.00 critical=1 slack=25165824",
      "vmsilo-balloond: debug: vm=a avail=-1 actual=50331648 target=50331648 want=50331648 why=hold",
    ].join("\n"),
  );
  assert.deepEqual(run.host, [{ t: 1000, psi: 0, critical: false }, { t: 2000, psi: 60, critical: true }]);
  assert.deepEqual(run.vms.a!.samples, [
    { t: 1000, avail: 104857600, actual: 0, target: 50331648, why: "inflate" },
    { t: 2000, avail: -1, actual: 50331648, target: 50331648, why: "hold" },
  ]);
});
