# Stands in for nixpkgs' nixos/lib/eval-config.nix in the tests (no full nixpkgs here): instead
# of evaluating a NixOS system it hands back the arguments it got, and the few config values
# rootfs/default.nix reads, so the tests can check what vmsilo asks NixOS to build.
args: {
  inherit args;
  config = {
    system.build.toplevel = "/nix/store/00000000000000000000000000000000-nixos-system";
    system.build.initialRamdisk = "/nix/store/00000000000000000000000000000000-initrd";
    system.boot.loader = {
      kernelFile = "bzImage";
      initrdFile = "initrd";
    };
    boot.kernelPackages.kernel = "/nix/store/00000000000000000000000000000000-linux";
    boot.kernelParams = [
      "console=hvc0"
      "net.ifnames=0"
    ];
  };
}
