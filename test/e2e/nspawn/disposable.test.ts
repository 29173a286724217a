/**
 * Disposable VMs under real systemd (harness.ts, disposable.sh): a qemu disposable VM with two
 * slots, one preloaded, booting the test guest (TCG). vm-run --disposable takes a slot through its
 * use socket, runs the command with vm-run's semantics in a fresh instance, and the slot is wiped
 * (its instance stopped; the preloaded one booted afresh) when vm-run ends; two at once get two
 * slots, a third finds the pool full and fails with its message; a vm-run killed with -9 still has
 * its instance wiped. The guests' agents are reached as in nspawn.test.ts (virtio-serial and a
 * relay, by drop-ins), everything else is the generated tree. It also times a disposable `true`
 * on the preloaded slot and on a cold one (test/bench/disposable-bench.ts prints them).
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { ROOT } from "../../support/harness.js";
import { CACHE, qemuTestConfig, readOr, skip, testGuest, uniqueVmName, vmsiloToolsPackage } from "../support.js";
import { REPO_IN_CONTAINER, STAGE } from "../standins/index.js";
import { bootNspawn, nspawnPrerequisites, type NspawnRun } from "./harness.js";

/** Boots the disposable VM's container and runs disposable.sh; null (with why) when it cannot run here. */
export function runDisposables(label: string): NspawnRun | string {
  const why = nspawnPrerequisites();
  if (why) return why;
  const g = testGuest();
  if (typeof g === "string") return `systemd-nspawn e2e: ${g}`;
  const pat = uniqueVmName("dsp").slice(0, 20);
  const inStage = (p: string) => p.replaceAll(CACHE, `${STAGE}/cache`);
  const config = qemuTestConfig(g, pat, {
    kernelParams: ["console=ttyS0", "quiet"],
    stopTimeout: 20,
    disposable: { enable: true, slots: 2, preload: 1 },
    // Each slot's qemu binds its agent port in its working directory (a drop-in sets it per slot).
    extraArgs: ["-device", "virtio-serial-device,id=agentbus", "-chardev", "socket,id=agent,path=agent-port.socket,server=on,wait=off", "-device", "virtserialport,bus=agentbus.0,chardev=agent,name=vmsilo.agent"],
  }) as Record<string, any>;
  config.programs.jq = "/usr";
  config.startTimeout = 90;
  const driver = [`pat=${pat}`, `relay_js=${REPO_IN_CONTAINER}/dist/test/e2e/agent-relay.js`, `tools=${inStage(vmsiloToolsPackage())}`, readFileSync(join(ROOT, "test", "e2e", "nspawn", "disposable.sh"), "utf8")].join("\n");
  return bootNspawn({ label, config: JSON.parse(inStage(JSON.stringify(config))), driver, timeoutS: 600 });
}

test("in systemd-nspawn: vm-run --disposable takes a slot, runs the command in a fresh instance, wipes it after, even after kill -9; a full pool fails with its message", (t) => {
  const run = runDisposables("disposable");
  if (typeof run === "string") return skip(t, run);
  t.after(run.remove);
  const result = run.result;
  const context = () => `${run.context()}\n--- errs\n${["preloaded", "cold", "full", "use", "h1", "h2", "killed", "idle"].map((n) => `${n}: ${readOr(join(run.results, `${n}.err`))}`).join("\n")}`;
  assert.ok(run.done, context());
  assert.deepEqual(run.failed, [], context());
  for (const [name, status] of [["preloaded", 0], ["cold", 0], ["full", 125], ["holder1", 0], ["holder2", 0], ["use", 7]] as const) {
    assert.match(result, new RegExp(`^${name}-status ${status}$`, "m"), `${name}\n${context()}`);
  }
  const n = (k: string) => Number(new RegExp(`^${k} (\\d+)$`, "m").exec(result)?.[1]);
  assert.ok(n("full-ms") < 5000, `a full pool answered after ${n("full-ms")} ms`);
  console.log(`disposable true: preloaded ${n("preloaded-ms")} ms, cold ${n("cold-ms")} ms`);
});
