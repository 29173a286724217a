# The read-only root: the store closure of the guest system as an erofs image (label
# vmsilo-store), mounted by the guest at /nix/.ro-store under its /nix/store overlay
# (guest/boot.nix). Compressed with lz4hc on every core: mkfs.erofs compresses with several
# threads only when erofs-utils is built with --enable-multithreading, hence the override.
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
    # mkfs.erofs reads one directory tree: copy the closure into one (as microvm.nix does).
    mkdir store
    xargs -r cp -a --target-directory=store < ${closure}/store-paths

    workers=''${NIX_BUILD_CORES:-0}
    if [ "$workers" -lt 1 ]; then workers=$(nproc); fi
    mkfs.erofs --quiet -zlz4hc --workers="$workers" \
      -T 0 --all-root -L vmsilo-store --mount-point=/nix/store \
      "$out" store
  ''
