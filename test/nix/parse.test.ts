/** Every .nix file of the repository parses (`nix-instantiate --parse`, a syntax check). */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { readdirSync } from "node:fs";
import { join, relative } from "node:path";
import { ROOT } from "../support/harness.js";
import { skipWithoutNix } from "./support.js";

const SKIP_DIRS = new Set(["node_modules", "dist", "out", ".git", "result"]);

function nixFiles(dir: string): string[] {
  const found: string[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    if (entry.isDirectory()) {
      if (!SKIP_DIRS.has(entry.name)) found.push(...nixFiles(join(dir, entry.name)));
    } else if (entry.name.endsWith(".nix")) found.push(join(dir, entry.name));
  }
  return found;
}

test("the repository has the Nix files the design names", () => {
  const files = nixFiles(ROOT).map((f) => relative(ROOT, f));
  for (const f of ["flake.nix", "nixos-module/default.nix", "nixos-module/options.nix", "nixos-module/assertions.nix", "nixos-module/serialise.nix", "nixos-module/wiring.nix", "nixos-module/guest/default.nix", "nixos-module/rootfs/default.nix"]) {
    assert.ok(files.includes(f), `${f} is missing`);
  }
});

test("every .nix file parses with nix-instantiate --parse", (t) => {
  if (skipWithoutNix(t)) return;
  const files = nixFiles(ROOT);
  assert.ok(files.length >= 20, `expected the module, guest, checks and test files, found ${files.length}`);
  const failures: string[] = [];
  for (const f of files) {
    const r = spawnSync("nix-instantiate", ["--parse", f], { encoding: "utf8" });
    if (r.status !== 0) failures.push(`${relative(ROOT, f)}:\n${r.stderr}`);
  }
  assert.deepEqual(failures, [], "files that do not parse");
});

test("nixos-module/default.nix only imports", (t) => {
  if (skipWithoutNix(t)) return;
  // Evaluates the file itself (not the modules): an attribute set with `imports` and nothing else.
  const r = spawnSync("nix-instantiate", ["--eval", "--strict", "--json", "-E", `builtins.attrNames (import ${join(ROOT, "nixos-module", "default.nix")})`], { encoding: "utf8" });
  assert.equal(r.status, 0, r.stderr);
  assert.deepEqual(JSON.parse(r.stdout), ["imports"]);
});
