# The network VMs' driver (netvm.test.ts), after the harness's setup: $relay_js and $tools are set.
# VMs: net (network VM, interface wan on br-outside), a and b (its clients), h and h2 (the host is
# their gateway, port 8631 of the host opened to h). "outside" is a network namespace: 198.51.100.1 on
# br-outside (net's side), 203.0.113.2 facing the host (203.0.113.1).
# shellcheck shell=bash disable=SC2154,SC2016
mkdir -p /run/vmsilo-e2e
# A command in a guest, through its agent (the agent port's relay, see nspawn.test.ts).
vr() { timeout 40 "$tools/bin/vmsilo-run" "/run/vmsilo-e2e/$1.socket" sh -c "$2"; }
# An HTTP GET from a guest to host:port (busybox nc, 4 s to connect): the body's last line, and
# nc's status as the guest's.
get() { vr "$1" "set -o pipefail; printf 'GET / HTTP/1.0\r\n\r\n' | nc -w 4 ${2%:*} ${2#*:} | tail -n 1"; }
# Whether the guest's connection to host:port fails (the guest says so: not a failure to ask it).
refused() { [ "$(vr "$1" "printf 'GET / HTTP/1.0\r\n\r\n' | nc -w 4 ${2%:*} ${2#*:} >/dev/null 2>&1; echo nc=\$?")" = nc=1 ]; }
# Whether one ping from the guest gets an answer: yes, no (not a failure to ask it).
pings() { vr "$1" "ping -c1 -W2 $2 >/dev/null 2>&1 && echo yes || echo no"; }

# An HTTP answer naming the peer's address: what the other side sees as the source.
cat >/run/vmsilo-e2e/peer.sh <<'SH'
#!/bin/bash
while IFS= read -r l && [ -n "${l%$'\r'}" ]; do :; done
printf 'HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\n%s\n' "$SOCAT_PEERADDR"
SH
chmod 0755 /run/vmsilo-e2e/peer.sh

# The outside world.
ip netns add outside
ip link add o-wan type veth peer name o-wan-in
ip link set o-wan master br-outside
ip link set o-wan up
ip link set o-wan-in netns outside
ip link add o-host type veth peer name o-host-in
ip address add 203.0.113.1/24 dev o-host
ip link set o-host up
ip link set o-host-in netns outside
ip -n outside address add 198.51.100.1/24 dev o-wan-in
ip -n outside address add 203.0.113.2/24 dev o-host-in
for l in lo o-wan-in o-host-in; do ip -n outside link set "$l" up; done
check outside-up "ip netns exec outside busybox ping -c1 -W2 203.0.113.1 >/dev/null"
systemd-run -q --unit=e2e-outside-web ip netns exec outside socat TCP-LISTEN:8080,fork,reuseaddr EXEC:/run/vmsilo-e2e/peer.sh
systemd-run -q --unit=e2e-outside-dns ip netns exec outside dnsmasq -k --conf-file=/dev/null --user=root --pid-file= --no-resolv --no-hosts --bind-interfaces --listen-address=198.51.100.1 --listen-address=203.0.113.2 --address=/outside.test/192.0.2.80
# What the NixOS module sets on a host with a host-gateway VM.
sysctl -q -w net.ipv4.conf.all.forwarding=1
# Host services: 8631 opened to h (network.hostServices.tcp), 8632 not.
systemd-run -q --unit=e2e-host-open socat TCP-LISTEN:8631,fork,reuseaddr EXEC:/run/vmsilo-e2e/peer.sh
systemd-run -q --unit=e2e-host-closed socat TCP-LISTEN:8632,fork,reuseaddr EXEC:/run/vmsilo-e2e/peer.sh
for vm in net a b h h2; do
  systemd-run -q --unit="e2e-relay-$vm" -p UMask=0000 node "$relay_js" "/run/vmsilo-e2e/$vm.socket" "/run/vmsilo/$vm/vmm/agent-port.socket"
done

start=$SECONDS
# The clients pull in their network VM (Wants=), each its link (Requires=), the links the firewall.
systemctl start --no-block vmsilo-a-vm.service vmsilo-b-vm.service vmsilo-h-vm.service vmsilo-h2-vm.service
for vm in net a b h h2; do check "$vm-up" "until_ 'vr $vm true >/dev/null 2>&1' 120"; done
echo "boot-s $((SECONDS - start))" >>"$R/result"
check firewall-active "systemctl is-active -q vmsilo-firewall.service"
check host-table "nft list table inet vmsilo >$R/host-table.txt"
vr net "/usr/sbin/nft list ruleset" >"$R/netvm-ruleset.txt" 2>&1
check netvm-table "grep -q 'table inet vmsilo-netvm' $R/netvm-ruleset.txt && grep -q masquerade $R/netvm-ruleset.txt"

addr() { vr "$1" "ip -4 -o address show dev upstream | awk '{print \$4}' | cut -d/ -f1"; }
a_ip=$(addr a)
b_ip=$(addr b)
h_ip=$(addr h)
h2_ip=$(addr h2)
a_gw=$(vr a "ip route | awk '/^default/{print \$3}'")
read -r _ _ h_gw _ < <(ip -4 -br address show dev h-upstream)
h_gw=${h_gw%/*}
a_br=$(grep -o 'vb-[0-9a-f]*' "$TREE/lib/systemd/system/vmsilo-a-uplink.service" | head -n1)
note "addresses a=$a_ip b=$b_ip h=$h_ip h2=$h2_ip a-gateway=$a_gw h-gateway=$h_gw a-bridge=$a_br"
check addresses-known "[ -n '$a_ip' ] && [ -n '$b_ip' ] && [ -n '$h_ip' ] && [ -n '$h2_ip' ] && [ -n '$a_gw' ] && [ -n '$h_gw' ] && [ -n '$a_br' ]"

# Through the network VM, masqueraded: the outside sees net's address.
check a-outside-via-netvm "[ \"\$(get a 198.51.100.1:8080)\" = 198.51.100.2 ]"
check b-outside-via-netvm "[ \"\$(get b 198.51.100.1:8080)\" = 198.51.100.2 ]"
# DNS: a's nameserver is net's side of the link, net's dnsmasq forwards it.
check a-nameserver-netvm "[ \"\$(vr a 'cat /etc/resolv.conf')\" = 'nameserver $a_gw' ]"
check a-dns-via-netvm "vr a 'nslookup outside.test' | grep -q 192.0.2.80"
# Client to client: dropped (b's service is up: it answers itself).
check b-service-up "[ \"\$(get b 127.0.0.1:7000)\" = b ]"
check a-to-b-dropped "refused a $b_ip:7000"
check a-to-b-ping-dropped "[ \"\$(pings a $b_ip)\" = no ]"
# Client to the network VM's own services: dropped (but DNS above).
check netvm-service-up "[ \"\$(get net 127.0.0.1:8000)\" = net ]"
check a-to-netvm-service-dropped "refused a $a_gw:8000"
check a-to-netvm-ping-dropped "[ \"\$(pings a $a_gw)\" = no ]"
# The link's bridge: no host address, the two taps.
check bridge-no-address "[ -z \"\$(ip -o address show dev $a_br)\" ]"
check bridge-two-taps "[ \"\$(ls /sys/class/net/$a_br/brif | tr '\n' ' ')\" = 'a-upstream net-vc-a ' ]"
check a-to-host-dropped "refused a $h_gw:8631"

# The host as the gateway: forwarded and masqueraded, DNS through it, one opened port.
check h-outside-via-host "[ \"\$(get h 203.0.113.2:8080)\" = 203.0.113.1 ]"
check h-dns-via-host "vr h 'nslookup outside.test' | grep -q 192.0.2.80"
check h-host-service-opened "[ \"\$(get h $h_gw:8631)\" = $h_ip ]"
check host-closed-service-up "timeout 3 bash -c 'exec 3<>/dev/tcp/127.0.0.1/8632'"
check h-host-service-closed "refused h $h_gw:8632"
check h-ping-outside "[ \"\$(pings h 203.0.113.2)\" = yes ]"
check h-ping-host-dropped "[ \"\$(pings h $h_gw)\" = no ]"
check host-ping-h-established "busybox ping -c1 -W3 $h_ip >/dev/null"
# Two clients of the host: kept apart (h2's service is up: the host reaches it).
check host-to-h2-service "timeout 3 bash -c 'exec 3<>/dev/tcp/$h2_ip/7000'"
check h-to-h2-dropped "refused h $h2_ip:7000"
check h-to-h2-ping-dropped "[ \"\$(pings h $h2_ip)\" = no ]"

# Fail closed: net stopped, a reaches nothing (not the outside through the host either), its
# bridge holds its own tap only.
systemctl stop vmsilo-net-vm.service
check netvm-stopped "! systemctl is-active -q vmsilo-net-vm.service"
check a-still-running "systemctl is-active -q vmsilo-a-vm.service && systemctl is-active -q vmsilo-a-uplink.service"
check a-no-outside-without-netvm "refused a 198.51.100.1:8080"
check a-no-fallback-via-host "refused a 203.0.113.2:8080"
check a-no-dns-without-netvm "! vr a 'timeout 5 nslookup outside.test' | grep -q 192.0.2.80"
check bridge-only-a "[ \"\$(ls /sys/class/net/$a_br/brif)\" = a-upstream ]"
# And back.
systemctl start --no-block vmsilo-net-vm.service
check netvm-back "until_ 'vr net true >/dev/null 2>&1' 120"
check a-outside-after-netvm-restart "until_ '[ \"\$(get a 198.51.100.1:8080)\" = 198.51.100.2 ]' 30"
# A client's own stop and start: its link comes back (net still needs the bridge meanwhile).
systemctl stop vmsilo-b-vm.service
check b-stopped-no-tap "! test -e /sys/class/net/b-upstream"
check b-link-kept-for-netvm "systemctl is-active -q vmsilo-b-uplink.service"
systemctl start --no-block vmsilo-b-vm.service
check b-back "until_ 'vr b true >/dev/null 2>&1' 120"
check b-outside-after-restart "until_ '[ \"\$(get b 198.51.100.1:8080)\" = 198.51.100.2 ]' 30"
systemctl stop vmsilo-h-vm.service
check h-stopped-no-tap "! test -e /sys/class/net/h-upstream"
systemctl start --no-block vmsilo-h-vm.service
check h-back "until_ 'vr h true >/dev/null 2>&1' 120"
check h-outside-after-restart "until_ '[ \"\$(get h 203.0.113.2:8080)\" = 203.0.113.1 ]' 30"
echo "total-s $((SECONDS - start))" >>"$R/result"
systemctl stop vmsilo-a-vm.service vmsilo-b-vm.service vmsilo-h-vm.service vmsilo-h2-vm.service vmsilo-net-vm.service
check links-gone "until_ '! ip -o link show type bridge | grep -q vb-' 20"
ip netns del outside
