/**
 * Evaluation time of the NixOS module for 1, 10 and 100 VMs: a whole `nix-instantiate --eval
 * --strict` of vmsilo.json's text and the assertions under lib.evalModules (nixpkgs' lib from
 * NIXPKGS_LIB, stub pkgs; test/nix/nix/eval.nix), start-up included, median of BENCH_RUNS runs.
 * The last line is the ratio of 100 VMs to 1 VM; the goal is ≤ 2.
 *
 *   npx tsc -p . && NIXPKGS_LIB=/path/to/nixpkgs.lib node dist/test/bench/nix-eval-bench.js
 *
 * Each VM is a typical one (as in render-bench.ts): a share, a DHCP interface on a bridge, a
 * tmpfs overlay, a dependency on the first VM.
 */
import { spawnSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { tempDir } from "../support/harness.js";
import { EVAL_NIX, HAVE_NIX, NIX_DIR, libArg, nixpkgsLib } from "../nix/support.js";

const RUNS = Number(process.env.BENCH_RUNS ?? 7);

if (!HAVE_NIX || nixpkgsLib() === null) {
  console.log(`SKIP: ${HAVE_NIX ? "NIXPKGS_LIB not set (or holds no lib/default.nix)" : "nix-instantiate not installed"}; nothing measured`);
  process.exit(0);
}

function configuration(n: number): string {
  return `stubs:
{ lib, ... }:
let
  names = map (i: "vm" + lib.fixedWidthNumber 4 i) (lib.range 0 (${n} - 1));
in
{
  users.users.alice = { isNormalUser = true; uid = 1000; group = "users"; home = "/home/alice"; };
  users.groups.users.gid = 100;
  networking.bridges.br-lan.interfaces = [ ];
  programs.vmsilo = {
    enable = true;
    user = "alice";
    guestBuilder = { name, ... }: {
      kernel = "/nix/store/00000000000000000000000000000000-vmsilo-rootfs-\${name}/bzImage";
      initrd = "/nix/store/00000000000000000000000000000000-vmsilo-rootfs-\${name}/initrd";
      rootImage = "/nix/store/00000000000000000000000000000000-vmsilo-rootfs-\${name}/nixos.erofs";
      init = "/nix/store/00000000000000000000000000000000-nixos-system-\${name}/init";
      kernelParams = [ "console=hvc0" ];
    };
    nixosVms = lib.genAttrs names (name: {
      memory = 2048;
      color = "green";
      dependsOn = lib.optional (name != "vm0000") "vm0000";
      autoShutdown = { enable = true; after = 600; };
      network.interfaces.eth0 = { dhcp = true; tap.bridge = "br-lan"; };
      sharedDirectories.downloads = { path = "/home/alice/Downloads/\${name}"; readonly = true; };
      crosvm.logLevel = "warn";
    });
  };
}
`;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

const dir = tempDir("nix-bench");
const times = new Map<number, number>();
for (const n of [1, 10, 100]) {
  const file = join(dir, `vms-${n}.nix`);
  writeFileSync(file, configuration(n));
  // What a NixOS evaluation forces of vmsilo: the assertions and vmsilo.json's text (the store
  // file the generator's derivation reads); printed is only a summary.
  const expr = `let r = import ${EVAL_NIX} { lib = ${libArg()}; configuration = ${file}; }; in {
    inherit (r) failedAssertions;
    vms = if r.json == null then 0 else builtins.length (builtins.attrNames r.json.nixosVms);
    bytes = if r.generate == null then 0 else builtins.stringLength r.generate.configText;
  }`;
  const argv = ["--eval", "--strict", "--json", "--option", "substituters", "", "--expr", expr];
  const samples: number[] = [];
  for (let r = 0; r < RUNS; r++) {
    const t0 = process.hrtime.bigint();
    const res = spawnSync("nix-instantiate", argv, { encoding: "utf8", maxBuffer: 64 * 1024 * 1024 });
    const ms = Number(process.hrtime.bigint() - t0) / 1e6;
    if (res.status !== 0) throw new Error(`evaluation of ${n} VMs failed:\n${res.stderr}`);
    const out = JSON.parse(res.stdout) as { failedAssertions: string[]; vms: number; bytes: number };
    if (out.failedAssertions.length || out.vms !== n || out.bytes === 0) throw new Error(`evaluation of ${n} VMs: ${out.failedAssertions.join("; ")}`);
    samples.push(ms);
  }
  times.set(n, median(samples));
  console.log(`nix eval ${String(n).padStart(3)} VMs: ${median(samples).toFixed(1)} ms (median of ${RUNS})`);
}
console.log(`each further VM: ${((times.get(100)! - times.get(1)!) / 99).toFixed(2)} ms`);

// Guest systems evaluated for the VMs of test/nix/nix/configs/templates.nix, all on 3 templates
// (its VM with a guest of its own moved onto one): each call of the guest builder leaves a trace line, and Nix
// evaluates a shared guest once however many VMs name it.
{
  const traced = `{ lib, ... }: { programs.vmsilo.nixosVms.solo = lib.mkForce { template = "office"; }; programs.vmsilo.guestBuilder = lib.mkForce ({ name, ... }: builtins.trace "vmsilo-guest-build \${name}" ((import ${join(NIX_DIR, "stubs.nix")}).guestNamed name)); }`;
  const expr = `let r = import ${EVAL_NIX} { lib = ${libArg()}; configuration = ${join(NIX_DIR, "configs", "templates.nix")}; extraModules = [ (${traced}) ]; }; in { inherit (r) failedAssertions; vms = builtins.length (builtins.attrNames r.json.nixosVms); paths = builtins.attrValues (builtins.mapAttrs (_: vm: vm.rootDisk.path) r.json.nixosVms); }`;
  const res = spawnSync("nix-instantiate", ["--eval", "--strict", "--json", "--option", "substituters", "", "--expr", expr], { encoding: "utf8", maxBuffer: 64 * 1024 * 1024 });
  if (res.status !== 0) throw new Error(`evaluation of the templates configuration failed:\n${res.stderr}`);
  const builds = res.stderr.split("\n").filter((l) => l.includes("vmsilo-guest-build")).length;
  const out = JSON.parse(res.stdout) as { vms: number; paths: string[] };
  console.log(`${out.vms} VMs on 3 templates: ${builds} guest evaluations, ${new Set(out.paths).size} images (goal 3)`);
}
const ratio = times.get(100)! / times.get(1)!;
console.log(`ratio 100 VMs / 1 VM: ${ratio.toFixed(2)} (goal ≤ 2)`);
