# checks.x86_64-linux of the flake:
# - vmsilo-gen: the package; its check phase is `npm test` (the vm-run protocol tests included);
# - vmsilo-tools: the vm-run programs; its install check is a round trip through the agent;
# - eval-example: evaluates an example host configuration (every option, assertion, guest
#   system), and runs the real generator over the vmsilo.json it produces, without building the
#   guests;
# - vm-lifecycle: a NixOS VM test booting a host with one VM, started as the user, commands run
#   in it with vm-run, stopped.
{
  pkgs,
  lib,
  self,
}:
let
  inherit (self.packages.${pkgs.stdenv.hostPlatform.system}) vmsilo-gen vmsilo-tools;
  exampleHost = lib.nixosSystem {
    modules = [
      { nixpkgs.hostPlatform = pkgs.stdenv.hostPlatform.system; }
      self.nixosModules.default
      ./example-host.nix
    ];
  };
  vmsiloJson = builtins.toJSON exampleHost.config.programs.vmsilo.build.json;
in
{
  inherit vmsilo-gen vmsilo-tools;

  eval-example =
    pkgs.runCommand "vmsilo-eval-example"
      {
        nativeBuildInputs = [ vmsilo-gen ];
        # The document with its store paths as text only: checking it must not build the guests.
        config = builtins.unsafeDiscardStringContext vmsiloJson;
        # Forces evaluation of the whole system (assertions included) without building it.
        toplevel = builtins.unsafeDiscardOutputDependency exampleHost.config.system.build.toplevel.drvPath;
        passAsFile = [ "config" ];
      }
      ''
        vmsilo-gen validate --config "$configPath"
        vmsilo-gen render --config "$configPath" --out "$TMPDIR/tree" --dry-run > /dev/null
        echo "$toplevel" > "$out"
      '';

  vm-lifecycle = pkgs.testers.runNixOSTest ./vm-test.nix;
}
