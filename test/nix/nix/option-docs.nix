# The option documentation of programs.vmsilo as nixosOptionsDoc hands it on (its `optionsNix`:
# lib.optionAttrSetToDocList, visible and not internal, keyed by name), under the stub host.
# For test/nix/eval.test.ts and test/nix/options-doc.test.ts: a description, default or example
# that cannot be rendered fails here rather than in a user's build, and docs/options.md is
# rendered from this by `vmsilo-gen options-doc` as the flake's `docs` package renders it from
# nixosOptionsDoc's options.json. Declarations are left out (store paths here).
{ lib }:
let
  inherit
    (import ./stub-host.nix {
      inherit lib;
      modules = [ ../../../nixos-module ];
    })
    eval
    ;
  visible = builtins.filter (o: o.visible && !o.internal) (
    lib.optionAttrSetToDocList eval.options.programs.vmsilo
  );
in
builtins.listToAttrs (
  map (o: {
    inherit (o) name;
    value = removeAttrs o [
      "name"
      "visible"
      "internal"
      "declarations"
    ];
  }) visible
)
