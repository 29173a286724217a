/**
 * Running Nix from the tests: nix-instantiate (Debian nix-bin) and nixpkgs' lib, found through
 * NIXPKGS_LIB (a checkout of nixpkgs.lib or of nixpkgs: a directory holding lib/default.nix).
 * Tests that need one of them print a `SKIP:` line and skip when it is missing.
 */
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { ROOT, have } from "../support/harness.js";

export const NIX_DIR = join(ROOT, "test", "nix", "nix");
export const EVAL_NIX = join(NIX_DIR, "eval.nix");
export const HAVE_NIX = have("nix-instantiate");

/** The directory to `import` as nixpkgs' lib, or null. */
export function nixpkgsLib(): string | null {
  const dir = process.env.NIXPKGS_LIB;
  if (!dir) return null;
  if (existsSync(join(dir, "lib", "default.nix"))) return join(dir, "lib");
  if (existsSync(join(dir, "default.nix"))) return dir;
  return null;
}

type Skippable = { skip(msg?: string): void };

/** Each reason is printed once per test file, however many tests it skips. */
const printed = new Set<string>();
function skipLine(line: string): void {
  if (!printed.has(line)) console.log(line);
  printed.add(line);
}

/** True (after printing a SKIP line) when nix-instantiate is missing. */
export function skipWithoutNix(t: Skippable): boolean {
  if (HAVE_NIX) return false;
  skipLine("SKIP: nix-instantiate not installed (apt-get install nix-bin)");
  t.skip("nix-instantiate not installed");
  return true;
}

/** True (after printing a SKIP line) when nix-instantiate or nixpkgs' lib is missing. */
export function skipWithoutLib(t: Skippable): boolean {
  if (skipWithoutNix(t)) return true;
  if (nixpkgsLib() !== null) return false;
  const why = process.env.NIXPKGS_LIB ? `NIXPKGS_LIB=${process.env.NIXPKGS_LIB} holds no lib/default.nix` : "NIXPKGS_LIB not set";
  skipLine(`SKIP: ${why} (point it at a checkout of nixpkgs.lib or nixpkgs to evaluate the NixOS module)`);
  t.skip(why);
  return true;
}

export interface NixResult {
  status: number | null;
  stdout: string;
  stderr: string;
}

/** `nix-instantiate --eval --strict --json FILE --arg … --argstr …`, offline. */
export function nixEval(file: string, args: Record<string, string> = {}, argstrs: Record<string, string> = {}): NixResult {
  const argv = ["--eval", "--strict", "--json", "--option", "substituters", "", file];
  for (const [k, v] of Object.entries(args)) argv.push("--arg", k, v);
  for (const [k, v] of Object.entries(argstrs)) argv.push("--argstr", k, v);
  const r = spawnSync("nix-instantiate", argv, { encoding: "utf8", cwd: ROOT, maxBuffer: 64 * 1024 * 1024 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

export function libArg(): string {
  const lib = nixpkgsLib();
  if (lib === null) throw new Error("nixpkgs' lib not found");
  return `import ${JSON.stringify(lib)}`;
}

export interface ModuleEval {
  failedAssertions: string[];
  json: Record<string, unknown> | null;
  wiring: Record<string, unknown> | null;
  generate: { script: string; nativeBuildInputs: string[]; configFile: string; configText: string } | null;
  /** The names of the guest systems built: templates, and VMs with a guest of their own. */
  guestSystems: { templates: string[]; vms: string[] } | null;
}

/**
 * Evaluates nixos-module/ with a test configuration (test/nix/nix/configs/NAME.nix) plus extra
 * modules given as Nix expressions. Throws with nix's stderr when evaluation fails.
 */
export function evalModule(config: string, extraModules: string[] = []): ModuleEval {
  const r = evalModuleRaw(config, extraModules);
  if (r.status !== 0) throw new Error(`nix-instantiate failed (${r.status}):\n${r.stderr}`);
  return JSON.parse(r.stdout) as ModuleEval;
}

export function evalModuleRaw(config: string, extraModules: string[] = []): NixResult {
  const configPath = config.startsWith("/") ? config : join(NIX_DIR, "configs", `${config}.nix`);
  return nixEval(EVAL_NIX, {
    lib: libArg(),
    configuration: configPath,
    extraModules: `[ ${extraModules.map((m) => `(${m})`).join(" ")} ]`,
  });
}
