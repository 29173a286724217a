# For test/nix/grammar-parity.test.ts: runs every grammar of nixos-module/lib.nix over sample
# strings (a JSON file: grammar name → list of strings) and returns which match, plus the
# grammars' wording, the reserved VM names, what the vmName option type accepts and the crosvm
# vhost-user device types the vhostUserType enum accepts.
{ lib, samplesFile }:
let
  v = import ../../../nixos-module/lib.nix { inherit lib; };
  samples = builtins.fromJSON (builtins.readFile samplesFile);
in
{
  matches = lib.mapAttrs (g: map (v.matches g)) (removeAttrs samples [ "vhostUserType" ]);
  texts = lib.mapAttrs (_: g: g.text) v.grammars;
  reserved = v.reservedVmNames;
  vmNameType = map v.types.vmName.check (samples.vmName or [ ]);
  vhostUserType = map v.types.vhostUserType.check (samples.vhostUserType or [ ]);
}
