# The lifecycle of one VM under systemd (lifecycle.ts writes the facts it reads: $vm, units, helpers,
# leftovers, taps, nnp, seccomp, strict, privnet, console_expect, graceful, vmm_match, wayland_app_id).
# shellcheck shell=bash disable=SC2154
# What a stopped VM ($1: a label) must not leave: an active or failed unit ($2: the VM unit may have
# failed, after a kill -9), a socket or PTY its units remove, a tap.
after_stop() {
  local tag=$1 vm_may_fail=$2 u p t
  for u in "${units[@]}"; do
    check "$vm:$tag:inactive:$u" "until_ '! systemctl is-active -q $u' 20"
    [ "$vm_may_fail" = 1 ] && [ "$u" = "vmsilo-$vm-vm.service" ] && continue
    # Debian's C virtiofsd (the stand-in's) exits 1 when its frontend vanishes; the Rust one exits 0.
    [ "$vm_may_fail" = 1 ] && [[ "$u" = "vmsilo-$vm-virtiofsd-"* ]] && continue
    check "$vm:$tag:not-failed:$u" "! systemctl is-failed -q $u"
  done
  # (a few seconds' grace: the kernel and a loaded machine may take a moment after the last step)
  for p in "${leftovers[@]}"; do check "$vm:$tag:removed:$p" "until_ '! test -e $p' 10"; done
  for t in "${taps[@]}"; do check "$vm:$tag:no-tap:$t" "until_ '! test -e /sys/class/net/$t' 10"; done
}

# The VM service and all its units up (a relay ordered after the VM starts last).
wait_up() {
  local u
  check "$vm:$1:vm-active" "until_ 'systemctl is-active -q vmsilo-$vm-vm.service' 40"
  # (the shared home's unit only runs while the shared home does not exist yet: its condition)
  for u in "${units[@]}"; do until_ "systemctl is-active -q $u || [ \"\$(systemctl show -P ConditionResult $u)\" = no ]" 20; done
  # The guest is up once its console says so (the qemu test guest boots for a few seconds).
  check "$vm:$1:guest-up" "until_ \"grep -Eq '$console_expect' /run/vmsilo/$vm/console.log\" 90"
}

