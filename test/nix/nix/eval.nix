# Evaluates nixos-module/ under lib.evalModules with the stubs, for the tests and the benchmark.
#   nix-instantiate --eval --strict --json test/nix/nix/eval.nix \
#     --arg lib 'import <nixpkgs-lib>/lib' --arg configuration ./configs/desktop.nix
# Returns the messages of failed assertions and, when there are none, vmsilo.json as a value.
{
  lib,
  configuration,
  extraModules ? [ ],
}:
let
  stubs = import ./stubs.nix;
  eval = lib.evalModules {
    modules = [
      ./stub-nixos.nix
      ../../../nixos-module
      { _module.args.pkgs = stubs.pkgs; }
      (import configuration stubs)
    ] ++ extraModules;
  };
  inherit (eval) config;
  failed = map (a: a.message) (lib.filter (a: !a.assertion) config.assertions);
in
{
  failedAssertions = failed;
  json = if failed == [ ] then config.programs.vmsilo.build.json else null;
  wiring =
    if failed == [ ] then
      {
        systemdPackages = map toString config.systemd.packages;
        tmpfilesPackages = map toString config.systemd.tmpfiles.packages;
        systemPackages = map toString config.environment.systemPackages;
        polkitRules = config.environment.etc."polkit-1/rules.d/60-vmsilo.rules".source or null;
        polkit = config.security.polkit.enable;
        kernelModules = config.boot.kernelModules;
        systemTarget = config.systemd.targets.vmsilo.wantedBy or null;
        sessionTarget = config.systemd.user.targets.vmsilo-session.wantedBy or null;
      }
    else
      null;
}
