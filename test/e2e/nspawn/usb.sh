# USB passthrough under real systemd (usb.test.ts, usb-bench.ts): the broker started as the user
# through polkit by vmsilo-usb, against a fake sysfs (a tmpfs over /sys/bus, this container's own)
# and /dev/bus/usb with real character-device nodes, and crosvm stand-ins that keep their ports.
# $bench_runs set: only the latency measurement (usb-bench.ts).
# shellcheck shell=bash disable=SC2154,SC2034
CONF=$TREE/share/vmsilo/usb.conf
BROKER=$(sed -n 's/^ExecStart=\([^ ]*\) .*/\1/p' /etc/systemd/system/vmsilo-usb-attach@.service)
ctl() { "$(sed -n 's/^crosvm\t//p' "$CONF")" usb list "/run/vmsilo/$1/crosvm-control.socket"; }

# The fake USB world: bus path, vid, pid, bus, dev, serial.
mount -t tmpfs -o mode=0755 vmsilo-e2e-sysfs /sys/bus
mkdir -p /sys/bus/usb/devices /dev/bus/usb
plug() {
  local d=/sys/bus/usb/devices/$1 node minor=$((($4 - 1) * 128 + $5 - 1))
  mkdir -p "$d"
  echo "$2" >"$d/idVendor"
  echo "$3" >"$d/idProduct"
  echo "$4" >"$d/busnum"
  echo "$5" >"$d/devnum"
  echo "189:$minor" >"$d/dev"
  echo 00 >"$d/bDeviceClass"
  [ -n "${6-}" ] && echo "$6" >"$d/serial"
  node=/dev/bus/usb/$(printf %03d "$4")/$(printf %03d "$5")
  mkdir -p "$(dirname "$node")"
  rm -f "$node"
  mknod "$node" c 189 "$minor"
}
plug 1-3.2 046d c52b 1 4 AB:CD:EF
plug 2-1 0781 5567 2 7 4C530001
check fake-usb-world "[ -c /dev/bus/usb/001/004 ] && [ \"\$(cat /sys/bus/usb/devices/1-3.2/idVendor)\" = 046d ]"

as_user "$BIN/vm-start work personal" >"$R/start.txt" 2>&1
check vms-started "systemctl is-active -q vmsilo-work-vm.service vmsilo-personal-vm.service && until_ '[ -S /run/vmsilo/work/crosvm-control.socket ] && [ -S /run/vmsilo/personal/crosvm-control.socket ]' 20"
# Persistent devices: work's stick (matched with its serial) was attached when work started.
check persistent-at-start "until_ '[ \"\$(ctl work)\" = \"devices 1 0781 5567\" ]' 10 && jq -e 'map(select(.vm == \"work\" and .devpath == \"2-1\")) | length == 1' /run/vmsilo/usb-state.json >/dev/null"
STICK='devices 1 0781 5567'

if [ -n "${bench_runs-}" ]; then
  # $R/bench.txt, a line "KIND MICROSECONDS" per run (usb-bench.ts takes the p50 of each). The CLI: start to device attached on the stand-in (it returns once the
  # broker has the stand-in's "ok"); systemctl alone: a start of the broker's unit through polkit
  # that finds the device already there (the broker reads the state and answers); the broker alone,
  # as root without systemd.
  cat >/run/vmsilo-e2e-bench.sh <<EOS
for i in \$(seq $bench_runs); do
  t0=\${EPOCHREALTIME/./}; $BIN/vmsilo-usb attach work 1-3.2 >/dev/null || echo FAIL-attach >&2; t1=\${EPOCHREALTIME/./}
  echo "cli \$(((t1 - t0)))"
  t0=\${EPOCHREALTIME/./}; systemctl start 'vmsilo-usb-attach@work:1-3.2.service' || echo FAIL-again >&2; t1=\${EPOCHREALTIME/./}
  echo "systemctl \$(((t1 - t0)))"
  $BIN/vmsilo-usb detach work 1-3.2 >/dev/null || echo FAIL-detach >&2
