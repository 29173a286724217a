# autoShutdown.enable=1 autoShutdown.after=<seconds>: power off once the guest has been idle
# that long, idle meaning no process of the guest user besides its systemd --user manager.
{
  config,
  lib,
  pkgs,
  ...
}:
let
  user = config.vmsilo.guest.user;
in
{
  systemd.services.vmsilo-auto-shutdown = {
    description = "Power off when idle (autoShutdown.enable=1)";
    wantedBy = [ "multi-user.target" ];
    after = [ "multi-user.target" ];
    path = [
      pkgs.coreutils
      pkgs.gnugrep
      pkgs.procps
      config.systemd.package
    ];
    serviceConfig.Restart = "on-failure";
    script = ''
      grep -qw 'autoShutdown\.enable=1' /proc/cmdline || exit 0
      after=$(grep -o '\bautoShutdown\.after=[0-9]*' /proc/cmdline | tail -n 1 | cut -d= -f2)
      after=''${after:-300}
      echo "vmsilo: powering off after $after s without processes of ${user}"
      idle_since=$(date +%s)
      while sleep 10; do
        # ps, not pgrep: every process counts except the user manager's two.
        # shellcheck disable=SC2009
        if ps -u ${lib.escapeShellArg user} -o comm= 2>/dev/null | grep -vqxE 'systemd|\(sd-pam\)'; then
          idle_since=$(date +%s)
        elif [ $(( $(date +%s) - idle_since )) -ge "$after" ]; then
          echo "vmsilo: idle for $after s; powering off"
          systemctl poweroff
          exit 0
        fi
      done
    '';
  };
}
