# vmsilo.hostname=<name> on the kernel command line sets the hostname (checked against the VM
# name grammar before use).
{
  config,
  lib,
  pkgs,
  ...
}:
{
  networking.hostName = lib.mkDefault "";
  systemd.services.vmsilo-hostname = import ./early-oneshot.nix lib {
    description = "Set the hostname from vmsilo.hostname=";
    before = [ "systemd-networkd.service" ];
    path = [
      pkgs.coreutils
      pkgs.gnugrep
    ];
    script = ''
      name=$(grep -o '\bvmsilo\.hostname=[^ ]*' /proc/cmdline | tail -n 1 | cut -d= -f2-)
      if [ -z "$name" ]; then
        name=${lib.escapeShellArg config.vmsilo.guest.name}
        echo "vmsilo: no vmsilo.hostname= on the kernel command line; using $name" >&2
      fi
      if ! printf '%s' "$name" | grep -Eqx '[a-z]([a-z0-9-]{0,30}[a-z0-9])?'; then
        echo "vmsilo: vmsilo.hostname=$name is not a VM name; hostname left unchanged" >&2
        exit 1
      fi
      printf '%s' "$name" > /proc/sys/kernel/hostname
    '';
  };
}
