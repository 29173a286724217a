# The attacks of a desktop user who wants root, against the generated units under real systemd
# (attacks.test.ts writes the facts: $share_unit, $share_dir, $share_mount, $secret).
# shellcheck shell=bash disable=SC2154
uid=$(id -u "$VMSILO_USER")
gid=$(id -g "$VMSILO_USER")
# Root's secrets: a directory only root reads, and a file standing for /etc/shadow.
install -d -m 0700 "$secret"
echo root-only >"$secret/token"
install -m 0600 /dev/null /etc/vmsilo-e2e-shadow
echo shadow >/etc/vmsilo-e2e-shadow
shadow_before=$(sha256sum /etc/vmsilo-e2e-shadow)

# 1. A share the user swaps for a link to a root directory while its root virtiofsd starts: the
#    user's process exchanges the share's directory and a link to $secret atomically, as fast as
#    it can, while root restarts the share's unit again and again. Every started virtiofsd, in
#    every process of the unit, must see the share's own directory and never the secret.
as_user "echo the-share >$share_dir/marker; ln -sfn $secret $share_dir.swap"
cat >/run/vmsilo-e2e-exchange.py <<'EOF'
import ctypes, os, sys
libc = ctypes.CDLL(None, use_errno=True)
a, b = (os.fsencode(p) for p in sys.argv[1:3])
while True:
    libc.renameat2(-100, a, -100, b, 2)  # AT_FDCWD, RENAME_EXCHANGE
EOF
chmod 0644 /run/vmsilo-e2e-exchange.py
as_user "exec /usr/bin/python3 /run/vmsilo-e2e-exchange.py $share_dir $share_dir.swap" &
swapper=$!
systemctl start "vmsilo-$vm-prep.service"
served=0 refused=0 leaked=0
for _ in $(seq "$runs"); do
  if systemctl restart "$share_unit" 2>/dev/null; then
    served=$((served + 1))
    for p in $(cat "/sys/fs/cgroup$(systemctl show -P ControlGroup "$share_unit")/cgroup.procs" 2>/dev/null); do
      for root in "/proc/$p/root" "/proc/$p/root$share_mount"; do
        [ -e "$root/token" ] && leaked=$((leaked + 1))
      done
    done
  else
    refused=$((refused + 1))
    # The share's unit binds to the VM's, whose start then fails too; and each try restarts prep:
    # clear their failures and start limits, so every round is a fresh start.
    systemctl reset-failed "vmsilo-$vm-*" 2>/dev/null
  fi
done
kill "$swapper" 2>/dev/null
pkill -u "$VMSILO_USER" -f vmsilo-e2e-exchange
wait "$swapper" 2>/dev/null
systemctl stop "$share_unit"
systemctl reset-failed "vmsilo-$vm-*" 2>/dev/null
note "share-race served $served refused $refused leaked $leaked"
check share-never-leaked "[ $leaked = 0 ]"
check share-race-served "[ $served -gt 0 ]"
check share-secret-untouched "[ \"\$(ls -A $secret)\" = token ] && [ \"\$(cat $secret/token)\" = root-only ]"
# Put the share back as a directory (the exchange may have stopped either way round).
[ -L "$share_dir" ] && as_user "rm $share_dir && mv -T $share_dir.swap $share_dir"

# 2. The runtime directories: root's all the way down, except the ones systemd hands to a helper
#    running as the user; a link the user plants in those gives them nothing when the VM restarts.
as_user "$BIN/vm-start $vm" >"$R/attack-start.txt" 2>&1
check vm-started "until_ 'systemctl is-active -q vmsilo-$vm-vm.service' 40"
check user-cannot-write-vm-dir "! as_user 'touch /run/vmsilo/$vm/planted' 2>/dev/null && ! as_user 'ln -s /etc/vmsilo-e2e-shadow /run/vmsilo/$vm/planted' 2>/dev/null"
check user-cannot-write-run-root "! as_user 'touch /run/vmsilo/planted' 2>/dev/null"
# Every tree the user owns under /run/vmsilo and /var/lib/vmsilo (a helper's RuntimeDirectory=, a
# socket) starts in a directory of root's that only root can write, so the user can never put a
# link in its place; inside their own trees the user may do anything, and root acts on nothing there.
bad=
while read -r p; do
  parent=$(dirname "$p")
  [ "$(stat -c %U "$parent")" = "$VMSILO_USER" ] && continue
  [ "$(stat -c %u "$parent")" = 0 ] && [ $((0$(stat -c %a "$parent") & 022)) = 0 ] || bad="$bad $p"
