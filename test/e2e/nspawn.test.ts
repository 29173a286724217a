/**
 * The generated units of a qemu VM, run for real by systemd inside systemd-nspawn (a container booted
 * over this machine's own /usr, ../shared/E2E.md): a connection to the command socket starts the
 * proxy, which starts the prep unit, the console relay and the VM service, whose launcher boots the
 * test guest (TCG); the console relay's PTY yields the guest's console; `systemctl stop` is the
 * graceful stop through QMP (D9); ExecStopPost leaves no sockets or ephemeral disk, after a stop and
 * after a `kill -9` of qemu.
 *
 * vm-run goes the whole way too: the generated bin/vm-run as the VM's user, the command socket, the
 * per-connection proxy unit (its user, sandbox and socket activation as generated), the guest's
 * vmsilo-agent. Only the proxy's transport is swapped, by a drop-in: vhost-vsock is missing here,
 * so instead of `--vsock CID:5000` it connects to agent-relay.ts, the host end of the test guest's
 * virtio-serial agent port (support.ts, bootAgentGuest).
 *
 * The container is the nspawn harness's (nspawn/harness.ts); the cache (guest, vmsilo-tools,
 * virtiofsd stand-in) is bound at /srv/vmsilo-e2e/cache, whatever the checkout's path: the units'
 * PrivateTmp= and ProtectHome= would hide a tree under /tmp or /home from the services. The
 * driver is nspawn/qemu-vm.sh; it records a line per check, which the test reads.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { ROOT } from "../support/harness.js";
import { CACHE, qemuTestConfig, readOr, skip, testGuest, uniqueVmName, vmsiloToolsPackage } from "./support.js";
import { REPO_IN_CONTAINER, STAGE } from "./standins/index.js";
import { bootNspawn, nspawnPrerequisites } from "./nspawn/harness.js";


test("in systemd-nspawn: the socket, prep and VM units start the launcher; the relay shows the console; stop and kill -9 leave nothing", (t) => {
  const why = nspawnPrerequisites();
  if (why) return skip(t, why);
  const g = testGuest();
  if (typeof g === "string") return skip(t, `systemd-nspawn e2e: ${g}`);
  const vm = uniqueVmName("ns");
  const inStage = (p: string) => p.replaceAll(CACHE, `${STAGE}/cache`);
  const config = qemuTestConfig(g, vm, {
    kernelParams: ["console=ttyS0", "quiet"],
    rootOverlay: { type: "raw", size: "32M" },
    stopTimeout: 20,
    // The guest's agent port (test/e2e/guest/init serves it), for vm-run; see the header.
    extraArgs: [
      "-device", "virtio-serial-device,id=agentbus",
      "-chardev", `socket,id=agent,path=/run/vmsilo/${vm}/vmm/agent-port.socket,server=on,wait=off`,
      "-device", "virtserialport,bus=agentbus.0,chardev=agent,name=vmsilo.agent",
    ],
  });
  // vm-shell --ssh's socket-activated channel: its units exist only where openssh is configured.
  (config.programs as Record<string, string>).openssh = "/usr";
  const driver = [`vm=${vm}`, `relay_js=${REPO_IN_CONTAINER}/dist/test/e2e/agent-relay.js`, `tools=${inStage(vmsiloToolsPackage())}`, readFileSync(join(ROOT, "test", "e2e", "nspawn", "qemu-vm.sh"), "utf8")].join("\n");
  const run = bootNspawn({ label: "qemu-vm", config: JSON.parse(inStage(JSON.stringify(config))), driver, timeoutS: 240 });
  t.after(run.remove);
  const result = run.result;
  const context = () => `${run.context()}\n--- vm-run stderr\n${readOr(join(run.results, "vmrun-argv.err"))}\n--- console\n${readOr(join(run.results, "console1.txt"))}`;
  assert.ok(run.done, context());
  assert.deepEqual(run.failed, [], context());
  for (const [name, status] of [["vmrun-argv", 0], ["vmrun-io", 42], ["vmrun-unknown", 2]] as const) {
    assert.match(result, new RegExp(`^${name}-status ${status}$`, "m"), `${name}: ${readOr(join(run.results, `${name}.err`))}\n${context()}`);
  }
  for (const check of ["vmrun-argv", "vmrun-stdin-stdout", "vmrun-stderr", "vmrun-guest-answers", "ssh-channel-banner", "ssh-channel-user-only", "vm-started", "vmm-own-user", "vmm-state-dir-own", "vmm-user-dirs", "vmm-no-capabilities", "vmm-no-new-privs", "vmm-seccomp", "vmm-read-only-system", "guest-ready", "console-hostname", "guest-saw-powerbutton", "stopped-no-qmp-socket", "stopped-no-ephemeral-disk", "killed-failed", "killed-no-qmp-socket", "killed-no-ephemeral-disk"]) {
    assert.match(result, new RegExp(`^ok ${check}$`, "m"), check);
  }
  const stopMs = Number(/^stop-ms (\d+)$/m.exec(result)?.[1]);
  assert.ok(stopMs < 20000, `the graceful stop took ${stopMs} ms (stopTimeout 20 s)`);
  assert.ok(readFileSync(join(run.results, "console1.txt"), "utf8").includes(`VMSILO-TEST hostname ${vm}`));
});
