/**
 * A VM's definition digest (vm-list's "restart pending"): the same for the same VM whatever the
 * tree's store path, different when the VM or a helper it calls changes, and each VM's own.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { example, render } from "../support/harness.js";
import { isLink } from "../../src/render/files.js";

const digests = (config: unknown, prefix: string) => {
  const tree = render(config, prefix);
  const manifest = tree.get("share/vmsilo/manifest.json");
  assert.ok(manifest && !isLink(manifest));
  const vms = JSON.parse(manifest.content).vms as Record<string, { definition: string }>;
  for (const [vm, v] of Object.entries(vms)) {
    const file = tree.get(`share/vmsilo/${vm}/definition`);
    assert.ok(file && !isLink(file) && file.content === `${v.definition}\n`, `${vm}: the file its service records is the manifest's digest`);
  }
  return Object.fromEntries(Object.entries(vms).map(([vm, v]) => [vm, v.definition]));
};

const A = `/nix/store/${"a".repeat(32)}-vmsilo`;
const B = `/nix/store/${"b".repeat(32)}-vmsilo`;

test("definition: independent of the tree's store path, changed with the VM, each VM's own", () => {
  const config = example("desktop") as any;
  const before = digests(config, A);
  assert.equal(new Set(Object.values(before)).size, Object.keys(before).length, "no two VMs share a digest");
  for (const d of Object.values(before)) assert.match(d, /^[0-9a-f]{64}$/);
  assert.deepEqual(digests(config, B), before, "a new store path alone is no new definition");

  const changed = structuredClone(config);
  changed.nixosVms.work.memory = 3000;
  const after = digests(changed, B);
  assert.notEqual(after.work, before.work, "the changed VM's digest changes");
  for (const vm of Object.keys(before).filter((v) => v !== "work")) assert.equal(after[vm], before[vm], `${vm} is unchanged`);

  // A global setting that reaches the VM's units changes it too (the stop timeout).
  const global = structuredClone(config);
  global.stopTimeout = (config.stopTimeout ?? 30) + 7;
  assert.notEqual(digests(global, A).work, before.work);
});

test("the VM's service records its definition at start and removes it at stop", () => {
  const tree = render(example("minimal"), A);
  const unit = tree.get("lib/systemd/system/vmsilo-work-vm.service");
  assert.ok(unit && !isLink(unit));
  assert.match(unit.content, new RegExp(`^ExecStartPre=\\S+/bin/install -m 0644 -- ${A}/share/vmsilo/work/definition /run/vmsilo/work/definition$`, "m"));
  assert.match(unit.content, /^ExecStopPost=\S+\/bin\/rm -f -- \/run\/vmsilo\/work\/definition$/m);
});
