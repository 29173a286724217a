# The names nixos-module/lib.nix gives the system users of qemu VMs, for names given in a file.
#   nix-instantiate --eval --strict --json vmm-user.nix --arg lib … --argstr namesFile /path.json
{ lib, namesFile }:
map (import ../../../nixos-module/lib.nix { inherit lib; }).vmmUser (builtins.fromJSON (builtins.readFile namesFile))
