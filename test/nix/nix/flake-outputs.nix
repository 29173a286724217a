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
    nixosOptionsDoc = args: record "nixosOptionsDoc" args // {
      optionsJSON = "/nix/store/00000000000000000000000000000000-options.json";
      optionsCommonMark = "/nix/store/00000000000000000000000000000000-options.md";
    };
    testers.runNixOSTest = test: record "runNixOSTest" { inherit test; };
    mkShell = args: record "mkShell" args;
    nixfmt = record "nixfmt" { };
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
        # The module's options under the stub host, for the docs package's nixosOptionsDoc.
        inherit
          ((import ./stub-host.nix {
            inherit lib;
            modules = [ ../../../nixos-module ];
          }).eval)
          options
          ;
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

  # The host node of checks.vm-lifecycle (the test handed to runNixOSTest) under lib.evalModules
  # with the module's test stubs (./eval.nix), so its configuration is checked here although the
  # test cannot run: the module's assertions pass and vmsilo.json holds the VM it describes.
  vmTest =
    let
      test = import outputs.checks.x86_64-linux.vm-lifecycle.passthru.test;
      host = import ./stub-host.nix {
        inherit lib;
        modules = [
          # What NixOS gives and the stub does not: the test driver's options, and the primary
          # group of a normal user (users-groups.nix: "users", gid 100).
          {
            options.virtualisation = lib.mkOption {
              type = lib.types.attrsOf lib.types.anything;
              default = { };
            };
            config.users.users.alice.group = lib.mkDefault "users";
            config.users.groups.users.gid = lib.mkDefault 100;
          }
          test.nodes.host
        ];
      };
    in
    {
      inherit (host) failedAssertions json;
    };
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
    docs =
      let
        inherit (outputs.packages.x86_64-linux.docs.passthru) env;
        optionsDoc = env.passthru.optionsDoc.passthru;
      in
      {
        builder = map (p: p.kind) env.nativeBuildInputs;
        options = builtins.length (lib.optionAttrSetToDocList optionsDoc.options);
        declaration =
          (optionsDoc.transformOptions {
            declarations = [ "${toString ../../..}/nixos-module/options.nix" ];
          }).declarations;
      };
  };
  overlay = names (outputs.overlays.default pkgs { });
  overlayFiles = lib.mapAttrs (_: p: toString p.passthru.path) (outputs.overlays.default pkgs { });
  moduleIsDirectory = toString outputs.nixosModules.default == toString ../../../nixos-module;
  vmsiloIsDefault = outputs.nixosModules.vmsilo == outputs.nixosModules.default;
  inherit vmTest;
}
