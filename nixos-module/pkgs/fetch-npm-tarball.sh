# Fetches one npm package tarball by name and version, as the registry serves it, into $out.
# The builder of the fixed-output derivations of npm-deps.nix; test/nix/npm-deps.test.ts runs
# the same script outside Nix and checks the result against package-lock.json's integrity.
# Inputs (environment): packageName, packageVersion, out. npm must be on PATH.
set -euo pipefail

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export HOME="$work/home" npm_config_cache="$work/cache"
export npm_config_update_notifier=false npm_config_fund=false npm_config_audit=false
mkdir -p "$HOME" "$work/pack"

# npm pack of a registry spec writes the registry's tarball unchanged (no scripts run for it).
npm pack --ignore-scripts --silent --pack-destination "$work/pack" "$packageName@$packageVersion" >/dev/null

shopt -s nullglob
tarballs=("$work"/pack/*.tgz)
if [ "${#tarballs[@]}" -ne 1 ]; then
  echo "fetch-npm-tarball: expected one tarball for $packageName@$packageVersion, got ${#tarballs[@]}" >&2
  exit 1
fi
mv "${tarballs[0]}" "$out"
