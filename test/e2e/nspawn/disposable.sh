# The disposable VM's driver (disposable.test.ts), after the harness's setup: $pat (the disposable
# VM, slots $pat-d1 preloaded and $pat-d2), $relay_js and $tools are set.
# shellcheck shell=bash disable=SC2154,SC2016
d1=$pat-d1
d2=$pat-d2
user_argv() { setpriv --reuid="$VMSILO_USER" --regid="$(id -g "$VMSILO_USER")" --clear-groups --reset-env "$@"; }
ms_since() { echo $((($(date +%s%N) - $1) / 1000000)); }
invocation() { systemctl show -P InvocationID "vmsilo-$1-vm.service"; }
in_use() { test -e "/run/vmsilo/$1/use/in-use"; }
free_slot() { ! test -e "/run/vmsilo/$1/use"; }

check use-sockets "test -S /run/vmsilo/$d1/use.socket && test -S /run/vmsilo/$d2/use.socket"
check pool-lock "[ \"\$(stat -c %U:%a /run/vmsilo/$pat/pool.lock)\" = $VMSILO_USER:600 ]"
check use-socket-user-only "[ \"\$(stat -c %U:%a /run/vmsilo/$d1/use.socket)\" = $VMSILO_USER:600 ]"

# vhost-vsock is missing here: each slot's guest agent is reached through its virtio-serial port
# (qemu binds it in the VM's own directory, the unit's working directory by a drop-in), through a
# relay, by a drop-in on the slot's proxy (see nspawn.test.ts).
mkdir -p /run/vmsilo-e2e
for s in "$d1" "$d2"; do
  mkdir -p "/etc/systemd/system/vmsilo-$s@.service.d" "/etc/systemd/system/vmsilo-$s-vm.service.d"
  printf '[Service]\nExecStart=\nExecStart=%s/bin/vmsilo-vsock-proxy --timeout 90 --unix /run/vmsilo-e2e/%s.socket\n' "$tools" "$s" >"/etc/systemd/system/vmsilo-$s@.service.d/e2e-transport.conf"
  printf '[Service]\nWorkingDirectory=/run/vmsilo/%s/vmm\n' "$s" >"/etc/systemd/system/vmsilo-$s-vm.service.d/e2e-agent-port.conf"
  systemd-run -q --unit="e2e-relay-$s" -p UMask=0000 node "$relay_js" "/run/vmsilo-e2e/$s.socket" "/run/vmsilo/$s/vmm/agent-port.socket"
done
systemctl daemon-reload
# The preloaded slot was started with vmsilo.target, before the drop-ins: again, with them.
systemctl stop "vmsilo-$d1-vm.service"
systemctl reset-failed "vmsilo-$d1-vm.service" 2>/dev/null
systemctl start "vmsilo-$d1-vm.service"
check preload-wanted-by-target "systemctl show -P Wants vmsilo.target | grep -q vmsilo-$d1-vm.service"
check preload-booted "until_ 'systemctl is-active -q vmsilo-$d1-vm.service' 30"
check cold-slot-down "! systemctl is-active -q vmsilo-$d2-vm.service"
check preload-ready "until_ 'grep -q \"VMSILO-TEST ready\" /run/vmsilo/$d1/console.log' 120"
check idle-slot-no-plain-run "! user_argv timeout 10 $BIN/vm-run $d1 true 2>$R/idle.err && grep -q 'is a slot of a disposable VM and not in use' $R/idle.err"
check idle-slot-channel-does-not-start "! user_argv timeout 10 socat -T 3 - UNIX-CONNECT:/run/vmsilo/$d2/command.socket </dev/null >/dev/null 2>&1; ! systemctl is-active -q vmsilo-$d2-vm.service"
check other-user-no-slot "! setpriv --reuid=$OTHER_USER --regid=\$(id -g $OTHER_USER) --clear-groups --reset-env timeout 10 $BIN/vm-run --disposable $pat true 2>/dev/null"

# 1. The preloaded slot: no boot.
before=$(invocation "$d1")
t0=$(date +%s%N)
user_argv timeout 120 "$BIN/vm-run" --disposable "$pat" hostname >"$R/preloaded.out" 2>"$R/preloaded.err"
echo "preloaded-status $?" >>"$R/result"
echo "preloaded-ms $(ms_since "$t0")" >>"$R/result"
check preloaded-took-d1 "[ \"\$(cat $R/preloaded.out)\" = $d1 ]"
# A used preloaded slot is wiped (its instance stopped) and replaced by a fresh one.
check preload-replaced "until_ 'free_slot $d1 && systemctl is-active -q vmsilo-$d1-vm.service && [ \"\$(invocation $d1)\" != $before ]' 60"
check preload-replaced-ready "until_ 'grep -q \"VMSILO-TEST ready\" /run/vmsilo/$d1/console.log' 120"

