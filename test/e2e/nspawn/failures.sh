# VMs that fail (vms.test.ts): what the user is left to read.
# shellcheck shell=bash disable=SC2154

# A guest that panics while nobody is attached: the unit fails, its console output stays behind.
as_user "$BIN/vm-start panic" >"$R/panic-start.txt" 2>&1
check panic:failed "until_ 'systemctl is-failed -q vmsilo-panic-vm.service' 30"
check panic:relay-gone-with-it "until_ '! systemctl is-active -q vmsilo-panic-console-relay.service' 20"
check panic:console-log-kept "as_user 'cat /run/vmsilo/panic/console.log' | grep -q 'Kernel panic - not syncing'"
systemctl reset-failed vmsilo-panic-vm.service

# A start that fails (a disk that is not there, cloud-hypervisor's boot refuses it): vm-start says which unit's journal tells why.
rm -f /var/lib/vmsilo/nodisk-missing.img
as_user "$BIN/vm-start nodisk" >"$R/nodisk-start.txt" 2>&1
rc=$?
check nodisk:vm-start-fails "[ $rc = 1 ]"
check nodisk:names-the-journal "grep -q 'to read why: journalctl -u vmsilo-nodisk-vm.service' $R/nodisk-start.txt"
check nodisk:names-the-console-log "grep -q '/run/vmsilo/nodisk/console.log' $R/nodisk-start.txt"
check nodisk:journal-says-why "journalctl -q -u vmsilo-nodisk-vm.service | grep -q nodisk-missing.img"
systemctl reset-failed 'vmsilo-nodisk*'
