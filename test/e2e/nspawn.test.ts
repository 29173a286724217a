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
 * Everything the container needs is bound at /srv/vmsilo-e2e, whatever the checkout's path: the
 * units' PrivateTmp= and ProtectHome= would hide a tree under /tmp or /home from the services.
 *
 * The container runs one driver unit (the shell script below) that records a line per check in
 * /results/result and powers the container off; the test reads the file.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { copyFileSync, cpSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { render, writeTree } from "../support/harness.js";
import { CACHE, NSPAWN_STAGE, nspawnBootFailure, nspawnPrerequisites, qemuTestConfig, readOr, RELAY, runNspawn, skip, testGuest, uniqueVmName, vmsiloToolsPackage } from "./support.js";

const DRIVER = String.raw`#!/bin/bash
# vmsilo e2e driver, run inside the container as vmsilo-e2e.service.
set -u
vm=$1
stage=$2
R=/results
run=/run/vmsilo/$vm
check() {
  if eval "$2"; then echo "ok $1" >>"$R/result"; else echo "FAIL $1 ($2)" >>"$R/result"; fi
}
# Wait up to $2 seconds for the condition $1.
until_() {
  local end=$((SECONDS + $2))
  until eval "$1"; do
    [ "$SECONDS" -ge "$end" ] && return 1
    sleep 0.1
  done
}
read_console() {
  # The relay's PTY: what the guest printed, and prints.
  timeout "$2" cat "$run/console" >>"$1" 2>/dev/null &
}

systemctl start vmsilo.target
check socket-listening "test -S $run/command.socket"
check vm-not-started "! systemctl is-active -q vmsilo-$vm-vm.service"

# The host end of the guest's agent port, for the proxy's drop-in (see the header).
mkdir -p /run/vmsilo-e2e
systemd-run -q --unit=vmsilo-e2e-agent-relay -p UMask=0000 node "$stage/agent-relay.js" /run/vmsilo-e2e/agent.socket "$run/agent-port.socket"
check relay-listening "until_ 'test -S /run/vmsilo-e2e/agent.socket' 10"
# As the VM's user: the command socket is 0600 and its own.
as_user() { setpriv --reuid=65534 --regid=65534 --clear-groups --reset-env "$@"; }

# Socket activation: vm-run's connection starts the proxy, which requires (and so starts) the VM
# service; the call returns once the guest has booted and its agent ran the command.
as_user timeout 120 "$stage/out/bin/vm-run" "$vm" printf '%s|' -n 'a b' '' '$HOME' >"$R/vmrun-argv.txt" 2>"$R/vmrun-argv.err"
echo "vmrun-argv-status $?" >>"$R/result"
check vm-started "until_ 'systemctl is-active -q vmsilo-$vm-vm.service' 30"
check vmrun-argv "[ \"\$(cat $R/vmrun-argv.txt)\" = '-n|a b||\$HOME|' ]"
as_user timeout 60 "$stage/out/bin/vm-run" "$vm" sh -c 'tr a-z A-Z; echo err >&2; exit 42' <<<"from the host" >"$R/vmrun-io.txt" 2>"$R/vmrun-io.err"
echo "vmrun-io-status $?" >>"$R/result"
check vmrun-stdin-stdout "[ \"\$(cat $R/vmrun-io.txt)\" = 'FROM THE HOST' ]"
check vmrun-stderr "[ \"\$(cat $R/vmrun-io.err)\" = err ]"
as_user timeout 60 "$stage/out/bin/vm-run" "$vm" hostname >"$R/vmrun-hostname.txt"
check vmrun-guest-answers "[ \"\$(cat $R/vmrun-hostname.txt)\" = $vm ]"
as_user timeout 10 "$stage/out/bin/vm-run" no-such-vm true 2>"$R/vmrun-unknown.err"
echo "vmrun-unknown-status $?" >>"$R/result"
check prep-active "systemctl is-active -q vmsilo-$vm-prep.service"
check relay-active "systemctl is-active -q vmsilo-$vm-console-relay.service"
check console-pty "until_ 'test -e $run/console' 10"
read_console "$R/console1.txt" 90
check guest-ready "until_ 'grep -q \"VMSILO-TEST ready\" $R/console1.txt' 90"
check console-hostname "grep -q 'VMSILO-TEST hostname $vm' $R/console1.txt"
check console-root "grep -q 'VMSILO-TEST root vd. erofs ro erofs-root-ok' $R/console1.txt"
check console-overlay "grep -q 'VMSILO-TEST overlay raw ephemeral /dev/vd. 65536 writable' $R/console1.txt"
check qmp-socket "test -S $run/qmp.socket"
check ephemeral-disk "test -f /var/lib/vmsilo/$vm/ephemeral.raw"
check ephemeral-disk-private "[ \"\$(stat -c %a /var/lib/vmsilo/$vm/ephemeral.raw)\" = 600 ]"
mainpid=$(systemctl show -P MainPID "vmsilo-$vm-vm.service")
check launcher-execs-qemu "grep -q qemu-system /proc/$mainpid/cmdline"
# Confined: root without a single capability, no new privileges, under qemu's seccomp filter.
check vmm-no-capabilities "grep -Eq '^CapBnd:[[:space:]]+0+$' /proc/$mainpid/status && grep -Eq '^CapEff:[[:space:]]+0+$' /proc/$mainpid/status"
check vmm-no-new-privs "grep -Eq '^NoNewPrivs:[[:space:]]+1$' /proc/$mainpid/status"
check vmm-seccomp "grep -Eq '^Seccomp:[[:space:]]+2$' /proc/$mainpid/status"
# Its file system is read-only but for its own directory and its overlay disk's.
check vmm-read-only-system "! nsenter -t $mainpid -m -- test -w /etc && ! nsenter -t $mainpid -m -- test -w /var/lib && nsenter -t $mainpid -m -- test -w $run && nsenter -t $mainpid -m -- test -w /var/lib/vmsilo/$vm"

# The graceful stop: ExecStop= asks through QMP, the guest powers off, ExecStopPost= cleans up.
start=$(date +%s%N)
timeout 60 systemctl stop "vmsilo-$vm-vm.service"
echo "stop-ms $((($(date +%s%N) - start) / 1000000))" >>"$R/result"
sleep 0.5
check guest-saw-powerbutton "grep -q 'VMSILO-TEST powerbutton' $R/console1.txt"
check not-forced "! journalctl -q -u vmsilo-$vm-vm.service | grep -q 'did not shut down\|could not ask'"
check stopped-inactive "systemctl is-active -q vmsilo-$vm-vm.service; [ \$? -ne 0 ] && ! systemctl is-failed -q vmsilo-$vm-vm.service"
check stopped-no-qmp-socket "! test -e $run/qmp.socket"
check stopped-no-ephemeral-disk "! test -e /var/lib/vmsilo/$vm/ephemeral.raw"
check stopped-relay-down "until_ '! systemctl is-active -q vmsilo-$vm-console-relay.service' 10"
check stopped-no-console-socket "! test -e $run/console-backend.socket && ! test -e $run/console"
check stopped-no-qemu "! pgrep -f qemu-system >/dev/null"
# What the VM's units said up to here, in case a later step hangs until the container's timeout.
journalctl -q --no-pager -u "vmsilo-*" >"$R/journal.txt" 2>&1

# A VMM that dies (kill -9): ExecStopPost= runs on that path too.
timeout 60 systemctl start "vmsilo-$vm-vm.service"
check restarted "systemctl is-active -q vmsilo-$vm-vm.service"
check restarted-qmp "until_ 'test -S $run/qmp.socket' 30"
mainpid=$(systemctl show -P MainPID "vmsilo-$vm-vm.service")
kill -9 "$mainpid"
check killed-failed "until_ 'systemctl is-failed -q vmsilo-$vm-vm.service' 30"
check killed-no-qmp-socket "until_ '! test -e $run/qmp.socket' 10"
check killed-no-ephemeral-disk "! test -e /var/lib/vmsilo/$vm/ephemeral.raw"
check killed-no-qemu "! pgrep -f qemu-system >/dev/null"
# Nothing stale blocks the next start: the VM boots again after the kill.
: >"$R/console2.txt"
# The relay outlived the VMM (PartOf= does not follow a failure); each VMM connection gets a new PTY
# behind the same link, so read once the link points at the new one.
old_pty=$(readlink "$run/console")
timeout 60 systemctl start "vmsilo-$vm-vm.service"
until_ '[ "$(readlink "$run/console")" != "$old_pty" ]' 30
read_console "$R/console2.txt" 90
check restart-after-kill "until_ 'grep -q \"VMSILO-TEST ready\" $R/console2.txt' 90"
timeout 60 systemctl stop "vmsilo-$vm-vm.service"
check final-no-qmp-socket "! test -e $run/qmp.socket"
check final-no-ephemeral-disk "! test -e /var/lib/vmsilo/$vm/ephemeral.raw"
check final-no-qemu "! pgrep -f qemu-system >/dev/null"

journalctl -q --no-pager -u "vmsilo-*" -u vmsilo-e2e-agent-relay >"$R/journal.txt" 2>&1
echo done >>"$R/result"
systemctl poweroff --no-block
`;

test("in systemd-nspawn: the socket, prep and VM units start the launcher; the relay shows the console; stop and kill -9 leave nothing", (t) => {
  const missing = nspawnPrerequisites();
  if (missing) return skip(t, `systemd-nspawn e2e: ${missing}`);
  const g = testGuest();
  if (typeof g === "string") return skip(t, `systemd-nspawn e2e: ${g}`);

  const vm = uniqueVmName("ns");
  // The container sees CACHE (guest, vmsilo-tools, virtiofsd stand-in, this run's tree) at STAGE.
  const STAGE = NSPAWN_STAGE;
  const inStage = (p: string) => p.replaceAll(CACHE, STAGE);
  const config = qemuTestConfig(g, vm, {
    kernelParams: ["console=ttyS0", "quiet"],
    rootOverlay: { type: "raw", size: "32M" },
    stopTimeout: 20,
    // The guest's agent port (test/e2e/guest/init serves it), for vm-run; see the header.
    extraArgs: [
      "-device", "virtio-serial-device,id=agentbus",
      "-chardev", `socket,id=agent,path=/run/vmsilo/${vm}/agent-port.socket,server=on,wait=off`,
      "-device", "virtserialport,bus=agentbus.0,chardev=agent,name=vmsilo.agent",
    ],
  });
  // The container's own users: nobody exists there (systemd-sysusers), alice would not.
  config.user = { name: "nobody", uid: 65534, gid: 65534, group: "nogroup", home: "/nonexistent", runtimeDir: "/run/user/65534" };
  const dir = join(CACHE, `nspawn-run-${process.pid}-${vm}`);
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const out = join(dir, "out");
  writeTree(render(JSON.parse(inStage(JSON.stringify(config))), inStage(out)), out);
  copyFileSync(RELAY, join(dir, "agent-relay.js"));
  const units = join(dir, "units");
  const results = join(dir, "results");
  mkdirSync(results);
  cpSync(join(out, "lib", "systemd", "system"), units, { recursive: true });
  const tools = inStage(vmsiloToolsPackage());
  mkdirSync(join(units, `vmsilo-${vm}@.service.d`));
  writeFileSync(
    join(units, `vmsilo-${vm}@.service.d`, "e2e-transport.conf"),
    `# vhost-vsock is missing here: the guest's agent is reached through its virtio-serial port.\n[Service]\nExecStart=\nExecStart=${tools}/bin/vmsilo-vsock-proxy --timeout 60 --unix /run/vmsilo-e2e/agent.socket\n`,
  );
  writeFileSync(join(dir, "driver.sh"), DRIVER, { mode: 0o755 });
  writeFileSync(
    join(units, "vmsilo-e2e.service"),
    ["[Unit]", "Description=vmsilo e2e driver", "After=basic.target", "", "[Service]", "Type=oneshot", `ExecStart=${inStage(join(dir, "driver.sh"))} ${vm} ${inStage(dir)}`, "StandardOutput=journal", ""].join("\n"),
  );
  const tmpfiles = join(dir, "tmpfiles");
  mkdirSync(tmpfiles);
  cpSync(join(out, "lib", "tmpfiles.d", "vmsilo.conf"), join(tmpfiles, "vmsilo.conf"));

  const r = runNspawn({ units, tmpfiles, results, unit: "vmsilo-e2e.service", timeoutS: 240 });
  const result = readOr(join(results, "result"));
  const context = () =>
    `nspawn exit ${r.status}\n--- result\n${result}\n--- vm-run stderr\n${readOr(join(results, "vmrun-argv.err"))}\n--- console\n${readOr(join(results, "console1.txt"))}\n--- journal\n${readOr(join(results, "journal.txt")).split("\n").slice(-60).join("\n")}\n--- nspawn\n${(r.stdout + r.stderr).slice(-3000)}`;
  const cannot = nspawnBootFailure(r, results, result.includes("done"));
  if (cannot) return skip(t, cannot);
  assert.match(result, /^done$/m, context());
  const failed = result.split("\n").filter((l) => l.startsWith("FAIL"));
  assert.deepEqual(failed, [], context());
  for (const [name, status] of [["vmrun-argv", 0], ["vmrun-io", 42], ["vmrun-unknown", 2]] as const) {
    assert.match(result, new RegExp(`^${name}-status ${status}$`, "m"), `${name}: ${readOr(join(results, `${name}.err`))}\n${context()}`);
  }
  for (const check of ["vmrun-argv", "vmrun-stdin-stdout", "vmrun-stderr", "vmrun-guest-answers", "vm-started", "vmm-no-capabilities", "vmm-no-new-privs", "vmm-seccomp", "vmm-read-only-system", "guest-ready", "console-hostname", "guest-saw-powerbutton", "stopped-no-qmp-socket", "stopped-no-ephemeral-disk", "killed-failed", "killed-no-qmp-socket", "killed-no-ephemeral-disk"]) {
    assert.match(result, new RegExp(`^ok ${check}$`, "m"), check);
  }
  const stopMs = Number(/^stop-ms (\d+)$/m.exec(result)?.[1]);
  assert.ok(stopMs < 20000, `the graceful stop took ${stopMs} ms (stopTimeout 20 s)`);
  assert.ok(readFileSync(join(results, "console1.txt"), "utf8").includes(`VMSILO-TEST hostname ${vm}`));
});