done < <(find /run/vmsilo /var/lib/vmsilo -user "$VMSILO_USER" -not -path /var/lib/vmsilo/home-template -not -path '/var/lib/vmsilo/home-template/*')
note "user-owned-paths-in-writable-dirs:$bad"
check user-paths-in-root-dirs "[ -z '$bad' ]"
if [ -d "/run/vmsilo/$vm/gpu/shader-cache" ]; then
  as_user "rm -rf /run/vmsilo/$vm/gpu/shader-cache && ln -s /run/vmsilo /run/vmsilo/$vm/gpu/shader-cache"
  as_user "$BIN/vm-stop $vm" >/dev/null 2>&1
  as_user "$BIN/vm-start $vm" >"$R/attack-restart.txt" 2>&1
  check restarted-after-planted-link "until_ 'systemctl is-active -q vmsilo-$vm-vm.service' 40"
fi
check run-root-still-roots "[ \"\$(stat -c '%u %a' /run/vmsilo)\" = '0 755' ] && [ \"\$(stat -c '%u %a' /run/vmsilo/$vm)\" = '0 755' ]"
check shadow-untouched "[ \"\$(stat -c '%u %a' /etc/vmsilo-e2e-shadow)\" = '0 600' ] && [ \"\$(sha256sum /etc/vmsilo-e2e-shadow)\" = '$shadow_before' ]"
as_user "$BIN/vm-stop $vm" >/dev/null 2>&1

# 3. The cloud-hypervisor VM hands its vsock socket to the user once booted; the user tries, as
#    fast as possible during ten starts, to put a link to the shadow file in its place.
if [ -n "$ch_vm" ]; then
  as_user "while :; do ln -sfn /etc/vmsilo-e2e-shadow /run/vmsilo/$ch_vm/vsock.socket 2>/dev/null && echo planted; done" >"$R/vsock-plant.txt" &
  planter=$!
  for _ in $(seq 10); do
    as_user "$BIN/vm-start $ch_vm" >/dev/null 2>&1
    until_ "systemctl is-active -q vmsilo-$ch_vm-vm.service" 40
    as_user "$BIN/vm-stop $ch_vm" >/dev/null 2>&1
  done
  kill "$planter" 2>/dev/null
  pkill -u "$VMSILO_USER" -f "vmsilo-e2e-shadow"
  check vsock-never-planted "! grep -q planted $R/vsock-plant.txt"
  check vsock-shadow-untouched "[ \"\$(stat -c '%u %a' /etc/vmsilo-e2e-shadow)\" = '0 600' ] && [ \"\$(sha256sum /etc/vmsilo-e2e-shadow)\" = '$shadow_before' ]"
fi

# 4. Disk images in a directory the user can write: the user points the image at root's secret.
#    The VM must not start, nothing may open the secret, and the message must say why.
install -d -o "$uid" -g "$gid" "$(dirname "$linked_disk")" "$(dirname "$created_disk")"
as_user "rm -f $linked_disk && ln -s $secret/token $linked_disk"
as_user "$BIN/vm-start $disk_vm" >"$R/disk-start.txt" 2>&1
check linked-disk-refused "! systemctl is-active -q vmsilo-$disk_vm-vm.service && journalctl -q -u vmsilo-$disk_vm-vm.service | grep -q 'refusing the disk image $linked_disk'"
check linked-disk-no-vmm "! pgrep -f 'run --name $disk_vm' >/dev/null"
check linked-disk-secret-untouched "[ \"\$(cat $secret/token)\" = root-only ] && [ \"\$(stat -c '%u %a' $secret/token)\" = '0 644' ]"
systemctl reset-failed "vmsilo-$disk_vm-vm.service" 2>/dev/null
as_user "$BIN/vm-start $create_vm" >"$R/create-start.txt" 2>&1
check created-disk-refused "! systemctl is-active -q vmsilo-$create_vm-vm.service && journalctl -q -u vmsilo-$create_vm-vm.service | grep -q 'refusing the disk image $created_disk'"
check created-disk-nothing-written "[ -z \"\$(ls -A $(dirname "$created_disk"))\" ]"
check start-failure-names-journal "grep -q 'journalctl' $R/create-start.txt"
systemctl reset-failed "vmsilo-$create_vm-vm.service" 2>/dev/null
