# For test/nix/flake.test.ts: calls flake.nix's `outputs` with a stand-in nixpkgs (nixpkgs' lib,
# and package functions that record what they were given) and lists what the flake provides.
{ lib }:
let
  flake = import ../../../flake.nix;
  record = kind: args: {
    inherit kind;
    type = "derivation";
    outPath = "/nix/store/00000000000000000000000000000000-${kind}";
    passthru = args;
  };
  pkgs = {
    stdenv.hostPlatform.system = "x86_64-linux";
    callPackage = path: args: record "callPackage" { inherit path; };
    runCommand = name: env: script: record "runCommand" { inherit name env; };
    testers.runNixOSTest = test: record "runNixOSTest" { inherit test; };
    mkShell = args: record "mkShell" args;
    nixfmt-rfc-style = record "nixfmt-rfc-style" { };
    nodejs = record "nodejs" { };
    shellcheck = record "shellcheck" { };
    systemd = record "systemd" { };
    nix = record "nix" { };
  };
  nixpkgs = {
    outPath = "/nix/store/00000000000000000000000000000000-nixpkgs";
    legacyPackages.x86_64-linux = pkgs;
    lib = lib // {
      nixosSystem = args: {
        config.programs.vmsilo.build.json = { };
        config.system.build.toplevel.drvPath = "/nix/store/00000000000000000000000000000000-toplevel.drv";
      };
    };
  };
  outputs = flake.outputs {
    inherit self nixpkgs;
  };
  self = outputs // {
    outPath = ../../..;
  };
  names = attrs: builtins.attrNames attrs;
in
{
  inputs = flake.inputs;
  outputs = lib.mapAttrs (_: names) outputs;
  perSystem = {
    packages = names outputs.packages.x86_64-linux;
    checks = names outputs.checks.x86_64-linux;
    devShells = names outputs.devShells.x86_64-linux;
    formatter = outputs.formatter.x86_64-linux.kind;
    packageFile = toString outputs.packages.x86_64-linux.vmsilo-gen.passthru.path;
    toolsFile = toString outputs.packages.x86_64-linux.vmsilo-tools.passthru.path;
    toolsCheckIsPackage = outputs.checks.x86_64-linux.vmsilo-tools == outputs.packages.x86_64-linux.vmsilo-tools;
    defaultIsGen = outputs.packages.x86_64-linux.default == outputs.packages.x86_64-linux.vmsilo-gen;
    devShellLib = outputs.devShells.x86_64-linux.default.passthru.NIXPKGS_LIB;
  };
  overlay = names (outputs.overlays.default pkgs { });
  overlayFiles = lib.mapAttrs (_: p: toString p.passthru.path) (outputs.overlays.default pkgs { });
  moduleIsDirectory = toString outputs.nixosModules.default == toString ../../../nixos-module;
  vmsiloIsDefault = outputs.nixosModules.vmsilo == outputs.nixosModules.default;
}
