# For test/nix/vmsilo-tools.test.ts: nixos-module/pkgs/vmsilo-tools.nix called with a stand-in
# stdenv (mkDerivation hands back its arguments) and lib.fileset's two functions recorded instead
# of run (they need Nix >= 2.14 and copy to the store), so the test sees what would be built.
{ lib }:
let
  stdenv = {
    mkDerivation = args: args;
    cc.targetPrefix = "";
  };
  fileset = lib.fileset // {
    fileFilter = pred: root: { inherit pred root; };
    toSource = { root, fileset }: { inherit root fileset; };
  };
  # The build inputs by name: what pkgs would give.
  named = pname: { inherit pname; };
  drv = import ../../../nixos-module/pkgs/vmsilo-tools.nix {
    lib = lib // { inherit fileset; };
    inherit stdenv;
    pkg-config = named "pkg-config";
    wayland = named "wayland";
    wayland-protocols = named "wayland-protocols";
    wayland-scanner = named "wayland-scanner";
    systemdLibs = named "systemd-minimal-libs";
  };
  # What lib.fileset.fileFilter gives its predicate for a regular file.
  file = name: {
    inherit name;
    type = "regular";
    hasExt = ext: lib.hasSuffix ".${ext}" name;
  };
  candidates = [
    "Makefile"
    "common.c"
    "common.h"
    "protocol.h"
    "vmsilo-agent.c"
    "vmsilo-test-accept.c"
    "README.md"
    "vmsilo-agent.o"
    "vmsilo-agent"
    "vmsilo-run"
    "Makefile.orig"
  ];
in
{
  inherit (drv)
    pname
    version
    outputs
    makeFlags
    buildFlags
    installTargets
    installFlags
    strictDeps
    enableParallelBuilding
    doInstallCheck
    installCheckPhase
    ;
  meta = { inherit (drv.meta) mainProgram description; };
  linuxOnly = drv.meta.platforms == lib.platforms.linux;
  license = drv.meta.license.spdxId;
  srcRoot = toString drv.src.root;
  filesetRoot = toString drv.src.fileset.root;
  sourceFiles = builtins.filter (n: drv.src.fileset.pred (file n)) candidates;
  nativeBuildInputs = map (p: p.pname) drv.nativeBuildInputs;
  buildInputs = map (p: p.pname) drv.buildInputs;
  outPlaceholder = builtins.placeholder "out";
  waylandPlaceholder = builtins.placeholder "wayland";
  trayPlaceholder = builtins.placeholder "tray";
}