done
EOS
  chmod 0755 /run/vmsilo-e2e-bench.sh
  as_user "bash /run/vmsilo-e2e-bench.sh" >"$R/bench.txt" 2>"$R/bench-err.txt"
  for _ in $(seq "$bench_runs"); do
    t0=${EPOCHREALTIME/./}
    "$BROKER" "$CONF" attach work:1-3.2 >/dev/null || echo FAIL-broker >>"$R/bench-err.txt"
    t1=${EPOCHREALTIME/./}
    echo "broker $((t1 - t0))" >>"$R/bench.txt"
    "$BROKER" "$CONF" detach work:1-3.2 >/dev/null
  done
  check bench-clean "! grep -q FAIL $R/bench-err.txt"
  return 0
fi

# 1. List, attach by VID:PID in upper case, move, detach: the CLI prints the broker's own words.
as_user "$BIN/vmsilo-usb list" >"$R/list.txt" 2>&1
check cli-list "grep -Eq '^046d:c52b +1-3\.2 +AB:CD:EF +- +- +-$' $R/list.txt"
as_user "$BIN/vmsilo-usb attach work 046D:C52B" >"$R/attach.txt" 2>&1
check cli-attach "grep -qx 'Attached 046d:c52b (1-3.2) to work on port 2' $R/attach.txt && [ \"\$(ctl work)\" = \"\$STICK 2 046d c52b\" ]"
as_user "$BIN/vm-list --json" >"$R/vm-list.json"
check vm-list-shows-usb "jq -e '.[] | select(.name == \"work\") | .usb | sort_by(.devpath) == [{\"devpath\":\"1-3.2\",\"vid\":\"046d\",\"pid\":\"c52b\"}, {\"devpath\":\"2-1\",\"vid\":\"0781\",\"pid\":\"5567\"}]' $R/vm-list.json >/dev/null"
as_user "$BIN/vmsilo-usb attach personal 1-3.2" >"$R/move.txt" 2>&1
check cli-move "grep -q 'to personal on port 1' $R/move.txt && [ \"\$(ctl work)\" = \"\$STICK\" ] && [ \"\$(ctl personal)\" = 'devices 1 046d c52b' ]"
as_user "$BIN/vmsilo-usb list --json" >"$R/list.json"
check cli-list-json "jq -e '.[] | select(.devpath == \"1-3.2\") | .vm == \"personal\"' $R/list.json >/dev/null"
as_user "$BIN/vmsilo-usb detach work 1-3.2" >"$R/detach-wrong.txt" 2>&1
rc=$?
check cli-detach-not-there "[ $rc = 1 ] && grep -q 'no USB device 1-3.2 is attached to work' $R/detach-wrong.txt"
as_user "$BIN/vmsilo-usb detach personal 046d:c52b" >"$R/detach.txt" 2>&1
check cli-detach "grep -qx 'Detached 046d:c52b (1-3.2) from personal' $R/detach.txt && [ \"\$(ctl personal)\" = devices ] && [ \"\$(jq length /run/vmsilo/usb-state.json)\" = 1 ]"

# 2. Refusals: the CLI's (cloud-hypervisor, a VM not running, usage), polkit's (another user, a
#    unit outside the pattern) and the broker's (as root, past polkit; it says why, exit 1).
as_user "$BIN/vmsilo-usb attach web 1-3.2" >"$R/ch.txt" 2>&1
rc=$?
check cli-refuses-cloud-hypervisor "[ $rc = 1 ] && grep -q 'VM web uses cloud-hypervisor, which has no USB passthrough' $R/ch.txt"
as_user "$BIN/vmsilo-usb attach idle 1-3.2" >"$R/idle.txt" 2>&1
rc=$?
check broker-refuses-stopped-vm "[ $rc = 1 ] && grep -qx 'vmsilo-usb: Error: VM idle is not running' $R/idle.txt"
as_user "$BIN/vmsilo-usb attach work 1-3.2 extra" >/dev/null 2>&1
rc1=$?
as_user "$BIN/vmsilo-usb attach work ../1-3" >/dev/null 2>&1
rc2=$?
check cli-usage-errors "[ $rc1 = 2 ] && [ $rc2 = 2 ]"
as_other "$BIN/vmsilo-usb attach work 1-3.2" >"$R/mallory.txt" 2>&1
rc=$?
note "mallory saw: $(tr "\n" " " <"$R/mallory.txt" | head -c 300)"
check polkit-refuses-other-user "[ $rc = 1 ] && [ \"\$(ctl work)\" = \"\$STICK\" ] && grep -qi 'access denied\|authentication' $R/mallory.txt"
for unit in 'vmsilo-usb-attach@web:1-3.2.service' 'vmsilo-usb-attach@work:1-3.2:1.0.service' 'vmsilo-usb-attach@work:01-3.service' 'vmsilo-usb-attach@idle\x2f..:1-3.2.service' 'vmsilo-usb-stop@work:1-3.2.service'; do
  as_user "systemctl start '$unit'" >"$R/polkit-unit.txt" 2>&1
  rc=$?
  check "polkit-refuses:$unit" "[ $rc != 0 ] && grep -qi 'access denied\|authentication\|not found\|invalid' $R/polkit-unit.txt"
