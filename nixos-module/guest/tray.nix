# The guest side of the tray (docs/protocol.md, "The tray protocol"): vmsilo-tray-guest runs in the
# guest user's session as its org.kde.StatusNotifierWatcher, so the applications' tray items
# (StatusNotifierItems) register with it, and serves them on vsock port 5001 to the host's
# vmsilo-tray-host, which shows them on the host's desktop. Like the command agent it accepts only
# host peers on a privileged port (the host's tray unit binds one; no other local user can). The
# user's manager runs from boot (linger), so the watcher is there before any application starts.
{
  config,
  lib,
  ...
}:
let
  g = config.vmsilo.guest;
  t = g.tray;
  execArg = import ./exec-arg.nix lib;
in
{
  config = lib.mkIf t.enable {
    boot.kernelModules = [ "vmw_vsock_virtio_transport" ];
    users.users.${g.user}.linger = true;
    systemd.user.services.vmsilo-tray = {
      description = "vmsilo tray: the session's tray items, served to the host (vsock port 5001)";
      wantedBy = [ "default.target" ];
      # The session bus it is the watcher on.
      requires = [ "dbus.socket" ];
      after = [ "dbus.socket" ];
      unitConfig.ConditionUser = g.user;
      serviceConfig = {
        ExecStart = lib.concatMapStringsSep " " execArg [
          "${t.package}/bin/vmsilo-tray-guest"
          "--listen-vsock"
          "5001"
          "--log-level"
          t.logLevel
        ];
        Restart = "on-failure";
        RestartSec = 2;
        # What a user manager applies without user namespaces: seccomp and prctl settings.
        NoNewPrivileges = true;
        LockPersonality = true;
        MemoryDenyWriteExecute = true;
        RestrictRealtime = true;
        RestrictSUIDSGID = true;
        SystemCallArchitectures = "native";
        SystemCallFilter = [
          "@system-service"
          "~@privileged @resources @obsolete"
        ];
        RestrictAddressFamilies = [
          "AF_UNIX"
          "AF_VSOCK"
        ];
      };
    };
  };
}
