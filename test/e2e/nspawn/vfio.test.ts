/**
 * isolatedPciDevices under real systemd (harness.ts): the fake PCI bus of ../../support/fake-pci.ts
 * is bound over the container's /sys/bus/pci, its kernel side runs on this side of the bind, and
 * vmsilo-vfio-bind.service, which vmsilo.target wants at boot, moves the card to vfio-pci; a
 * restart changes nothing, and a card whose interface is up fails the unit, untouched, with the
 * reason in its journal.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { join } from "node:path";
import { example, tempDir } from "../../support/harness.js";
import { BDF, fakePciBus, KERNEL_SIDE } from "../../support/fake-pci.js";
import { skip } from "../support.js";
import { bootNspawn, nspawnPrerequisites } from "./harness.js";

const DRIVER = String.raw`
dev=/sys/bus/pci/devices/${BDF}
unit=vmsilo-vfio-bind.service
check boot:bound "systemctl is-active -q $unit && [ \"\$(readlink $dev/driver)\" = ../../drivers/vfio-pci ] && [ \"\$(cat $dev/driver_override)\" = vfio-pci ]"
check boot:says-so "journalctl -u $unit -o cat | grep -qx 'vmsilo: PCI device ${BDF} bound to vfio-pci'"
systemctl restart $unit
check restart:idempotent "systemctl is-active -q $unit && [ \"\$(journalctl -u $unit -o cat | grep -c 'bound to vfio-pci')\" = 1 ]"
# The host takes the card back and brings its interface up: the unit refuses it and touches nothing.
systemctl stop $unit
ln -sfn ../../drivers/iwlwifi $dev/driver
echo '(null)' >$dev/driver_override
echo 0x1003 >$dev/net/wlp3s0/flags
check in-use:fails "! systemctl start $unit && systemctl is-failed -q $unit"
check in-use:reason "journalctl -u $unit -o cat | grep -q 'PCI device ${BDF} is in use by the host: its network interface wlp3s0 is up'"
check in-use:untouched "[ \"\$(readlink $dev/driver)\" = ../../drivers/iwlwifi ] && [ \"\$(cat $dev/driver_override)\" = '(null)' ]"
`;

test("isolatedPciDevices: vmsilo-vfio-bind.service binds the card at boot under systemd, again idempotently, and fails on a card in use", async (t) => {
  const why = nspawnPrerequisites();
  if (why) return skip(t, why);
  const pci = join(tempDir("nspawn-pci"), "pci");
  fakePciBus(pci);
  const kernel = spawn("bash", ["-c", `pci=${JSON.stringify(pci)}\n${KERNEL_SIDE}\nwait`], { stdio: "ignore", detached: true });
  t.after(() => {
    try {
      process.kill(-kernel.pid!, "SIGKILL");
    } catch {
      // already gone
    }
  });
  const config = example("minimal") as Record<string, any>;
  config.isolatedPciDevices = [BDF];
  const run = bootNspawn({ label: "vfio", config, driver: DRIVER, lateBinds: [[pci, "/sys/bus/pci"]], timeoutS: 240 });
  t.after(run.remove);
  assert.ok(run.done, run.context());
  assert.deepEqual(run.failed, [], run.context());
  for (const c of ["boot:bound", "boot:says-so", "restart:idempotent", "in-use:fails", "in-use:reason", "in-use:untouched"]) assert.match(run.result, new RegExp(`^ok ${c}$`, "m"), run.context());
});