done
for inst in 'work:1-3.2:1.0' 'work:01-3' 'ghost:1-3.2' 'work:9-9' 'work:1-3.2.1.1.1.1.1.1'; do
  systemctl start "vmsilo-usb-attach@$inst.service" 2>/dev/null
  rc=$?
  check "broker-refuses:$inst" "[ $rc != 0 ] && [ \"\$(systemctl show -P Result 'vmsilo-usb-attach@$inst.service')\" = exit-code ] && journalctl -q -o cat -u 'vmsilo-usb-attach@$inst.service' | grep -q '^Error: '"
done
# A node that is not the device sysfs names: a link to root's file.
rm -f /dev/bus/usb/001/004 && ln -s /etc/shadow /dev/bus/usb/001/004
as_user "$BIN/vmsilo-usb attach work 1-3.2" >"$R/forged.txt" 2>&1
rc=$?
check broker-refuses-forged-node "[ $rc = 1 ] && grep -q 'is not the character device 189:3' $R/forged.txt && [ \"\$(ctl work)\" = \"\$STICK\" ]"
rm -f /dev/bus/usb/001/004 && mknod /dev/bus/usb/001/004 c 189 3

# 3. Persistent devices plugged in later: what udev's SYSTEMD_WANTS starts, the VM's USB unit.
plug 2-2 0781 5568 2 8 ANY
systemctl start vmsilo-work-usb.service
check persistent-hot-plug "[ \"\$(ctl work)\" = \"\$STICK 2 0781 5568\" ]"
systemctl start vmsilo-idle-usb.service 2>/dev/null
check persistent-unit-never-starts-vm "! systemctl is-active -q vmsilo-idle-vm.service"

# 4. Concurrent callers through polkit and systemd: the state ends as the stand-ins' ports.
plug 3-1 1234 0001 3 2
plug 3-2 1234 0002 3 3
plug 3-3 1234 0003 3 4
cat >/run/vmsilo-e2e-usb-load.sh <<EOS
for i in \$(seq 8); do
  for vm in work personal; do
    for d in 3-1 3-2 3-3; do
      case \$(((i + \${#vm}) % 2)) in 0) $BIN/vmsilo-usb attach \$vm \$d ;; 1) $BIN/vmsilo-usb detach \$vm \$d ;; esac >/dev/null 2>&1 &
    done
  done
  wait
done
EOS
chmod 0755 /run/vmsilo-e2e-usb-load.sh
as_user "bash /run/vmsilo-e2e-usb-load.sh"
for vm in work personal; do
  want=$(jq -r --arg vm "$vm" '[.[] | select(.vm == $vm)] | sort_by(.port) | ["devices"] + map("\(.port) \(.vid) \(.pid)") | join(" ")' /run/vmsilo/usb-state.json)
  check "concurrent-state-is-$vm's-ports" "[ \"\$(ctl $vm)\" = '$want' ]"
done

# 5. A crash (the VMM killed): the VM's devices leave the state with it.
kill -9 "$(systemctl show -P MainPID vmsilo-work-vm.service)"
check crash-forgets-devices "until_ '! systemctl is-active -q vmsilo-work-vm.service' 15 && until_ '[ \"\$(jq \"map(select(.vm == \\\"work\\\")) | length\" /run/vmsilo/usb-state.json)\" = 0 ]' 10"
