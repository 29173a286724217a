# Evaluates nixos-module/ under lib.evalModules with the stubs, for the tests and the benchmark.
#   nix-instantiate --eval --strict --json test/nix/nix/eval.nix \
#     --arg lib 'import <nixpkgs-lib>/lib' --arg configuration ./configs/desktop.nix
# Returns the messages of failed assertions and, when there are none, vmsilo.json as a value,
# the wiring, and generate.nix's build script.
{
  lib,
  configuration,
  extraModules ? [ ],
}:
let
  stubs = import ./stubs.nix;
  host = import ./stub-host.nix {
    inherit lib;
    modules = [
      ../../../nixos-module
      (import configuration stubs)
    ] ++ extraModules;
  };
  inherit (host.eval) config;
  failed = host.failedAssertions;
in
{
  inherit (host) failedAssertions json;
  wiring =
    if failed == [ ] then
      {
        systemdPackages = map toString config.systemd.packages;
        tmpfilesPackages = map toString config.systemd.tmpfiles.packages;
        udevPackages = map toString config.services.udev.packages;
        systemPackages = map toString config.environment.systemPackages;
        polkitRules = config.environment.etc."polkit-1/rules.d/60-vmsilo.rules".source or null;
        polkit = config.security.polkit.enable;
        kernelModules = config.boot.kernelModules;
        sysctl = config.boot.kernel.sysctl;
        systemTarget = config.systemd.targets.vmsilo.wantedBy or null;
        sessionTarget = config.systemd.user.targets.vmsilo-session.wantedBy or null;
        systemUsers = lib.mapAttrs (_: u: { inherit (u) group description; }) (lib.filterAttrs (_: u: u.isSystemUser) config.users.users);
        groups = lib.attrNames config.users.groups;
      }
    else
      null;
  # The guest systems built, each once (templates.test.ts counts them).
  guestSystems =
    if failed == [ ] then lib.mapAttrs (_: lib.attrNames) config.programs.vmsilo.build.guestSystems else null;
  # generate.nix's build: its script, and the vmsilo.json it reads at its store path.
  generate =
    if failed == [ ] then
      {
        inherit (config.programs.vmsilo.build.generated) script;
        nativeBuildInputs = map toString config.programs.vmsilo.build.generated.env.nativeBuildInputs;
        configFile = toString config.programs.vmsilo.build.configFile;
        configText = config.programs.vmsilo.build.configFile.text;
      }
    else
      null;
  # The topology picture's build (generate.nix): its script and what it runs.
  graph =
    if failed == [ ] then
      {
        inherit (config.programs.vmsilo.build.graph) script;
        nativeBuildInputs = map toString config.programs.vmsilo.build.graph.env.nativeBuildInputs;
      }
    else
      null;
}
