/**
 * USB passthrough under real systemd (harness.ts, usb.sh): vmsilo-usb run as the user starts the
 * broker's units through polkit; a fake sysfs and /dev/bus/usb (the container's own mounts) and
 * crosvm stand-ins that keep their ports. Moves, the CLI's, polkit's and the broker's refusals,
 * persistent devices at VM start and on plug-in, concurrent callers, and a VMM crash.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { skip } from "../support.js";
import { bootNspawn, nspawnPrerequisites } from "./harness.js";
import { usbConfig, usbDriver } from "./usb-world.js";

test("USB under systemd: vmsilo-usb through polkit, every refusal with its reason, persistent and hot-plugged devices, concurrent callers, a crash", (t) => {
  const why = nspawnPrerequisites();
  if (why) return skip(t, why);
  const run = bootNspawn({ label: "usb", config: usbConfig(), driver: usbDriver(), timeoutS: 420 });
  t.after(run.remove);
  assert.ok(run.done, run.context());
  assert.deepEqual(run.failed, [], run.context());
  for (const check of ["cli-attach", "cli-move", "cli-detach", "vm-list-shows-usb", "cli-refuses-cloud-hypervisor", "broker-refuses-stopped-vm", "polkit-refuses-other-user", "broker-refuses-forged-node", "persistent-at-start", "persistent-hot-plug", "concurrent-state-is-work's-ports", "crash-forgets-devices"]) {
    assert.match(run.result, new RegExp(`^ok ${check}$`, "m"), `${check}\n${run.context()}`);
  }
});
