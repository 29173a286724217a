# For test/nix/npm-deps.test.ts: evaluates nixos-module/pkgs/npm-deps.nix with stand-ins for
# mkDerivation and importNpmLock that return their arguments, so the fixed-output derivations
# can be inspected without nixpkgs.
{ lib }:
let
  root = ../../..;
  deps = import ../../../nixos-module/pkgs/npm-deps.nix {
    inherit lib;
    stdenvNoCC.mkDerivation = attrs: attrs;
    nodejs = "nodejs";
    cacert = "/nix/store/00000000000000000000000000000000-cacert";
    importNpmLock = args: args;
  } {
    package = lib.importJSON (root + "/package.json");
    packageLock = lib.importJSON (root + "/package-lock.json");
  };
in
{
  tarballs = lib.mapAttrs (_: d: {
    inherit (d)
      name
      packageName
      packageVersion
      outputHash
      outputHashMode
      NODE_EXTRA_CA_CERTS
      ;
    fetchesWithScript = lib.hasInfix "fetch-npm-tarball.sh" (toString d.buildCommand);
  }) deps.tarballs;
  overrides = builtins.attrNames deps.npmDeps.packageSourceOverrides;
  lockPassedUnchanged = deps.npmDeps.packageLock == lib.importJSON (root + "/package-lock.json");
}
