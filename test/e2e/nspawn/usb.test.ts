/**
 * USB passthrough under real systemd (harness.ts, usb.sh): vmsilo-usb run as the user starts the
 * broker's units through polkit; a fake sysfs and /dev/bus/usb (the container's own mounts) and
 * crosvm stand-ins that keep their ports. Moves, the CLI's, polkit's and the broker's refusals,
 * persistent devices at VM start and on plug-in, concurrent callers, and a VMM crash.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { ROOT, example } from "../../support/harness.js";
import { skip } from "../support.js";
import { bootNspawn, nspawnPrerequisites } from "./harness.js";

/** A VM of a stand-in hypervisor, its images at a store path of its own. */
export function usbStandinVm(name: string, n: number, extra: Record<string, unknown> = {}): Record<string, unknown> {
  const store = `/nix/store/${"7".repeat(31)}${n}-vmsilo-rootfs-${name}`;
  return { kernel: `${store}/bzImage`, initramfs: `${store}/initrd`, rootDisk: { path: `${store}/nixos.erofs` }, memory: 512, cpus: 1, ...extra };
}

/** The configuration usb.sh expects: work (persistent devices), personal, idle (not started), web (cloud-hypervisor). */
export function usbConfig(): Record<string, unknown> {
  const base = example("desktop") as Record<string, any>;
  return {
    ...base,
    nixosVms: {
      work: usbStandinVm("work", 1, { usbDevices: [{ vendorId: "0781", productId: "5567", serial: "4C530001" }, { vendorId: "0781", productId: "5568" }] }),
      personal: usbStandinVm("personal", 2),
      idle: usbStandinVm("idle", 3, { usbDevices: [{ vendorId: "046D", productId: "C52B" }] }),
      web: usbStandinVm("web", 4, { hypervisor: "cloud-hypervisor" }),
    },
  };
}

export const usbDriver = (vars: Record<string, string> = {}) => [...Object.entries(vars).map(([k, v]) => `${k}=${v}`), readFileSync(join(ROOT, "test", "e2e", "nspawn", "usb.sh"), "utf8")].join("\n");

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
