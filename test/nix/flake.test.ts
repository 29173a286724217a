/**
 * The flake's outputs are what issue 5 lists, and flake.lock pins the nixpkgs entry of
 * ../shared/nixpkgs-lock.json. Full nixpkgs is not available here, so `outputs` is called with a
 * stand-in nixpkgs (test/nix/nix/flake-outputs.nix): this checks the shape, not the builds.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { ROOT, runCli, tempDir } from "../support/harness.js";
import { NIX_DIR, libArg, nixEval, skipWithoutLib } from "./support.js";

test("flake outputs: modules, packages, overlay, checks, formatter, dev shell", (t) => {
  if (skipWithoutLib(t)) return;
  const r = nixEval(join(NIX_DIR, "flake-outputs.nix"), { lib: libArg() });
  assert.equal(r.status, 0, r.stderr);
  const out = JSON.parse(r.stdout);
  assert.deepEqual(out.inputs, { nixpkgs: { url: "github:NixOS/nixpkgs/nixos-25.11" } });
  assert.deepEqual(out.outputs, {
    checks: ["x86_64-linux"],
    devShells: ["x86_64-linux"],
    formatter: ["x86_64-linux"],
    nixosModules: ["default", "vmsilo"],
    overlays: ["default"],
    packages: ["x86_64-linux"],
  });
  assert.deepEqual(out.perSystem.packages, ["default", "docs", "vmsilo-gen", "vmsilo-tools"]);
  // The options reference: nixosOptionsDoc over programs.vmsilo's options, rendered again by vmsilo-gen.
  assert.deepEqual(out.perSystem.docs.builder, ["callPackage"], "docs are rendered by the vmsilo-gen package");
  assert.ok(out.perSystem.docs.options >= 100, `${out.perSystem.docs.options} options handed to nixosOptionsDoc`);
  assert.deepEqual(out.perSystem.docs.declaration, ["nixos-module/options.nix"]);
  assert.ok(out.perSystem.defaultIsGen);
  assert.match(out.perSystem.packageFile, /nixos-module\/pkgs\/vmsilo-gen\.nix$/);
  assert.match(out.perSystem.toolsFile, /nixos-module\/pkgs\/vmsilo-tools\.nix$/);
  assert.deepEqual(out.perSystem.checks, ["eval-example", "vm-lifecycle", "vmsilo-gen", "vmsilo-tools"]);
  assert.ok(out.perSystem.toolsCheckIsPackage, "checks.vmsilo-tools is the package (its install check)");
  assert.deepEqual(out.perSystem.devShells, ["default"]);
  assert.equal(out.perSystem.formatter, "nixfmt");
  assert.equal(out.perSystem.devShellLib, "/nix/store/00000000000000000000000000000000-nixpkgs");
  assert.deepEqual(out.overlay, ["vmsilo-gen", "vmsilo-tools"]);
  assert.match(out.overlayFiles["vmsilo-gen"], /nixos-module\/pkgs\/vmsilo-gen\.nix$/);
  assert.match(out.overlayFiles["vmsilo-tools"], /nixos-module\/pkgs\/vmsilo-tools\.nix$/);
  assert.ok(out.moduleIsDirectory, "nixosModules.default is nixos-module/");
  assert.ok(out.vmsiloIsDefault);

  // checks.vm-lifecycle's host, evaluated with the module's stubs: it passes the assertions, its one
  // VM is a qemu VM under TCG (no nested KVM needed), and the generator accepts its vmsilo.json.
  assert.deepEqual(out.vmTest.failedAssertions, []);
  const json = out.vmTest.json;
  assert.deepEqual(Object.keys(json.nixosVms), ["demo"]);
  assert.equal(json.nixosVms.demo.hypervisor, "qemu");
  assert.equal(json.nixosVms.demo.qemu.accel, "tcg");
  assert.equal(json.nixosVms.demo.qemu.machine, "q35");
  assert.equal(json.nixosVms.demo.qemu.vsock, true, "vm-run needs the VM's vsock");
  assert.notEqual(json.programs.qemu, null, "programs.qemu is written for the qemu VM");
  const file = join(tempDir("nix-vm-test"), "vmsilo.json");
  writeFileSync(file, JSON.stringify(json));
  const validated = runCli(["validate", "--config", file]);
  assert.equal(validated.status, 0, `vmsilo-gen validate rejected the VM test's vmsilo.json:\n${validated.stderr}`);
});

test("flake.lock pins nixpkgs nixos-25.11 with the published lock entry", () => {
  const lock = JSON.parse(readFileSync(join(ROOT, "flake.lock"), "utf8"));
  assert.equal(lock.version, 7);
  assert.equal(lock.root, "root");
  assert.deepEqual(lock.nodes.root, { inputs: { nixpkgs: "nixpkgs" } });
  assert.deepEqual(lock.nodes.nixpkgs.original, { owner: "NixOS", ref: "nixos-25.11", repo: "nixpkgs", type: "github" });
  assert.match(lock.nodes.nixpkgs.locked.narHash, /^sha256-[A-Za-z0-9+/]{43}=$/);
  const shared = join(ROOT, "..", "shared", "nixpkgs-lock.json");
  if (!existsSync(shared)) {
    console.log("SKIP: ../shared/nixpkgs-lock.json not found; not comparing the lock entry with it");
    return;
  }
  const entry = JSON.parse(readFileSync(shared, "utf8")).nixpkgs;
  assert.deepEqual(lock.nodes.nixpkgs, { locked: entry.locked, original: entry.original });
});