# 2. Two at once get two slots; a third finds the pool full and fails at once with its message.
mkfifo "$R/f1" "$R/f2"
user_argv "$BIN/vm-run" --disposable "$pat" sh -c 'hostname; echo leftover >/tmp/mark; read -r x' <"$R/f1" >"$R/h1.out" 2>"$R/h1.err" &
h1=$!
exec 7>"$R/f1"
check holder1-in-use "until_ 'in_use $d1 && test -s $R/h1.out' 60"
# The slot holder's memory, while it holds the slot (a per-VM helper's budget is 8 MiB).
pid=$(systemctl show -P MainPID "vmsilo-${d1}_use.service")
echo "slot-use-pid $pid" >>"$R/result"
echo "slot-use-rss-kib $(sed -n 's/^VmRSS:[[:space:]]*\([0-9]*\) kB$/\1/p' "/proc/$pid/status")" >>"$R/result"
# The cold slot, timed, while the preloaded one is held.
t0=$(date +%s%N)
user_argv timeout 180 "$BIN/vm-run" --disposable "$pat" true 2>"$R/cold.err"
echo "cold-status $?" >>"$R/result"
echo "cold-ms $(ms_since "$t0")" >>"$R/result"
# The second holder waits for the slot the cold run left to be wiped, then boots it afresh.
user_argv "$BIN/vm-run" --disposable "$pat" sh -c 'hostname; echo leftover >/tmp/mark; read -r x' <"$R/f2" >"$R/h2.out" 2>"$R/h2.err" &
h2=$!
exec 8>"$R/f2"
check holder2-in-use "until_ 'in_use $d2 && test -s $R/h2.out' 150"
t0=$(date +%s%N)
user_argv timeout 30 "$BIN/vm-run" --disposable "$pat" true 2>"$R/full.err"
echo "full-status $?" >>"$R/result"
echo "full-ms $(ms_since "$t0")" >>"$R/result"
check full-message "grep -q 'all 2 slots of disposable VM $pat are in use' $R/full.err"
user_argv "$BIN/vm-list" --json >"$R/list.json" 2>"$R/list.err"
check list-shows-slots "jq -e '[.[] | select(.disposable == \"$pat\") | .use] == [\"in-use\", \"in-use\"]' $R/list.json >/dev/null"
echo >&7
echo >&8
exec 7>&- 8>&-
wait "$h1"
echo "holder1-status $?" >>"$R/result"
wait "$h2"
echo "holder2-status $?" >>"$R/result"
check two-slots "[ \"\$(cat $R/h1.out $R/h2.out | sort | tr '\n' ' ')\" = '$d1 $d2 ' ]"

# 3. vm-run's semantics in a fresh instance: argv exact, stdin, stdout, stderr, the exit status;
# nothing of the slot's last use is left (the holders wrote /tmp/mark in both).
check holders-freed "until_ 'free_slot $d2' 60"
user_argv timeout 180 "$BIN/vm-run" --disposable "$pat" sh -c 'cat /tmp/mark 2>/dev/null || echo fresh; printf "%s|" "$@"; tr a-z A-Z; echo err >&2; exit 7' sh -n 'a b' '' <<<"from the host" >"$R/use.out" 2>"$R/use.err"
echo "use-status $?" >>"$R/result"
check use-output "[ \"\$(cat $R/use.out)\" = \"\$(printf 'fresh\n-n|a b||FROM THE HOST')\" ]"
check use-stderr "[ \"\$(cat $R/use.err)\" = err ]"
check cold-slot-wiped "until_ 'free_slot $d2 && ! systemctl is-active -q vmsilo-$d2-vm.service && ! test -e /run/vmsilo/$d2/console.log' 60"
check no-failed-units "! systemctl --failed --plain --no-legend | grep -q vmsilo"

# 4. A vm-run --disposable killed with -9: the kernel closes its use connection, and the slot is wiped all the same.
until_ "free_slot $d1 && systemctl is-active -q vmsilo-$d1-vm.service" 60
# setpriv itself in the background (not the function, whose subshell would be what $! names): it execs vm-run.
setpriv --reuid="$VMSILO_USER" --regid="$(id -g "$VMSILO_USER")" --clear-groups --reset-env "$BIN/vm-run" --disposable "$pat" sleep 1000 >/dev/null 2>"$R/killed.err" &
victim=$!
check killed-in-use "until_ 'in_use $d1 || in_use $d2' 150"
slot=$d1
in_use "$d2" && slot=$d2
until_ "systemctl is-active -q vmsilo-$slot-vm.service" 30
before=$(invocation "$slot")
sleep 2
check killed-is-vm-run "grep -q vm-run /proc/$victim/cmdline"
kill -9 "$victim"
wait "$victim" 2>/dev/null
# Stopped (a cold slot), or stopped and booted afresh (the preloaded one): either way a new instance.
check killed-wiped "until_ 'free_slot $slot && { ! systemctl is-active -q vmsilo-$slot-vm.service || [ \"\$(invocation $slot)\" != $before ]; }' 90"
check killed-no-failed-units "! systemctl --failed --plain --no-legend | grep -q vmsilo"
echo "killed-slot $slot" >>"$R/result"

# 5. SIGTERM (and Ctrl-C's SIGINT, which vm-run does not catch either) ends vm-run; the slot is wiped the same way.
until_ "free_slot $d1 && free_slot $d2" 90
setpriv --reuid="$VMSILO_USER" --regid="$(id -g "$VMSILO_USER")" --clear-groups --reset-env "$BIN/vm-run" --disposable "$pat" sleep 1000 >/dev/null 2>"$R/termed.err" &
victim=$!
check termed-in-use "until_ 'in_use $d1 || in_use $d2' 150"
slot=$d1
in_use "$d2" && slot=$d2
until_ "systemctl is-active -q vmsilo-$slot-vm.service" 30
before=$(invocation "$slot")
kill -TERM "$victim"
wait "$victim" 2>/dev/null
echo "termed-status $?" >>"$R/result"
check termed-wiped "until_ 'free_slot $slot && { ! systemctl is-active -q vmsilo-$slot-vm.service || [ \"\$(invocation $slot)\" != $before ]; }' 90"
