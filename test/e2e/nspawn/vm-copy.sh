# vm-copy's driver (vm-copy.test.ts), after the harness's setup: $src and $dst (two qemu VMs),
# $relay_js, and $tools are set.
# shellcheck shell=bash disable=SC2154,SC2016
user_argv() { setpriv --reuid="$VMSILO_USER" --regid="$(id -g "$VMSILO_USER")" --clear-groups --reset-env "$@"; }
mkdir -p /run/vmsilo-e2e
for vm in "$src" "$dst"; do
  mkdir -p "/etc/systemd/system/vmsilo-$vm@.service.d"
  printf '[Service]\nExecStart=\nExecStart=%s/bin/vmsilo-vsock-proxy --timeout 90 --unix /run/vmsilo-e2e/%s.socket\n' "$tools" "$vm" >"/etc/systemd/system/vmsilo-$vm@.service.d/e2e-transport.conf"
  systemd-run -q --unit="e2e-relay-$vm" -p UMask=0000 node "$relay_js" "/run/vmsilo-e2e/$vm.socket" "/run/vmsilo/$vm/vmm/agent-port.socket"
done
systemctl daemon-reload
run_in() { local vm=$1; shift; user_argv timeout 150 "$BIN/vm-run" "$vm" "$@"; }
# The source's files (the test guest's agent runs as root, its home /root).
run_in "$src" sh -c 'mkdir -p /data/docs/sub && echo hello >/data/docs/a.txt && echo deep >/data/docs/sub/b && echo one >/data/one && mkdir -p /bad && echo x >/bad/ok && ln -s /etc/passwd /bad/link && mkdir -p /nl && touch "/nl/new
line"' 2>"$R/setup.err"
check source-ready "run_in $src test -L /bad/link"
check dest-ready "run_in $dst true"

user_argv timeout 150 "$BIN/vm-copy" "$src:/data/docs" "$src:/data/one" "$dst" >"$R/copy.out" 2>"$R/copy.err"
echo "copy-status $?" >>"$R/result"
run_in "$dst" sh -c 'cd /root/Incoming && find . | sort && cat '"$src"'/docs/a.txt '"$src"'/docs/sub/b '"$src"'/one' >"$R/dest.txt" 2>&1
check copied "grep -qx './$src/docs/sub/b' $R/dest.txt && grep -qx hello $R/dest.txt && grep -qx deep $R/dest.txt && grep -qx one $R/dest.txt"
check no-staging-left "! grep -q vm-copy $R/dest.txt"
# Never overwriting: the same copy again is refused, and the first copy stays as it was.
run_in "$src" sh -c 'echo changed >/data/one'
user_argv timeout 150 "$BIN/vm-copy" "$src:/data/one" "$dst" 2>"$R/again.err"
echo "again-status $?" >>"$R/result"
check again-message "grep -q 'exists already; nothing was copied' $R/again.err"
check again-kept "[ \"\$(run_in $dst cat /root/Incoming/$src/one)\" = one ]"
# A link and a newline in a name are refused on the host: nothing reaches the destination.
user_argv timeout 150 "$BIN/vm-copy" "$src:/bad" "$dst" 2>"$R/link.err"
echo "link-status $?" >>"$R/result"
check link-refused "grep -q 'refused bad/link: a symbolic link' $R/link.err"
user_argv timeout 150 "$BIN/vm-copy" "$src:/nl" "$dst" 2>"$R/newline.err"
echo "newline-status $?" >>"$R/result"
check newline-refused "grep -q 'a name with a control character' $R/newline.err"
check nothing-else "[ \"\$(run_in $dst sh -c 'ls /root/Incoming/$src | sort | tr \"\\n\" \" \"')\" = 'docs one ' ]"
