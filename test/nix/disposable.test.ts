/**
 * Disposable VMs in the NixOS module (stub host, nixpkgs' lib): vmsilo.json carries the pattern with
 * its disposable settings (the generator derives the slots), one guest system serves every slot,
 * and a qemu disposable VM's slots each get their own system user, named as the generator names them.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { evalModule, skipWithoutLib } from "./support.js";
import { resolve } from "../../src/generate.js";
import { vmmUserName } from "../../src/model/derive.js";

test("a qemu disposable VM: its settings in vmsilo.json, one guest, a system user per slot", (t) => {
  if (skipWithoutLib(t)) return;
  const r = evalModule("minimal", ['{ lib, pkgs, ... }: { programs.vmsilo.nixosVms.work = { hypervisor = "qemu"; disposable = { enable = true; slots = 3; preload = 1; }; }; programs.vmsilo.packages.qemu = lib.mkDefault (pkgs.qemu or "/nix/store/qqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqq-qemu"); }']);
  assert.deepEqual(r.failedAssertions, []);
  const json = r.json as { nixosVms: Record<string, { disposable: unknown }> };
  assert.deepEqual(json.nixosVms.work!.disposable, { enable: true, slots: 3, preload: 1 });
  assert.deepEqual(r.guestSystems, { templates: [], vms: ["work"] });
  const slots = resolve(r.json).vms.filter((v) => v.slot !== null).map((v) => v.name);
  assert.deepEqual(slots, ["work-d1", "work-d2", "work-d3"]);
  const users = Object.keys((r.wiring as { systemUsers: Record<string, unknown> }).systemUsers).filter((u) => u.startsWith("vmsilo-")).sort();
  assert.deepEqual(users, slots.map(vmmUserName).sort());
});
