# vmsilo-gen, the generator, built with buildNpmPackage: `npm run build` (tsc), `npm test` as
# the check phase, the CLI installed as bin/vmsilo-gen with its man page and completions.
# Dependencies: npm-deps.nix.
{
  lib,
  buildNpmPackage,
  importNpmLock,
  callPackage,
  nodejs,
  shellcheck,
  systemd,
}:
let
  root = ../..;
  package = lib.importJSON (root + "/package.json");
  packageLock = lib.importJSON (root + "/package-lock.json");
  deps = callPackage ./npm-deps.nix { } { inherit package packageLock; };
in
buildNpmPackage {
  pname = "vmsilo-gen";
  inherit (package) version;
  inherit nodejs;

  # What the build and the tests read; the Nix files are left out, so editing the module does
  # not rebuild the generator.
  src = lib.fileset.toSource {
    inherit root;
    fileset = lib.fileset.unions [
      (root + "/package.json")
      (root + "/package-lock.json")
      (root + "/tsconfig.json")
      (root + "/src")
      (root + "/templates")
      (root + "/test")
      (root + "/examples")
      (root + "/docs")
      (root + "/README.md")
      # The vm-run programs (C): the check phase builds and tests them (test/vmrun/); the
      # package that installs them is vmsilo-tools.nix.
      (root + "/agent")
    ];
  };

  inherit (deps) npmDeps;
  npmConfigHook = importNpmLock.npmConfigHook;
  npmBuildScript = "build";

  doCheck = true;
  # shellcheck and systemd-analyze for the lint layer (test/lint/).
  nativeCheckInputs = [
    shellcheck
    systemd
  ];
  checkPhase = ''
    runHook preCheck
    npm test
    runHook postCheck
  '';

  # vmsilo-gen's man page and bash, zsh and fish completions, made from its command line.
  postInstall = ''
    node dist/src/own-docs.js "$out"
  '';

  passthru = {
    inherit (deps) tarballs;
  };

  meta = {
    description = "Generator of vmsilo's launchers, systemd units, CLIs, polkit and tmpfiles rules";
    license = lib.licenses.mit;
    mainProgram = "vmsilo-gen";
    platforms = lib.platforms.linux;
  };
}
