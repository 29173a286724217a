/**
 * How the flake fetches npm dependencies (nixos-module/pkgs/npm-deps.nix): package-lock.json
 * keeps integrity only (no `resolved`, no registry URL); Nix makes one fixed-output derivation
 * per locked package whose outputHash is the lock's integrity, fetched by npm by name@version.
 *
 * The first test checks the derivations' shape (with nixpkgs' lib). The second runs the very
 * fetch script of those derivations for every locked package and checks each tarball against
 * its integrity, which is what Nix will check: it needs the npm registry, so it runs only with
 * VMSILO_TEST_NPM_FETCH=1.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { ROOT, tempDir } from "../support/harness.js";
import { NIX_DIR, libArg, nixEval, skipWithoutLib } from "./support.js";

interface LockEntry {
  version: string;
  integrity?: string;
  resolved?: string;
  link?: boolean;
}
const lock = JSON.parse(readFileSync(join(ROOT, "package-lock.json"), "utf8")) as { packages: Record<string, LockEntry> };
const locked = Object.entries(lock.packages).filter(([key, e]) => key !== "" && !e.link);
const nameOf = (key: string) => key.slice(key.lastIndexOf("node_modules/") + "node_modules/".length);

test("package-lock.json has integrity only: no resolved URLs", () => {
  const withResolved = Object.entries(lock.packages).filter(([, e]) => e.resolved !== undefined).map(([k]) => k);
  assert.deepEqual(withResolved, [], "packages with resolved URLs (npm must run with omit-lockfile-registry-resolved=true)");
  for (const [key, e] of locked) assert.match(e.integrity ?? "", /^sha512-[A-Za-z0-9+/]{86}==$/, `${key}: integrity`);
});

test("one fixed-output derivation per locked package, hashed by the lock's integrity", (t) => {
  if (skipWithoutLib(t)) return;
  const r = nixEval(join(NIX_DIR, "npm-deps-check.nix"), { lib: libArg() });
  assert.equal(r.status, 0, r.stderr);
  const out = JSON.parse(r.stdout) as {
    tarballs: Record<string, { name: string; packageName: string; packageVersion: string; outputHash: string; outputHashMode: string; NODE_EXTRA_CA_CERTS: string; fetchesWithScript: boolean }>;
    overrides: string[];
    lockPassedUnchanged: boolean;
  };
  assert.deepEqual(Object.keys(out.tarballs).sort(), locked.map(([k]) => k).sort());
  assert.deepEqual(out.overrides.sort(), locked.map(([k]) => k).sort(), "every package reaches importNpmLock through packageSourceOverrides");
  assert.ok(out.lockPassedUnchanged, "the lock is handed to importNpmLock as it is");
  for (const [key, e] of locked) {
    const d = out.tarballs[key]!;
    assert.equal(d.outputHash, e.integrity, key);
    assert.equal(d.outputHashMode, "flat", key);
    assert.equal(d.packageName, nameOf(key), key);
    assert.equal(d.packageVersion, e.version, key);
    assert.match(d.name, /^[A-Za-z0-9+\-_?=][A-Za-z0-9+\-._?=]*$/, `${key}: ${d.name} is not a valid store name`);
    assert.ok(d.fetchesWithScript, `${key}: not fetched by fetch-npm-tarball.sh`);
    // The sandbox has no CA store of its own: npm must be handed cacert's bundle.
    assert.equal(d.NODE_EXTRA_CA_CERTS, "/nix/store/00000000000000000000000000000000-cacert/etc/ssl/certs/ca-bundle.crt", key);
  }
});

function fetchOne(key: string, e: LockEntry, dir: string): Promise<string | null> {
  const out = join(dir, `${nameOf(key).replace(/[@/]/g, "_")}-${e.version}.tgz`);
  return new Promise((resolve) => {
    const child = spawn("bash", [join(ROOT, "nixos-module", "pkgs", "fetch-npm-tarball.sh")], {
      env: { ...process.env, packageName: nameOf(key), packageVersion: e.version, out },
      stdio: ["ignore", "ignore", "pipe"],
    });
    let stderr = "";
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    child.on("close", (status) => {
      if (status !== 0) return resolve(`${key}: fetch failed (${status}): ${stderr}`);
      const sri = "sha512-" + createHash("sha512").update(readFileSync(out)).digest("base64");
      rmSync(out);
      resolve(sri === e.integrity ? null : `${key}: fetched ${sri}, the lock says ${e.integrity}`);
    });
  });
}

test("the fetch script yields, for every locked package, the tarball the lock's integrity names", async (t) => {
  if (!process.env.VMSILO_TEST_NPM_FETCH) {
    console.log("SKIP: VMSILO_TEST_NPM_FETCH not set (fetches every locked package with npm and checks its integrity)");
    t.skip("VMSILO_TEST_NPM_FETCH not set");
    return;
  }
  const dir = tempDir("npm-fetch");
  const problems: string[] = [];
  const queue = [...locked];
  await Promise.all(
    Array.from({ length: 6 }, async () => {
      for (let item = queue.shift(); item; item = queue.shift()) {
        const p = await fetchOne(item[0], item[1], dir);
        if (p) problems.push(p);
      }
    }),
  );
  rmSync(dir, { recursive: true, force: true });
  assert.deepEqual(problems, []);
});
