# For test/nix/eval.test.ts: the option documentation as the NixOS manual would render it
# (lib.optionAttrSetToDocList), so a description, default or example that cannot be rendered
# fails here rather than in a user's system build.
{ lib }:
let
  inherit
    (import ./stub-host.nix {
      inherit lib;
      modules = [ ../../../nixos-module ];
    })
    eval
    ;
in
map (o: {
  inherit (o) name description type;
  default = o.default or null;
  example = o.example or null;
}) (builtins.filter (o: o.visible && !o.internal) (lib.optionAttrSetToDocList eval.options.programs.vmsilo))
