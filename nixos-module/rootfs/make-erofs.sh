# shellcheck shell=bash
# Packs a store closure into the guest's read-only root: one erofs image with every store path
# at its top level (the guest mounts it under /nix/store), label vmsilo-store, lz4hc, all files
# root-owned with timestamp 0, the same bytes from the same closure. The builder of erofs.nix; test/nix/erofs-image.test.ts runs this
# same script outside Nix and reads the image back with erofs-utils and the kernel.
#   bash make-erofs.sh STORE_PATHS OUT
# STORE_PATHS: closureInfo's store-paths (one absolute store path a line); OUT: the image.
# Compression threads: NIX_BUILD_CORES, or every core when it is unset or 0 (as Nix means 0).
# mkfs.erofs must accept --workers, i.e. be built with --enable-multithreading.
set -euo pipefail

if [ "$#" -ne 2 ]; then
  echo "usage: make-erofs.sh STORE_PATHS OUT" >&2
  exit 2
fi
store_paths=$1
out=$2

# mkfs.erofs reads one directory tree: copy the closure into one (as microvm.nix does). Its
# root becomes the image root, so it is 0755 whatever the umask (mktemp -d makes 0700).
staging=$(mktemp -d)
# Store paths are read-only and cp -a keeps that: make them writable to remove them.
trap 'chmod -R u+w "$staging" && rm -rf "$staging"' EXIT
mkdir -m 0755 "$staging/store"
xargs -r -d '\n' cp -a --target-directory="$staging/store" <"$store_paths"

workers=${NIX_BUILD_CORES:-0}
if [ "$workers" -lt 1 ]; then workers=$(nproc); fi
# mkfs.erofs would pick a random filesystem UUID: derive it from the output path instead, so the
# same closure gives the same image byte for byte (the guest finds the image by its label).
uuid=$(printf '%s' "$out" | sha256sum | sed -E 's/^(.{8})(.{4})(.{4})(.{4})(.{12}).*/\1-\2-\3-\4-\5/')
mkfs.erofs --quiet -zlz4hc --workers="$workers" \
  -T 0 -U "$uuid" --all-root -L vmsilo-store --mount-point=/nix/store \
  "$out" "$staging/store"
