# nixos-rebuild switch to $NEW, a configuration where VM gone is removed and VM cv changed, done
# as switch-to-configuration does it: units the new configuration lacks are stopped first (with
# their old definitions, still loaded), then the new units are linked and systemd reloads, then
# changed units are restarted unless they say X-RestartIfChanged=false.
# shellcheck shell=bash disable=SC2154,SC2016
cv_vmm() { pgrep -f "crosvm\.js .*run --name cv " | head -1; }
as_user "$BIN/vm-start cv" >/dev/null 2>&1
as_user "$BIN/vm-start gone" >/dev/null 2>&1
check switch:both-running "until_ 'systemctl is-active -q vmsilo-cv-vm.service && systemctl is-active -q vmsilo-gone-vm.service' 30"
until_ '[ -n "$(cv_vmm)" ] && test -S /run/vmsilo/gone/crosvm-control.socket' 20
old=$(cv_vmm)

active() { systemctl list-units --plain --no-legend --state=active 'vmsilo*' | cut -d' ' -f1; }
for u in $(active); do
  [ -e "$NEW/lib/systemd/system/$u" ] || systemctl stop "$u"
done
install_tree "$NEW"
for u in $(active); do
  f=$NEW/lib/systemd/system/$u
  [ -e "$f" ] && ! grep -qx 'X-RestartIfChanged=false' "$f" && systemctl restart "$u"
done

check switch:removed-vm-stopped "! systemctl is-active -q vmsilo-gone-vm.service && ! systemctl is-failed -q vmsilo-gone-vm.service"
check switch:removed-vm-stopped-gracefully "journalctl -q -u vmsilo-gone-vm.service | grep -q 'control request: powerbtn'"
check switch:removed-vm-cleaned-up "! test -e /run/vmsilo/gone/crosvm-control.socket && ! test -e /run/vmsilo/gone/console && ! test -e /sys/class/net/gone-eth0"
check switch:removed-vm-unit-gone "[ \"\$(systemctl show -P LoadState vmsilo-gone-vm.service)\" = not-found ]"
check switch:changed-vm-kept-running "[ \"\$(cv_vmm)\" = '$old' ] && grep -q 'size=512' /proc/$old/cmdline"
check switch:changed-vm-new-definition-loaded "readlink /etc/systemd/system/vmsilo-cv-vm.service | grep -q '^$NEW/' && [ \"\$(systemctl show -P NeedDaemonReload vmsilo-cv-vm.service)\" = no ]"
as_user "$BIN/vm-stop cv" >/dev/null 2>&1
as_user "$BIN/vm-start cv" >/dev/null 2>&1
until_ '[ -n "$(cv_vmm)" ]' 20
check switch:new-definition-at-next-start "grep -q 'size=768' /proc/\$(cv_vmm)/cmdline"
as_user "$BIN/vm-stop cv" >/dev/null 2>&1
check switch:stopped "! systemctl is-active -q vmsilo-cv-vm.service"
