# What the host tells the guest build (set by rootfs/default.nix from programs.vmsilo.nixosVms.<vm>).
# Everything that can change without a rebuild (addresses, MACs, the hostname, autoShutdown)
# arrives on the kernel command line instead.
{
  config,
  lib,
  pkgs,
  ...
}:
let
  inherit (lib) mkOption types;
in
{
  options.vmsilo.guest = {
    name = mkOption {
      type = types.str;
      description = "The VM's name (the hostname fallback until vmsilo.hostname= is read).";
    };
    rootOverlay = mkOption {
      type = types.enum [
        "tmpfs"
        "raw"
      ];
      default = "tmpfs";
      description = "Where writes over the read-only root go; the image is built for one of the two and checks vmsilo.rootOverlay= at boot.";
    };
    sharedHome = mkOption {
      type = types.bool;
      default = false;
      description = "Whether the host shares a home (tag `home`, mounted on /home/user by systemd.mount-extra=).";
    };
    sound = {
      playback = mkOption {
        type = types.bool;
        default = false;
        description = "Guest audio output through virtio-snd.";
      };
      capture = mkOption {
        type = types.bool;
        default = false;
        description = "Guest audio input through virtio-snd.";
      };
    };
    tray = {
      enable = mkOption {
        type = types.bool;
        default = false;
        description = "Whether the guest user's session runs the tray daemon (tray.nix): the session's StatusNotifierWatcher, serving the items to the host on vsock port 5001.";
      };
      logLevel = mkOption {
        type = types.enum [
          "error"
          "warn"
          "info"
          "debug"
        ];
        default = "info";
        description = "The tray daemon's log level (`programs.vmsilo.vmsilo-tray.logLevel` on the host).";
      };
      package = mkOption {
        type = types.nullOr types.package;
        default = config.vmsilo.guest.vmsiloTools.tray or null;
        defaultText = lib.literalExpression "config.vmsilo.guest.vmsiloTools.tray";
        description = "The tray daemons (vmsilo-tools' `tray` output); the guest runs its `bin/vmsilo-tray-guest`. The host passes its own `programs.vmsilo.packages.vmsiloTray`, so both ends speak the same protocol version.";
      };
    };
    netvm = mkOption {
      type = types.bool;
      default = false;
      description = "Whether this VM is a network VM (another VM's `network.netvm` names it): forwarding, NAT and the client rules of netvm.nix.";
    };
    hybridVsock = mkOption {
      type = types.bool;
      default = false;
      description = "Whether the host reaches the guest's vsock through cloud-hypervisor's hybrid vsock socket, a file guarded by its owner and mode. The command agent then accepts host peers on any port (the muxer picks them); otherwise, as with vhost-vsock (crosvm, qemu), where any local user of the host can connect, it accepts only peers on a privileged port, which only the VM's proxy binds.";
    };
    wayland = {
      enable = mkOption {
        type = types.bool;
        default = false;
        description = "Whether the VM has a GPU with the Wayland cross-domain context: the guest user then gets a Wayland display proxied to the host's compositor over virtio-gpu.";
      };
      proxy = mkOption {
        type = types.enum [
          "wayland-proxy-virtwl"
          "sommelier"
        ];
        default = "wayland-proxy-virtwl";
        description = "The guest's Wayland proxy (`nixosVms.<vm>.waylandProxy` on the host).";
      };
      package = mkOption {
        type = types.package;
        default = pkgs.${config.vmsilo.guest.wayland.proxy};
        defaultText = lib.literalExpression "pkgs.\${config.vmsilo.guest.wayland.proxy}";
        description = "The proxy's package: `bin/wayland-proxy-virtwl` or `bin/sommelier`.";
      };
      xwayland = mkOption {
        type = types.nullOr types.package;
        default = pkgs.xwayland;
        defaultText = lib.literalExpression "pkgs.xwayland";
        description = "Xwayland, which the proxy starts for X11 programs (DISPLAY=:0); null: Wayland programs only.";
      };
    };
    commandEnvironment = mkOption {
      type = types.attrsOf types.str;
      default = { };
      description = "Variables the command agent adds to every vm-run command's environment (its `--env`), in name order; wayland.nix sets the display's.";
    };
    user = mkOption {
      type = types.str;
      default = "user";
      description = "The guest's desktop user (home /home/user), uid 1000.";
    };
    vmsiloTools = mkOption {
      type = types.package;
      default = pkgs.vmsilo-tools or (pkgs.callPackage ../pkgs/vmsilo-tools.nix { });
      defaultText = lib.literalExpression "pkgs.vmsilo-tools or the package built from this repository";
      description = "The vm-run programs; the command agent is its `bin/vmsilo-agent`. The host passes its own `programs.vmsilo.packages.vmsiloTools`, so both ends speak the same protocol version.";
    };
  };
}
