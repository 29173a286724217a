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
  namesOrSet = lib.types.coercedTo (lib.types.listOf lib.types.str) (ns: lib.genAttrs ns (_: true));
  eval = lib.evalModules {
    modules = [
      {
        options.systemd.sockets = loose;
        options.systemd.services = loose;
        # As on NixOS 25.11 (and stub-nixos.nix): names coerced to an attribute set of booleans.
        options.boot.kernelModules = lib.mkOption {
          type = namesOrSet (lib.types.attrsOf lib.types.bool);
          default = { };
          apply = modules: builtins.attrNames (lib.filterAttrs (_: enabled: enabled) modules);
        };
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
