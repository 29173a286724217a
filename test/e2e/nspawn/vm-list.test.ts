/**
 * vm-list, vm-status and the several-VM forms of vm-start and vm-stop under real systemd
 * (harness.ts, vm-list.sh), with stand-in VMs: running ones, one stopped, one whose start failed,
 * the USB broker's state file, restart pending after a switch that changed one VM, and
 * `vm-stop --all --wait` stopping the VMs that depend on another before it.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { ROOT, example } from "../../support/harness.js";
import { skip } from "../support.js";
import { bootNspawn, nspawnPrerequisites } from "./harness.js";

/** A VM of a stand-in hypervisor, its images at a store path of its own. */
function standinVm(name: string, n: number, extra: Record<string, unknown> = {}): Record<string, unknown> {
  const store = `/nix/store/${"5".repeat(31)}${n}-vmsilo-rootfs-${name}`;
  return { kernel: `${store}/bzImage`, initramfs: `${store}/initrd`, rootDisk: { path: `${store}/nixos.erofs` }, memory: 512, cpus: 1, ...extra };
}

test("vm-list --json under systemd: running, stopped, failed, USB devices, restart pending after a switch; vm-status; vm-stop --all --wait", (t) => {
  const why = nspawnPrerequisites();
  if (why) return skip(t, why);
  const base = example("desktop") as Record<string, any>;
  const config = {
    ...base,
    nixosVms: {
      net: standinVm("net", 1),
      work: standinVm("work", 2, { dependsOn: ["net"], color: "blue" }),
      web: standinVm("web", 3, { hypervisor: "cloud-hypervisor", dependsOn: ["net"] }),
      idle: standinVm("idle", 4),
      // cloud-hypervisor: its unit is ready once booted, so a failed boot fails the start itself.
      broken: standinVm("broken", 5, { hypervisor: "cloud-hypervisor", additionalDisks: [{ path: "/var/lib/vmsilo/broken-missing.img", id: "missing" }] }),
    },
  };
  const next = structuredClone(config);
  next.nixosVms.work.memory = 768;
  const NEW = `/nix/store/${"6".repeat(32)}-vmsilo`;
  const run = bootNspawn({
    label: "vm-list",
    config,
    extraTrees: [{ prefix: NEW, config: next }],
    driver: [`NEW=${NEW}`, readFileSync(join(ROOT, "test", "e2e", "nspawn", "vm-list.sh"), "utf8")].join("\n"),
    timeoutS: 300,
  });
  t.after(run.remove);
  assert.ok(run.done, run.context());
  assert.deepEqual(run.failed, [], run.context());
  for (const check of ["list:states", "list:usb-device", "list:usb-invalid-ignored", "status:console", "switch:restart-pending", "stop-all:clients-before-net", "switch:pending-cleared-by-restart"]) {
    assert.match(run.result, new RegExp(`^ok ${check}$`, "m"), `${check}\n${run.context()}`);
  }
});
