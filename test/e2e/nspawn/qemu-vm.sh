# The qemu VM's driver (nspawn.test.ts), after the harness's setup: $vm, $relay_js and $tools are set.
# shellcheck shell=bash disable=SC2154,SC2016
run=/run/vmsilo/$vm
# vm-run needs no session, only the user's own command socket (0600): argv kept as it is.
user_argv() { setpriv --reuid="$VMSILO_USER" --regid="$(id -g "$VMSILO_USER")" --clear-groups --reset-env "$@"; }
read_console() {
  # The relay's PTY: what the guest printed, and prints.
  timeout "$2" cat "$run/console" >>"$1" 2>/dev/null &
}

check socket-listening "test -S $run/command.socket"
check vm-not-started "! systemctl is-active -q vmsilo-$vm-vm.service"

# vhost-vsock is missing here: the guest's agent is reached through its virtio-serial port, by a
# drop-in on the proxy, through the host end of that port (see the header).
mkdir -p "/etc/systemd/system/vmsilo-$vm@.service.d" /run/vmsilo-e2e
printf '[Service]\nExecStart=\nExecStart=%s/bin/vmsilo-vsock-proxy --timeout 60 --unix /run/vmsilo-e2e/agent.socket\n' "$tools" >"/etc/systemd/system/vmsilo-$vm@.service.d/e2e-transport.conf"
systemctl daemon-reload
systemd-run -q --unit=e2e-agent-relay -p UMask=0000 node "$relay_js" /run/vmsilo-e2e/agent.socket "$run/vmm/agent-port.socket"
check relay-listening "until_ 'test -S /run/vmsilo-e2e/agent.socket' 10"

# Socket activation: vm-run's connection starts the proxy, which requires (and so starts) the VM
# service; the call returns once the guest has booted and its agent ran the command.
user_argv timeout 120 "$BIN/vm-run" "$vm" printf '%s|' -n 'a b' '' '$HOME' >"$R/vmrun-argv.txt" 2>"$R/vmrun-argv.err"
echo "vmrun-argv-status $?" >>"$R/result"
check vm-started "until_ 'systemctl is-active -q vmsilo-$vm-vm.service' 30"
check vmrun-argv "[ \"\$(cat $R/vmrun-argv.txt)\" = '-n|a b||\$HOME|' ]"
user_argv timeout 60 "$BIN/vm-run" "$vm" sh -c 'tr a-z A-Z; echo err >&2; exit 42' <<<"from the host" >"$R/vmrun-io.txt" 2>"$R/vmrun-io.err"
echo "vmrun-io-status $?" >>"$R/result"
check vmrun-stdin-stdout "[ \"\$(cat $R/vmrun-io.txt)\" = 'FROM THE HOST' ]"
check vmrun-stderr "[ \"\$(cat $R/vmrun-io.err)\" = err ]"
user_argv timeout 60 "$BIN/vm-run" "$vm" hostname >"$R/vmrun-hostname.txt"
check vmrun-guest-answers "[ \"\$(cat $R/vmrun-hostname.txt)\" = $vm ]"
# vm-shell --ssh's channel: the user's connection to ssh.socket starts the ssh proxy unit, which
# reaches the guest's port 22 (here, through a drop-in as above, a stand-in sshd's banner).
mkdir -p "/etc/systemd/system/vmsilo-${vm}_ssh@.service.d"
printf '[Service]\nExecStart=\nExecStart=%s/bin/vmsilo-vsock-proxy --timeout 60 --unix /run/vmsilo-e2e/sshd.socket\n' "$tools" >"/etc/systemd/system/vmsilo-${vm}_ssh@.service.d/e2e-transport.conf"
systemctl daemon-reload
systemd-run -q --unit=e2e-sshd -p UMask=0000 socat UNIX-LISTEN:/run/vmsilo-e2e/sshd.socket,fork SYSTEM:'echo SSH-2.0-vmsilo_e2e; cat >/dev/null'
until_ 'test -S /run/vmsilo-e2e/sshd.socket' 10
user_argv timeout 20 socat -T 5 - "UNIX-CONNECT:$run/ssh.socket" </dev/null >"$R/ssh-banner.txt" 2>&1
check ssh-channel-banner "grep -q '^SSH-2.0-vmsilo_e2e' $R/ssh-banner.txt"
check ssh-channel-user-only "! setpriv --reuid=\"$OTHER_USER\" --regid=\"\$(id -g \"$OTHER_USER\")\" --clear-groups timeout 5 socat -T 2 - UNIX-CONNECT:$run/ssh.socket </dev/null >/dev/null 2>&1"
user_argv timeout 10 "$BIN/vm-run" no-such-vm true 2>"$R/vmrun-unknown.err"
echo "vmrun-unknown-status $?" >>"$R/result"
check prep-active "systemctl is-active -q vmsilo-$vm-prep.service"
check relay-active "systemctl is-active -q vmsilo-$vm-console-relay.service"
check console-pty "until_ 'test -e $run/console' 10"
read_console "$R/console1.txt" 90
check guest-ready "until_ 'grep -q \"VMSILO-TEST ready\" $R/console1.txt' 90"
check console-hostname "grep -q 'VMSILO-TEST hostname $vm' $R/console1.txt"
check console-root "grep -q 'VMSILO-TEST root vd. erofs ro erofs-root-ok' $R/console1.txt"
check console-overlay "grep -q 'VMSILO-TEST overlay raw ephemeral /dev/vd. 65536 writable' $R/console1.txt"
check qmp-socket "test -S $run/vmm/qmp.socket"
check ephemeral-disk "test -f /var/lib/vmsilo/$vm/ephemeral.raw"
check ephemeral-disk-private "[ \"\$(stat -c %a /var/lib/vmsilo/$vm/ephemeral.raw)\" = 600 ]"
mainpid=$(systemctl show -P MainPID "vmsilo-$vm-vm.service")
check launcher-execs-qemu "grep -q qemu-system /proc/$mainpid/cmdline"
# Confined: the VM's own system user, without a single capability, no new privileges, under qemu's
# seccomp filter, on a file system that is read-only but for its sockets' and its overlay disk's
# directories, which are its user's.
check vmm-own-user "[ \"\$(stat -c %U /proc/$mainpid)\" = vmsilo-$vm ] && grep -Eq \"^Uid:[[:space:]]+\$(id -u vmsilo-$vm)[[:space:]]\" /proc/$mainpid/status"
check vmm-state-dir-own "[ \"\$(stat -c %U /var/lib/vmsilo/$vm/ephemeral.raw)\" = vmsilo-$vm ] && [ \"\$(stat -c %U $run/vmm)\" = vmsilo-$vm ] && [ \"\$(stat -c %U $run)\" = root ]"
check vmm-no-capabilities "grep -Eq '^CapBnd:[[:space:]]+0+$' /proc/$mainpid/status && grep -Eq '^CapEff:[[:space:]]+0+$' /proc/$mainpid/status"
check vmm-no-new-privs "grep -Eq '^NoNewPrivs:[[:space:]]+1$' /proc/$mainpid/status"
check vmm-seccomp "grep -Eq '^Seccomp:[[:space:]]+2$' /proc/$mainpid/status"
check vmm-read-only-system "! nsenter -t $mainpid -m -- test -w /etc && ! nsenter -t $mainpid -m -- test -w /var/lib && nsenter -t $mainpid -m -- test -w /var/lib/vmsilo/$vm"
# As its user, in its view: its own directories writable, the VM's root-owned one not.
as_vmm() { nsenter -t "$mainpid" -m -S "$(id -u "vmsilo-$vm")" -G "$(id -g "vmsilo-$vm")" -- "$@"; }
check vmm-user-dirs "as_vmm test -w $run/vmm && as_vmm test -w /var/lib/vmsilo/$vm && ! as_vmm test -w $run"

