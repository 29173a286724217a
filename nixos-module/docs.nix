# packages.x86_64-linux.docs: the reference of programs.vmsilo's options. nixosOptionsDoc renders
# it as the NixOS manual does (nixos-options.md, options.json); `vmsilo-gen options-doc` renders
# the repository's docs/options.md from that same options.json, so `diff result/options.md
# docs/options.md` shows whether the committed page is current.
{
  lib,
  pkgs,
  module,
  vmsilo-gen,
}:
let
  host = lib.nixosSystem {
    modules = [
      module
      { nixpkgs.hostPlatform = pkgs.stdenv.hostPlatform.system; }
    ];
  };
  root = toString ./..;
  optionsDoc = pkgs.nixosOptionsDoc {
    options = host.options.programs.vmsilo;
    # Declarations as paths in the repository, not in the store.
    transformOptions =
      opt: opt // { declarations = map (d: lib.removePrefix "${root}/" (toString d)) opt.declarations; };
  };
in
pkgs.runCommand "vmsilo-docs"
  {
    nativeBuildInputs = [ vmsilo-gen ];
    passthru = { inherit optionsDoc; };
  }
  ''
    mkdir -p "$out"
    cp ${optionsDoc.optionsCommonMark} "$out/nixos-options.md"
    cp ${optionsDoc.optionsJSON}/share/doc/nixos/options.json "$out/options.json"
    vmsilo-gen options-doc --options "$out/options.json" > "$out/options.md"
  ''
