# The tray unit of VM work under real systemd (tray.test.ts): it starts with the VM, runs as the
# user with the one capability ambient, reaches the user's session bus (the user's manager runs
# from the start, harness.ts), then waits for the guest's tray daemon on vsock (none here: no
# host-guest vsock in this machine), and stops with the VM. $CID is the VM's id.
# shellcheck shell=bash disable=SC2154,SC2016
unit=vmsilo-work-tray.service
as_user "$BIN/vm-start work" >"$R/start.txt" 2>&1
check tray:vm-running "until_ 'systemctl is-active -q vmsilo-work-vm.service' 30"
check tray:started-with-vm "until_ 'systemctl is-active -q $unit' 20"
# It says it waits for the guest only once it holds the user's session bus (and so has started).
check tray:reached-session-bus "until_ 'journalctl -q -u $unit | grep -q \"waiting for the guest.s tray daemon at vsock CID $CID port 5001\"' 20"
pid=$(systemctl show -p MainPID --value "$unit")
check tray:runs-as-user "[ \"\$(stat -c %U /proc/$pid)\" = \"$VMSILO_USER\" ]"
# CAP_NET_BIND_SERVICE (bit 10) alone, ambient, permitted and bounding.
check tray:one-capability "grep -Eq '^CapAmb:\s+0000000000000400$' /proc/$pid/status && grep -Eq '^CapBnd:\s+0000000000000400$' /proc/$pid/status"
check tray:session-bus-env "tr '\0' '\n' </proc/$pid/environ | grep -qx \"DBUS_SESSION_BUS_ADDRESS=unix:path=/run/user/\$(id -u $VMSILO_USER)/bus\""
journalctl -q -u "$unit" >"$R/tray-journal.txt" 2>&1
check tray:still-running "systemctl is-active -q $unit && [ \"\$(systemctl show -p MainPID --value $unit)\" = $pid ]"
# (No awk: the container's /etc, and with it the alternatives link, is its own.)
rss() { sed -n 's/^VmRSS:[[:space:]]*\([0-9]*\) kB$/\1/p' "/proc/$pid/status"; }
note "tray rss $(rss) KiB"
check tray:under-8mib "[ \"\$(rss)\" -lt 8192 ]"
as_user "$BIN/vm-stop work" >"$R/stop.txt" 2>&1
check tray:stops-with-vm "until_ '! systemctl is-active -q $unit' 30"