# The graceful stop: ExecStop= asks through QMP, the guest powers off, ExecStopPost= cleans up.
start=$(date +%s%N)
timeout 60 systemctl stop "vmsilo-$vm-vm.service"
echo "stop-ms $((($(date +%s%N) - start) / 1000000))" >>"$R/result"
sleep 0.5
check guest-saw-powerbutton "grep -q 'VMSILO-TEST powerbutton' $R/console1.txt"
check not-forced "! journalctl -q -u vmsilo-$vm-vm.service | grep -q 'did not shut down\|could not ask'"
check stopped-inactive "systemctl is-active -q vmsilo-$vm-vm.service; [ \$? -ne 0 ] && ! systemctl is-failed -q vmsilo-$vm-vm.service"
check stopped-no-qmp-socket "! test -e $run/vmm/qmp.socket"
check stopped-no-ephemeral-disk "! test -e /var/lib/vmsilo/$vm/ephemeral.raw"
check stopped-relay-down "until_ '! systemctl is-active -q vmsilo-$vm-console-relay.service' 10"
check stopped-no-console-socket "! test -e $run/console-backend.socket && ! test -e $run/console"
check stopped-no-qemu "! pgrep -f qemu-system >/dev/null"

# A VMM that dies (kill -9): ExecStopPost= runs on that path too.
timeout 60 systemctl start "vmsilo-$vm-vm.service"
check restarted "systemctl is-active -q vmsilo-$vm-vm.service"
check restarted-qmp "until_ 'test -S $run/vmm/qmp.socket' 30"
mainpid=$(systemctl show -P MainPID "vmsilo-$vm-vm.service")
kill -9 "$mainpid"
check killed-failed "until_ 'systemctl is-failed -q vmsilo-$vm-vm.service' 30"
check killed-no-qmp-socket "until_ '! test -e $run/vmm/qmp.socket' 10"
check killed-no-ephemeral-disk "! test -e /var/lib/vmsilo/$vm/ephemeral.raw"
check killed-no-qemu "! pgrep -f qemu-system >/dev/null"
check killed-relay-gone "until_ '! systemctl is-active -q vmsilo-$vm-console-relay.service' 10"
# Nothing stale blocks the next start: the VM boots again after the kill.
: >"$R/console2.txt"
systemctl reset-failed "vmsilo-$vm-vm.service"
timeout 60 systemctl start "vmsilo-$vm-vm.service"
until_ "test -e $run/console" 30
read_console "$R/console2.txt" 90
check restart-after-kill "until_ 'grep -q \"VMSILO-TEST ready\" $R/console2.txt' 90"
timeout 60 systemctl stop "vmsilo-$vm-vm.service"
check final-no-qmp-socket "! test -e $run/vmm/qmp.socket"
check final-no-ephemeral-disk "! test -e /var/lib/vmsilo/$vm/ephemeral.raw"
check final-no-qemu "! pgrep -f qemu-system >/dev/null"
