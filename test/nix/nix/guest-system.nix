# For test/nix/guest-protocol.test.ts: every guest module (nixos-module/guest/) under
# lib.evalModules, the NixOS options they set taken loosely by a freeform root (no full nixpkgs
# here), and every package they call this machine's own (`hostRoot`, e.g. /usr), so the scripts
# of their units run here. Returns those units and the guest options.
{
  lib,
  hostRoot,
  guest ? { },
}:
let
  host = {
    type = "derivation";
    name = "host";
    outPath = hostRoot;
  };
  eval = lib.evalModules {
    modules = [
      {
        freeformType = lib.types.lazyAttrsOf lib.types.anything;
        # Set by several guest modules: merged as on NixOS.
        options.boot.kernelModules = import ./kernel-modules-option.nix lib;
        options.boot.initrd.kernelModules = lib.mkOption { type = lib.types.listOf lib.types.str; };
        options.systemd.package = lib.mkOption { default = host; };
        # Set only by some guests (wayland.nix): empty for the others.
        options.systemd.user.services = lib.mkOption {
          type = lib.types.attrsOf lib.types.anything;
          default = { };
        };
        options.environment.sessionVariables = lib.mkOption {
          type = lib.types.attrsOf lib.types.str;
          default = { };
        };
      }
      ../../../nixos-module/guest
      {
        _module.args.pkgs = lib.genAttrs [
          "coreutils"
          "gnugrep"
          "gnused"
          "procps"
          "vmsilo-tools"
          "wayland-proxy-virtwl"
          "sommelier"
          "xwayland"
        ] (_: host)
        # Its `tray` output (the tray daemons) is this machine's too.
        // { vmsilo-tools = host // { tray = host; }; };
        vmsilo.guest = {
          name = "work";
        } // guest;
      }
    ];
  };
in
{
  inherit (eval.config.systemd) services;
  userServices = eval.config.systemd.user.services;
  sessionVariables = eval.config.environment.sessionVariables;
  linger = eval.config.users.users.${eval.config.vmsilo.guest.user}.linger or false;
  inherit (eval.config.vmsilo) guest;
  # A network VM's forwarding and table (netvm.nix), null when the module sets none.
  netvm = {
    forwarding = eval.config.boot.kernel.sysctl."net.ipv4.conf.all.forwarding" or null;
    table = eval.config.networking.nftables.tables.vmsilo-netvm or null;
    nftables = eval.config.networking.nftables.enable or null;
    # Its clients' DNS: dnsmasq with netvm-dns.conf.
    dnsmasq = eval.config.services.dnsmasq or null;
  };
  kernelModules = {
    initrd = eval.config.boot.initrd.kernelModules;
    system = eval.config.boot.kernelModules;
  };
}
