# For test/nix/guest-agent.test.ts: the guest's command agent (nixos-module/guest/command-agent.nix)
# with the guest options under lib.evalModules, the few NixOS options it sets declared loosely
# (no full nixpkgs here), and the stub pkgs. Returns what it configures.
{
  lib,
  extraModules ? [ ],
}:
let
  stubs = import ./stubs.nix;
  loose = lib.mkOption {
    type = lib.types.attrsOf lib.types.anything;
    default = { };
  };
  eval = lib.evalModules {
    modules = [
      {
        options.systemd.sockets = loose;
        options.systemd.services = loose;
        options.boot.kernelModules = import ./kernel-modules-option.nix lib;
      }
      ../../../nixos-module/guest/options.nix
      ../../../nixos-module/guest/command-agent.nix
      {
        _module.args.pkgs = stubs.pkgs;
        vmsilo.guest.name = "work";
      }
    ] ++ extraModules;
  };
  inherit (eval) config;
in
{
  inherit (config.systemd) sockets services;
  inherit (config.boot) kernelModules;
  vmsiloTools = toString config.vmsilo.guest.vmsiloTools;
  user = config.vmsilo.guest.user;
}
