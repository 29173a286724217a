# The generator run as a derivation (nixpkgs style: write JSON, run the tool over it in
# runCommand, use the result only as store paths). An invalid configuration that got past the
# assertions fails here, with every issue printed with its JSON path (like promtool for
# prometheus). Nix never reads the output at evaluation time (no import-from-derivation).
{
  config,
  pkgs,
  ...
}:
let
  cfg = config.programs.vmsilo;
in
{
  programs.vmsilo.build.generated =
    pkgs.runCommandLocal "vmsilo-host"
      {
        nativeBuildInputs = [ cfg.package ];
        passthru.config = cfg.build.configFile;
      }
      ''
        # Rendered outside the store with --prefix $out (scripts and units name their final
        # paths), then moved into place; render itself writes atomically.
        vmsilo-gen render --config ${cfg.build.configFile} --out "$TMPDIR/tree" --prefix "$out"
        mv "$TMPDIR/tree" "$out"
      '';

  # The topology of this host's VMs (docs/topology.md), built only when asked for:
  # nix build .#nixosConfigurations.<host>.config.programs.vmsilo.build.graph
  programs.vmsilo.build.graph =
    pkgs.runCommandLocal "vmsilo-graph"
      {
        nativeBuildInputs = [
          cfg.package
          pkgs.graphviz
        ];
      }
      ''
        mkdir -p "$out"
        vmsilo-gen graph --config ${cfg.build.configFile} > "$out/vmsilo.dot"
        vmsilo-gen graph --config ${cfg.build.configFile} --format svg > "$out/vmsilo.svg"
      '';
}
