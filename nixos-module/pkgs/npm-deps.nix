# The npm dependencies of vmsilo-gen from the integrity-only package-lock.json (no `resolved`
# URLs, and no registry host anywhere in the repository; DESIGN.md, Dependencies).
#
# One fixed-output derivation per locked package: npm itself fetches `name@version` from the
# registry it is configured for, and Nix checks the tarball against the lock's `integrity`
# (an SRI sha512 hash, used as the derivation's outputHash). No hash has to be computed by hand.
# importNpmLock then gets every tarball through `packageSourceOverrides` and writes the lock
# with `file:` sources that npm installs offline.
{
  lib,
  stdenvNoCC,
  nodejs,
  cacert,
  importNpmLock,
}:
{
  package,
  packageLock,
}:
let
  # Lock keys are install paths (node_modules/a/node_modules/b); the package's own name is the
  # part after the last node_modules/ (scoped names keep their @scope/).
  nameOf = key: lib.last (lib.splitString "node_modules/" key);

  # Store names allow [A-Za-z0-9+._?=-]: "@types/node" becomes "types-node".
  storeName = name: lib.replaceStrings [ "@" "/" ] [ "" "-" ] name;

  fetchTarball =
    key: entry:
    let
      name = nameOf key;
    in
    assert lib.assertMsg (entry ? integrity && lib.hasPrefix "sha512-" entry.integrity)
      "package-lock.json: ${key} has no sha512 integrity; run npm install to refresh the lock.";
    stdenvNoCC.mkDerivation {
      name = "npm-${storeName name}-${entry.version}.tgz";
      packageName = name;
      packageVersion = entry.version;
      nativeBuildInputs = [ nodejs ];
      buildCommand = "bash ${./fetch-npm-tarball.sh}";
      # nixpkgs' node uses OpenSSL's CA store (--openssl-use-def-ca-store), which stdenv points
      # at /no-cert-file.crt in a build: npm gets cacert's bundle, as nixpkgs' own npm and yarn
      # fixed-output derivations do.
      NODE_EXTRA_CA_CERTS = "${cacert}/etc/ssl/certs/ca-bundle.crt";
      outputHashMode = "flat";
      outputHash = entry.integrity;
      # A mirror or proxy configured for npm on the build machine is honoured.
      impureEnvVars = lib.fetchers.proxyImpureEnvVars ++ [
        "NPM_CONFIG_REGISTRY"
        "npm_config_registry"
      ];
      preferLocalBuild = true;
    };

  # Every installed package: the root ("") and workspace links have nothing to fetch.
  locked = lib.filterAttrs (key: entry: key != "" && !(entry.link or false)) packageLock.packages;
  tarballs = lib.mapAttrs fetchTarball locked;
in
{
  inherit tarballs;
  npmDeps = importNpmLock {
    inherit package packageLock;
    packageSourceOverrides = tarballs;
  };
}
