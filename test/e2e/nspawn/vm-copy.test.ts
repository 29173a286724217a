/**
 * vm-copy between two booted guests under real systemd (harness.ts, vm-copy.sh): two qemu VMs of
 * the test guest (TCG), reached as in nspawn.test.ts. A file and a directory land in
 * ~/Incoming/<source>/ of the destination; a second copy of a taken name is refused and changes
 * nothing; a symbolic link and a name with a newline are refused on the host, and nothing of them
 * reaches the destination. ("../" and absolute names, which only a hostile source's own tar would
 * write, and the size and entry limits are proved on vmsilo-copy-check itself, with crafted
 * streams: test/vmrun/copy-check.test.ts. The test guest's busybox shell runs its own tar applet
 * whatever is in /bin, so the guest cannot stand in for such a source here.)
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { ROOT } from "../../support/harness.js";
import { CACHE, qemuTestConfig, readOr, skip, testGuest, uniqueVmName, vmsiloToolsPackage } from "../support.js";
import { REPO_IN_CONTAINER, STAGE } from "../standins/index.js";
import { bootNspawn, nspawnPrerequisites } from "./harness.js";

test("in systemd-nspawn: vm-copy moves files between two booted guests, never overwrites, refuses links and newlines in names", (t) => {
  const why = nspawnPrerequisites();
  if (why) return skip(t, why);
  const g = testGuest();
  if (typeof g === "string") return skip(t, `systemd-nspawn e2e: ${g}`);
  const src = uniqueVmName("cps");
  const dst = uniqueVmName("cpd");
  const inStage = (p: string) => p.replaceAll(CACHE, `${STAGE}/cache`);
  const agentPort = (vm: string) => ["-device", "virtio-serial-device,id=agentbus", "-chardev", `socket,id=agent,path=/run/vmsilo/${vm}/vmm/agent-port.socket,server=on,wait=off`, "-device", "virtserialport,bus=agentbus.0,chardev=agent,name=vmsilo.agent"];
  const config = qemuTestConfig(g, src, { kernelParams: ["console=ttyS0", "quiet"], extraArgs: agentPort(src) }) as Record<string, any>;
  config.nixosVms[dst] = qemuTestConfig(g, dst, { kernelParams: ["console=ttyS0", "quiet"], extraArgs: agentPort(dst) }).nixosVms as Record<string, unknown>;
  config.nixosVms[dst] = (config.nixosVms[dst] as Record<string, unknown>)[dst];
  config.startTimeout = 90;
  const driver = [`src=${src}`, `dst=${dst}`, `relay_js=${REPO_IN_CONTAINER}/dist/test/e2e/agent-relay.js`, `tools=${inStage(vmsiloToolsPackage())}`, readFileSync(join(ROOT, "test", "e2e", "nspawn", "vm-copy.sh"), "utf8")].join("\n");
  const run = bootNspawn({ label: "vm-copy", config: JSON.parse(inStage(JSON.stringify(config))), driver, timeoutS: 400 });
  t.after(run.remove);
  const context = () => `${run.context()}\n--- errs\n${["setup", "copy", "again", "link", "newline"].map((n) => `${n}: ${readOr(join(run.results, `${n}.err`))}`).join("\n")}\n--- dest\n${readOr(join(run.results, "dest.txt"))}`;
  assert.ok(run.done, context());
  assert.deepEqual(run.failed, [], context());
  for (const [name, status] of [["copy", 0], ["again", 1], ["link", 1], ["newline", 1]] as const) {
    assert.match(run.result, new RegExp(`^${name}-status ${status}$`, "m"), `${name}\n${context()}`);
  }
});
