# boot.kernelModules as NixOS 25.11 declares it (nixpkgs PR 375975): a list of names or an
# attribute set of names to booleans, read back as the sorted list of the enabled names. Shared
# by the stand-ins of stub-nixos.nix, guest-agent.nix and guest-system.nix.
lib:
lib.mkOption {
  type = lib.types.coercedTo (lib.types.listOf lib.types.str) (names: lib.genAttrs names (_: true)) (
    lib.types.attrsOf lib.types.bool
  );
  default = { };
  apply = modules: builtins.attrNames (lib.filterAttrs (_: enabled: enabled) modules);
}
