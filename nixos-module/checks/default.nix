# checks.x86_64-linux of the flake:
# - vmsilo-gen: the package; its check phase is `npm test`;
# - eval-example: evaluates an example host configuration (every option, assertion, guest
#   system), and runs the real generator over the vmsilo.json it produces, without building the
#   guests;
# - vm-lifecycle: a NixOS VM test booting a host with one VM, started and stopped as the user.
{
  pkgs,
  lib,
  self,
}:
let
  vmsilo-gen = self.packages.${pkgs.stdenv.hostPlatform.system}.vmsilo-gen;
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
  inherit vmsilo-gen;

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
