# programs.vmsilo: Qubes-style compartments. Only imports; see the files for what each does.
{
  imports = [
    ./options.nix
    ./assertions.nix
    ./serialise.nix
    ./generate.nix
    ./wiring.nix
  ];
}
