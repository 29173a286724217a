# The read-only root: the store closure of the guest system as an erofs image (label
# vmsilo-store), mounted by the guest at /nix/.ro-store under its /nix/store overlay
# (guest/boot.nix). Built by make-erofs.sh (tested outside Nix by test/nix/erofs-image.test.ts).
# Compressed with lz4hc on every core: mkfs.erofs compresses with several threads only when
# erofs-utils is built with --enable-multithreading, hence the override.
{
  lib,
  runCommand,
  closureInfo,
  erofs-utils,
  name,
  rootPaths,
}:
let
  erofs-utils-mt = erofs-utils.overrideAttrs (old: {
    configureFlags = lib.unique ((old.configureFlags or [ ]) ++ [ "--enable-multithreading" ]);
  });
  closure = closureInfo { inherit rootPaths; };
in
runCommand "vmsilo-rootfs-${name}.erofs"
  {
    nativeBuildInputs = [ erofs-utils-mt ];
    passthru = { inherit closure; };
  }
  ''
    bash ${./make-erofs.sh} ${closure}/store-paths "$out"
  ''
