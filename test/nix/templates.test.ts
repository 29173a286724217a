/**
 * Templates in the NixOS module (stub host, nixpkgs' lib): VMs naming a template share one guest
 * system and its image, built once per template.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { evalModule, skipWithoutLib } from "./support.js";

type Vm = { rootDisk: { path: string }; kernel: string; initramfs: string };

test("20 VMs on 3 templates build 3 guest systems, and each VM runs its template's image", (t) => {
  if (skipWithoutLib(t)) return;
  const r = evalModule("templates");
  assert.deepEqual(r.failedAssertions, []);
  // A template nobody names is not built; the VM without a template keeps its own guest.
  assert.deepEqual(r.guestSystems, { templates: ["browser", "net", "office"], vms: ["solo"] });
  const vms = (r.json as { nixosVms: Record<string, Vm> }).nixosVms;
  for (let i = 0; i < 20; i++) {
    const name = `vm${String(i).padStart(2, "0")}`;
    const template = ["browser", "office", "net"][i % 3]!;
    assert.equal(vms[name]!.rootDisk.path, `/nix/store/44444444444444444444444444444444-vmsilo-rootfs-${template}/nixos.erofs`, name);
    assert.equal(vms[name]!.kernel, `/nix/store/44444444444444444444444444444444-vmsilo-rootfs-${template}/bzImage`, name);
  }
  assert.equal(vms.solo!.rootDisk.path, "/nix/store/44444444444444444444444444444444-vmsilo-rootfs-solo/nixos.erofs");
});

// What is refused, with its messages, is in assertions.test.ts (configs/templates.nix as base).
test("VMs on one template may differ in all that reaches each guest on its own kernel command line", (t) => {
  if (skipWithoutLib(t)) return;
  const r = evalModule("templates", ['{ ... }: { programs.vmsilo.nixosVms.vm03 = { memory = 4096; kernelParams = [ "quiet" ]; sharedDirectories.data.path = "/srv/data"; }; }']);
  assert.deepEqual(r.failedAssertions, []);
  assert.equal((r.json as { nixosVms: Record<string, Vm> }).nixosVms.vm03!.rootDisk.path, (r.json as { nixosVms: Record<string, Vm> }).nixosVms.vm00!.rootDisk.path);
});
