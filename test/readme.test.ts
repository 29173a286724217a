/**
 * The README: a status line first; its two commands (render the example, run the tests), the
 * second being what .ci/run runs; its configuration.nix evaluates in the NixOS module (stub host,
 * nixpkgs' lib) and renders; its flake.nix parses. And no relative link of README.md or docs/
 * points at a file that does not exist.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join, relative } from "node:path";
import { ROOT, TEST_PREFIX, runCli, tempDir } from "./support/harness.js";
import { evalModule, skipWithoutLib, skipWithoutNix } from "./nix/support.js";
import { codeBlocks } from "./support/markdown.js";

const README = readFileSync(join(ROOT, "README.md"), "utf8");
const shBlocks = codeBlocks(README, "sh");
/** A README code block by the file its first line names (`# configuration.nix`). */
const block = (file: string) => {
  const b = codeBlocks(README, "nix").find((x) => x.startsWith(`# ${file}\n`));
  assert.ok(b, `README has a nix block starting with "# ${file}"`);
  return b;
};

test("the README opens with what works today and what does not yet", () => {
  const first = README.split("\n").slice(1).find((l) => l.trim() !== "");
  assert.match(first ?? "", /^> \*\*Status\.\*\* Works today/);
  assert.match(README.slice(0, 2000), /\*\*Not yet:\*\*/);
});

test("the README's two commands are there, and .ci/run runs its test command", () => {
  const lines = shBlocks.flatMap((b) => b.split("\n")).map((l) => l.replace(/\s+#.*$/, "").trim());
  assert.ok(lines.includes("npm ci && npm run render-example"), "the command that renders the examples");
  const testCommand = lines.find((l) => l.startsWith("bash scripts/"));
  assert.equal(testCommand, "bash scripts/test.sh");
  const ci = readFileSync(join(ROOT, ".ci", "run"), "utf8").split("\n").map((l) => l.trim());
  assert.ok(ci.includes(testCommand), ".ci/run runs the README's test command");
  assert.match(readFileSync(join(ROOT, "package.json"), "utf8"), /"render-example":/);
});

test("the README's configuration.nix evaluates in the NixOS module and renders", (t) => {
  if (skipWithoutLib(t)) return;
  const file = join(tempDir("readme"), "configuration.nix");
  writeFileSync(file, block("configuration.nix"));
  const result = evalModule("normal-user", [`import ${JSON.stringify(file)}`]);
  assert.deepEqual(result.failedAssertions, []);
  const json = join(dirname(file), "vmsilo.json");
  writeFileSync(json, JSON.stringify(result.json));
  const r = runCli(["render", "--dry-run", "--config", json, "--out", join(dirname(file), "out"), "--prefix", TEST_PREFIX]);
  assert.equal(r.status, 0, r.stderr);
  assert.ok(r.stdout.includes("---lib/systemd/system/vmsilo-work-virtiofsd-projects.service---"));
});

test("the README's flake.nix parses", (t) => {
  if (skipWithoutNix(t)) return;
  const r = spawnSync("nix-instantiate", ["--parse", "-E", block("flake.nix")], { encoding: "utf8" });
  assert.equal(r.status, 0, r.stderr);
});

test("relative links of README.md and docs/ point at files that exist", () => {
  const pages = ["README.md", ...readdirSync(join(ROOT, "docs"), { recursive: true, encoding: "utf8" }).filter((p) => p.endsWith(".md")).map((p) => join("docs", p))];
  const broken: string[] = [];
  for (const page of pages) {
    const text = readFileSync(join(ROOT, page), "utf8").replace(/^\s*```[\s\S]*?^\s*```$/gm, "").replace(/`[^`\n]*`/g, "");
    for (const [, target] of text.matchAll(/\]\(([^)\s]+)\)/g)) {
      if (/^[a-z]+:|^#/.test(target!)) continue;
      const path = join(ROOT, dirname(page), target!.replace(/#.*$/, ""));
      if (!existsSync(path)) broken.push(`${page}: ${target} (${relative(ROOT, path)})`);
    }
  }
  assert.deepEqual(broken, []);
});
