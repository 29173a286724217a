{
  description = "vmsilo: Qubes-style compartments for NixOS";

  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-25.11";

  outputs =
    { self, nixpkgs }:
    let
      system = "x86_64-linux";
      pkgs = nixpkgs.legacyPackages.${system};
      inherit (nixpkgs) lib;
      vmsilo-gen = pkgs.callPackage ./nixos-module/pkgs/vmsilo-gen.nix { };
      vmsilo-tools = pkgs.callPackage ./nixos-module/pkgs/vmsilo-tools.nix { };
    in
    {
      # programs.vmsilo. Its packages (the generator, the vm-run programs) default to
      # pkgs.vmsilo-gen and pkgs.vmsilo-tools when the overlay is applied, else to the same
      # packages built from this repository with the host's pkgs.
      nixosModules.vmsilo = ./nixos-module;
      nixosModules.default = self.nixosModules.vmsilo;

      overlays.default = final: _prev: {
        vmsilo-gen = final.callPackage ./nixos-module/pkgs/vmsilo-gen.nix { };
        vmsilo-tools = final.callPackage ./nixos-module/pkgs/vmsilo-tools.nix { };
      };

      packages.${system} = {
        inherit vmsilo-gen vmsilo-tools;
        default = vmsilo-gen;
        # The options reference (docs/options.md and nixosOptionsDoc's page and JSON).
        docs = import ./nixos-module/docs.nix {
          inherit lib pkgs vmsilo-gen;
          module = self.nixosModules.default;
        };
      };

      checks.${system} = import ./nixos-module/checks {
        inherit pkgs lib self;
      };

      # On nixos-25.11 nixfmt is the RFC 166 formatter; nixfmt-rfc-style is a deprecated alias
      # of it (pkgs/top-level/aliases.nix) that warns on later nixpkgs.
      formatter.${system} = pkgs.nixfmt;

      devShells.${system}.default = pkgs.mkShell {
        packages = [
          pkgs.nodejs
          pkgs.shellcheck
          pkgs.systemd
          pkgs.nix
          pkgs.nixfmt
        ];
        # The Nix tests (test/nix/) evaluate the module against nixpkgs' lib.
        NIXPKGS_LIB = "${nixpkgs}";
      };
    };
}