lifecycle() {
  local rc u pid
  note "at ${SECONDS}s: $vm"
  as_user "$BIN/vm-start $vm" >"$R/$vm-start.txt" 2>&1
  rc=$?
  check "$vm:vm-start-as-user" "[ $rc = 0 ]"
  wait_up start
  for u in "${units[@]}"; do check "$vm:active:$u" "until_ 'systemctl is-active -q $u' 20"; done
  check "$vm:command-socket" "systemctl is-active -q vmsilo-$vm.socket && [ \"\$(stat -c %U /run/vmsilo/$vm/command.socket)\" = $VMSILO_USER ]"
  for u in "${nnp[@]}"; do
    pid=$(systemctl show -P MainPID "$u")
    [ "$pid" = 0 ] || check "$vm:no-new-privs:$u" "grep -Eq '^NoNewPrivs:\s+1' /proc/$pid/status"
  done
  for u in "${seccomp[@]}"; do
    pid=$(systemctl show -P MainPID "$u")
    [ "$pid" = 0 ] || check "$vm:seccomp:$u" "grep -Eq '^Seccomp:\s+2' /proc/$pid/status"
  done
  for u in "${strict[@]}"; do check "$vm:protect-system:$u" "[ \"\$(systemctl show -P ProtectSystem $u)\" = strict ]"; done
  if [ -n "$wayland_app_id" ]; then
    # The real security-context helper: ready once the compositor has the VM's context; its socket
    # the user's alone; the GPU backend (the crosvm stand-in, which connects at start) inside it.
    u=vmsilo-$vm-wayland-seccontext.service
    check "$vm:seccontext-notify-ready" "[ \"\$(systemctl show -P Type $u)\" = notify ] && systemctl is-active -q $u"
    check "$vm:seccontext-context" "grep -qxF 'context vmsilo $wayland_app_id $vm' $R/compositor.log"
    check "$vm:seccontext-socket-user-only" "[ \"\$(stat -c '%F %U %a' /run/vmsilo/$vm/wayland/seccontext.socket)\" = 'socket $VMSILO_USER 600' ]"
    pid=$(systemctl show -P MainPID "vmsilo-$vm-gpu.service")
    check "$vm:gpu-backend-confined" "grep -qxF 'client $pid confined vmsilo $wayland_app_id $vm' $R/compositor.log"
  fi
  for u in "${privnet[@]}"; do check "$vm:private-network:$u" "[ \"\$(systemctl show -P PrivateNetwork $u)\" = yes ]"; done

  check "$vm:console-pty" "until_ 'test -e /run/vmsilo/$vm/console' 20"
  # The console, as the user sees it: vm-shell on a terminal (script(1)), one Enter, then detach.
  (sleep 1; printf '\r'; sleep 1.5) | as_user "timeout 3 script -qfec '$BIN/vm-shell $vm' /dev/null" >"$R/$vm-shell.txt" 2>&1
  check "$vm:vm-shell-console" "grep -Eq '$console_expect' $R/$vm-shell.txt"
  check "$vm:console-log-readable" "as_user 'cat /run/vmsilo/$vm/console.log' | grep -Eq '$console_expect'"

  # polkit: nothing but the VM services for the user, nothing for another user.
  as_user "for u in ${units[*]} systemd-journald.service; do [ \$u = vmsilo-$vm-vm.service ] && continue; for v in start stop restart; do systemctl \$v \$u 2>/dev/null && echo \"ALLOWED \$v \$u\"; done; done; true" >"$R/$vm-deny.txt" 2>&1
  check "$vm:user-only-vm-services" "! grep -q ALLOWED $R/$vm-deny.txt"
  check "$vm:other-user-cannot-stop" "! as_other '$BIN/vm-stop $vm' >/dev/null 2>&1"
  for u in "${units[@]}"; do check "$vm:still-active:$u" "systemctl is-active -q $u"; done

  as_user "$BIN/vm-stop $vm" >"$R/$vm-stop.txt" 2>&1
  rc=$?
  check "$vm:vm-stop-as-user" "[ $rc = 0 ]"
  check "$vm:graceful-stop" "{ journalctl -q -u vmsilo-$vm-vm.service; cat /run/vmsilo/$vm/console.log; } | grep -Eq '$graceful'"
  check "$vm:not-forced" "! journalctl -q -u vmsilo-$vm-vm.service | grep -q 'did not shut down\|could not ask'"
  after_stop stop 0
  check "$vm:other-user-cannot-start" "! as_other '$BIN/vm-start $vm' >/dev/null 2>&1 && ! systemctl is-active -q vmsilo-$vm-vm.service"
  # The user outside a session (a background service, cron): not local and active, refused.
  check "$vm:user-without-session-cannot-start" "! setpriv --reuid=$VMSILO_USER --regid=\$(id -g $VMSILO_USER) --clear-groups $BIN/vm-start $vm >/dev/null 2>&1 && ! systemctl is-active -q vmsilo-$vm-vm.service"

  # A VMM that dies: ExecStopPost= runs on that path too, and the helpers go with it.
  as_user "$BIN/vm-start $vm" >/dev/null 2>&1
  wait_up kill
  # The launcher execs (or starts) the VMM once the unit is active.
  until_ "pgrep -f '$vmm_match.*/run/vmsilo/$vm/' >/dev/null" 20
  pid=$(pgrep -f "$vmm_match.*/run/vmsilo/$vm/")
  check "$vm:vmm-found" "[ -n '$pid' ]"
  [ -n "$pid" ] && kill -9 "$pid"
  after_stop killed 1
  systemctl reset-failed "vmsilo-$vm-vm.service" 2>/dev/null
  as_user "$BIN/vm-start $vm" >/dev/null 2>&1
  wait_up restart
  as_user "$BIN/vm-stop $vm" >/dev/null 2>&1
  after_stop restart-stop 0
}
