# The guest user's Wayland display, when the VM has a GPU with the cross-domain context: a proxy
# (wayland-proxy-virtwl, or sommelier) listens on $XDG_RUNTIME_DIR/wayland-0 in the guest and
# carries each client's connection over virtio-gpu to the host, where the GPU backend hands it to
# the VM's Wayland security context; X11 programs get DISPLAY=:0, served by Xwayland, which the proxy
# starts and acts as window manager for. The proxy runs as a user service of the guest user, whose
# manager runs from boot (linger), so the display is there before anyone logs in; vm-run commands
# get the variables from the command agent (command-agent.nix), login sessions from the session
# environment.
{
  config,
  lib,
  ...
}:
let
  g = config.vmsilo.guest;
  w = g.wayland;
  uid = config.users.users.${g.user}.uid;
  execArg = import ./exec-arg.nix lib;
  exec = argv: lib.concatMapStringsSep " " execArg argv;
  display = {
    XDG_RUNTIME_DIR = "/run/user/${toString uid}";
    WAYLAND_DISPLAY = "wayland-0";
  }
  // lib.optionalAttrs (w.xwayland != null) { DISPLAY = ":0"; };
  xwayland = "${w.xwayland}/bin/Xwayland";
  user = {
    wantedBy = [ "default.target" ];
    unitConfig.ConditionUser = g.user;
    serviceConfig = {
      Restart = "on-failure";
      RestartSec = 1;
    };
  };
in
{
  config = lib.mkIf w.enable {
    # The virtio-gpu DRM device, whose cross-domain context carries the connections.
    boot.kernelModules = [ "virtio_gpu" ];
    users.users.${g.user}.linger = true;
    vmsilo.guest.commandEnvironment = display;
    environment.sessionVariables = removeAttrs display [ "XDG_RUNTIME_DIR" ];

    systemd.user.services =
      if w.proxy == "wayland-proxy-virtwl" then
        {
          # One process serves both: Wayland clients and, through Xwayland, X11 ones.
          vmsilo-wayland-proxy = lib.recursiveUpdate user {
            description = "Wayland display of the VM (wayland-proxy-virtwl over virtio-gpu)";
            serviceConfig.ExecStart = exec (
              [
                "${w.package}/bin/wayland-proxy-virtwl"
                "--virtio-gpu"
                "--wayland-display"
                display.WAYLAND_DISPLAY
                "--tag"
                "[${g.name}] "
              ]
              ++ lib.optionals (w.xwayland != null) [
                "--x-display"
                "0"
                "--xwayland-binary"
                xwayland
              ]
            );
          };
        }
      else
        {
          # sommelier serves Wayland clients as the parent instance, X11 ones in a second one.
          vmsilo-wayland-proxy = lib.recursiveUpdate user {
            description = "Wayland display of the VM (sommelier over virtio-gpu)";
            serviceConfig.ExecStart = exec [
              "${w.package}/bin/sommelier"
              "--parent"
              "--virtgpu-channel"
              "--socket=${display.WAYLAND_DISPLAY}"
            ];
          };
        }
        // lib.optionalAttrs (w.xwayland != null) {
          vmsilo-x11-proxy = lib.recursiveUpdate user {
            description = "X11 display :0 of the VM (sommelier with Xwayland over virtio-gpu)";
            serviceConfig.ExecStart = exec [
              "${w.package}/bin/sommelier"
              "-X"
              "--x-display=0"
              "--no-exit-with-child"
              "--virtgpu-channel"
              "--xwayland-path=${xwayland}"
              "true"
            ];
          };
        };
  };
}
