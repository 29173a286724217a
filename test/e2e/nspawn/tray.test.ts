/**
 * The tray unit under real systemd (harness.ts, tray.sh): a crosvm stand-in VM with tray.enable and
 * the real vmsilo-tray-host. The path to a guest daemon needs host-guest vsock, which this machine
 * lacks; the daemons themselves are tested end to end between two session buses in test/tray/.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { ROOT, example } from "../../support/harness.js";
import { skip } from "../support.js";
import { bootNspawn, nspawnPrerequisites } from "./harness.js";
import { trayPrerequisites } from "../../tray/support.js";

const CID = 4242;

test("vmsilo-<vm>-tray.service starts with its VM as the user, with CAP_NET_BIND_SERVICE alone, on the user's session bus, and stops with it", (t) => {
  const why = nspawnPrerequisites() ?? trayPrerequisites();
  if (why) return skip(t, why);
  const base = example("minimal") as Record<string, any>;
  const config = structuredClone(base);
  config.programs.vmsiloTray = "/nix/store/8t4r2a7y1n3s5v9b0c6d2e4f1g3h5j7k-vmsilo-tools-0.1.0-tray";
  Object.assign(config.nixosVms.work, { id: CID, tray: { enable: true } });
  const run = bootNspawn({
    label: "tray",
    config,
    driver: [`CID=${CID}`, readFileSync(join(ROOT, "test", "e2e", "nspawn", "tray.sh"), "utf8")].join("\n"),
    timeoutS: 240,
  });
  t.after(run.remove);
  assert.ok(run.done, run.context());
  assert.deepEqual(run.failed, [], run.context());
  for (const check of ["tray:started-with-vm", "tray:runs-as-user", "tray:one-capability", "tray:reached-session-bus", "tray:under-8mib", "tray:stops-with-vm"]) {
    assert.match(run.result, new RegExp(`^ok ${check}$`, "m"), `${check}\n${run.context()}`);
  }
});
