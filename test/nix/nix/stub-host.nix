# A host evaluated under lib.evalModules with the test stubs (stub-nixos.nix, stubs.nix's pkgs):
# the one evaluation eval.nix, option-docs.nix and flake-outputs.nix build on. Returns the
# evaluation, the messages of failed assertions and, when there are none, vmsilo.json.
{ lib, modules }:
let
  stubs = import ./stubs.nix;
  eval = lib.evalModules {
    modules = [
      ./stub-nixos.nix
      { _module.args.pkgs = stubs.pkgs; }
    ] ++ modules;
  };
  failed = map (a: a.message) (lib.filter (a: !a.assertion) eval.config.assertions);
in
{
  inherit eval;
  failedAssertions = failed;
  json = if failed == [ ] then eval.config.programs.vmsilo.build.json else null;
}
