# vm-list, vm-status, vm-start/vm-stop with several VMs under real systemd (vm-list.test.ts): VMs
# running, stopped and failed; the USB broker's state; restart pending after nixos-rebuild switch
# to $NEW, where VM work changed; vm-stop --all --wait in reverse dependency order.
# shellcheck shell=bash disable=SC2154,SC2016
list() { as_user "$1/bin/vm-list --json" 2>"$R/list-stderr.txt"; }
# The value of jq filter $2 over the VM list saved in $R/$1.json.
field() { jq -c "$2" "$R/$1.json"; }

as_user "$BIN/vm-start net work web" >"$R/start.txt" 2>&1
check start:several "until_ 'systemctl is-active -q vmsilo-net-vm.service && systemctl is-active -q vmsilo-work-vm.service && systemctl is-active -q vmsilo-web-vm.service' 30"
rm -f /var/lib/vmsilo/broken-missing.img
as_user "$BIN/vm-start broken" >"$R/broken-start.txt" 2>&1
check start:broken-fails "systemctl is-failed -q vmsilo-broken-vm.service"

list "$TREE" >"$R/before.json"
check list:every-vm "[ \"\$(field before '[.[].name]')\" = '[\"broken\",\"idle\",\"net\",\"web\",\"work\"]' ]"
check list:states "[ \"\$(field before 'map({(.name): .state}) | add')\" = '{\"broken\":\"failed\",\"idle\":\"stopped\",\"net\":\"running\",\"web\":\"running\",\"work\":\"running\"}' ]"
check list:work-facts "[ \"\$(field before '.[] | select(.name == \"work\") | [.hypervisor, .memory, .color, .netvm, .usb, .unit]')\" = '[\"crosvm\",512,\"#0000ff\",null,[],\"vmsilo-work-vm.service\"]' ]"
check list:web-is-cloud-hypervisor "[ \"\$(field before '.[] | select(.name == \"web\") | .hypervisor')\" = '\"cloud-hypervisor\"' ]"
check list:nothing-pending "[ \"\$(field before '[.[] | select(.restartPending)] | length')\" = 0 ]"
check list:definition-recorded "cmp -s /run/vmsilo/work/definition $TREE/share/vmsilo/work/definition"
as_user "$BIN/vm-list --running --json" >"$R/running.json"
check list:running-only "[ \"\$(field running '[.[].name]')\" = '[\"net\",\"web\",\"work\"]' ]"
as_user "$BIN/vm-list" >"$R/table.txt"
check list:table "grep -Eq '^work +running +crosvm +512 MiB +#0000ff +- +- +-$' $R/table.txt && grep -Eq '^broken +failed +cloud-hypervisor ' $R/table.txt"

# The USB broker's state file: its devices show at their VM; a file that is not one shows none.
echo '[{"vm":"work","devpath":"1-3.2","vid":"046d","pid":"c52b","serial":"X1","busnum":"1","devnum":"4","port":1}]' >/run/vmsilo/usb-state.json
list "$TREE" >"$R/usb.json"
check list:usb-device "[ \"\$(field usb '.[] | select(.name == \"work\") | .usb')\" = '[{\"devpath\":\"1-3.2\",\"vid\":\"046d\",\"pid\":\"c52b\"}]' ] && [ \"\$(field usb '[.[] | select(.name != \"work\") | .usb[]] | length')\" = 0 ]"
as_user "$BIN/vm-list" >"$R/usb-table.txt"
check list:usb-in-table "grep -Eq '^work +running .* 1-3\.2 +-$' $R/usb-table.txt"
echo '{"vm": "work"' >/run/vmsilo/usb-state.json
list "$TREE" >"$R/usb-bad.json"
check list:usb-invalid-ignored "[ \"\$(field usb-bad '[.[].usb[]] | length')\" = 0 ] && grep -q 'ignoring /run/vmsilo/usb-state.json' $R/list-stderr.txt"
rm -f /run/vmsilo/usb-state.json

as_user "$BIN/vm-status work" >"$R/status.txt" 2>&1
check status:row "grep -Eq '^work +running ' $R/status.txt"
check status:units "grep -Eq 'vmsilo-work-vm\.service +loaded +active +running' $R/status.txt && grep -Eq 'vmsilo-work-console-relay\.service +loaded +active' $R/status.txt && grep -q 'vmsilo-work\.socket' $R/status.txt"
check status:console "grep -q 'Console, the last 20 lines of /run/vmsilo/work/console.log:' $R/status.txt && until_ 'as_user \"$BIN/vm-status work\" | grep -q \"work login: \"' 20"
as_user "$BIN/vm-status nope" >/dev/null 2>&1
rc=$?
check status:unknown-vm "[ $rc = 2 ]"

# nixos-rebuild switch, as switch.sh does it (no VM removed here).
install_tree "$NEW"
for u in $(systemctl list-units --plain --no-legend --state=active 'vmsilo*' | cut -d' ' -f1); do
  f=$NEW/lib/systemd/system/$u
  [ -e "$f" ] && ! grep -qx 'X-RestartIfChanged=false' "$f" && systemctl restart "$u"
done
list "$NEW" >"$R/after.json"
check switch:restart-pending "[ \"\$(field after 'map({(.name): .restartPending}) | add')\" = '{\"broken\":false,\"idle\":false,\"net\":false,\"web\":false,\"work\":true}' ]"
check switch:new-memory-listed "[ \"\$(field after '.[] | select(.name == \"work\") | .memory')\" = 768 ]"
as_user "$NEW/bin/vm-list" >"$R/after-table.txt"
check switch:pending-in-table "grep -Eq '^work +running .* pending$' $R/after-table.txt && grep -Eq '^web +running .* -$' $R/after-table.txt"

# Reverse dependency order: work and web (which depend on net) are down before net is asked to stop.
as_user "$NEW/bin/vm-stop --all --wait" >"$R/stop-all.txt" 2>&1
rc=$?
check stop-all:exit-0 "[ $rc = 0 ]"
check stop-all:all-stopped "[ -z \"\$(systemctl list-units --plain --no-legend --state=active 'vmsilo-*-vm.service')\" ]"
ts() { systemctl show -P "$2" "vmsilo-$1-vm.service"; }
net_stop=$(ts net ActiveExitTimestampMonotonic)
check stop-all:clients-before-net "[ $net_stop -gt 0 ] && [ \$(ts work InactiveEnterTimestampMonotonic) -le $net_stop ] && [ \$(ts web InactiveEnterTimestampMonotonic) -le $net_stop ]"
check stop-all:definitions-removed "! test -e /run/vmsilo/work/definition && ! test -e /run/vmsilo/net/definition"
as_user "$NEW/bin/vm-list --running --json" >"$R/none.json"
check stop-all:none-running "[ \"\$(field none 'length')\" = 0 ]"
as_user "$NEW/bin/vm-start work" >/dev/null 2>&1
list "$NEW" >"$R/restarted.json"
check switch:pending-cleared-by-restart "[ \"\$(field restarted '.[] | select(.name == \"work\") | [.state, .restartPending]')\" = '[\"running\",false]' ]"
as_user "$NEW/bin/vm-stop --all" >/dev/null 2>&1
systemctl reset-failed 'vmsilo*'
