# Guest networking from the kernel command line:
# - vmsilo.ifname=<ifname>,<mac>: a .link file per interface names it by MAC before udev
#   processes the devices;
# - ip=, rd.route=, nameserver=: systemd-network-generator turns them into .network files that
#   systemd-networkd applies; DNS goes through systemd-resolved.
# test/nix/guest-protocol.test.ts runs these scripts over the generator's kernel command lines.
{
  config,
  lib,
  pkgs,
  ...
}:
let
  earlyOneshot = import ./early-oneshot.nix lib;
in
{
  networking.useNetworkd = true;
  networking.useDHCP = false;
  systemd.network.enable = true;
  services.resolved.enable = true;

  # systemd's own generator binary in a unit of ours (NixOS runs its packaged unit only in the
  # initrd). Read from /proc/cmdline, systemd drops every rd.* option outside the initrd, so
  # rd.route= would be lost: the networking options are handed over as arguments instead, which
  # the generator reads as written.
  systemd.services.vmsilo-network-generator = earlyOneshot {
    description = "Generate network units from the kernel command line (ip=, rd.route=, nameserver=)";
    before = [
      "network-pre.target"
      "systemd-udevd.service"
      "systemd-networkd.service"
    ];
    script = ''
      read -r -a words < /proc/cmdline
      args=()
      for word in "''${words[@]}"; do
        case $word in
          ip=* | rd.route=* | nameserver=* | rd.peerdns=*) args+=("$word") ;;
        esac
      done
      if [ "''${#args[@]}" -gt 0 ]; then
        exec ${config.systemd.package}/lib/systemd/systemd-network-generator -- "''${args[@]}"
      fi
    '';
  }
  // {
    wants = [ "network-pre.target" ];
    conflicts = [ "shutdown.target" ];
  };

  systemd.services.vmsilo-ifnames = earlyOneshot {
    description = "Name network interfaces by MAC from vmsilo.ifname=";
    before = [
      "systemd-udevd.service"
      "systemd-udev-trigger.service"
      "systemd-networkd.service"
    ];
    path = [
      pkgs.coreutils
      pkgs.gnugrep
    ];
    script = ''
      mkdir -p /run/systemd/network
      status=0
      read -r -a words < /proc/cmdline
      for param in "''${words[@]}"; do
        [[ $param == vmsilo.ifname=* ]] || continue
        value=''${param#vmsilo.ifname=}
        name=''${value%%,*}
        mac=''${value#*,}
        if ! printf '%s' "$name" | grep -Eqx '[A-Za-z][A-Za-z0-9_-]{0,14}' \
          || ! printf '%s' "$mac" | grep -Eqx '[0-9a-f]{2}(:[0-9a-f]{2}){5}'; then
          echo "vmsilo: ignoring malformed $param" >&2
          status=1
          continue
        fi
        printf '[Match]\nPermanentMACAddress=%s\n\n[Link]\nName=%s\n' "$mac" "$name" \
          > "/run/systemd/network/10-vmsilo-$name.link"
      done
      exit "$status"
    '';
  };
}
