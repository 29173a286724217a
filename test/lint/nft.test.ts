/**
 * Lint layer: every nftables ruleset vmsilo produces through `nft -c` (the kernel's own check of the
 * transaction, in a network namespace of its own so nothing here changes): the host's table for
 * each example and each case that has netvm links, and the network VMs' guest table exactly as the
 * guest module (nixos-module/guest/netvm.nix) evaluates it, for a network VM and for any other VM.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { EXAMPLES, ROOT, example, fileAt, have, render, tempDir } from "../support/harness.js";
import { OUT } from "../../src/model/paths.js";
import { NIX_DIR, libArg, nixEval, skipWithoutLib } from "../nix/support.js";
import { ensureDebs } from "../e2e/support.js";

/** Why nft cannot check rulesets here, or null. */
function missing(): string | null {
  if (process.getuid?.() !== 0) return "nft -c needs root (it asks the kernel in a network namespace of its own)";
  const debs = ensureDebs(["nftables"]);
  if (debs) return debs;
  return have("unshare") ? null : "unshare not installed (util-linux)";
}

/** `nft -c -f` over `text` in a fresh network namespace; returns nft's complaint, "" when clean. */
export function nftCheck(text: string): string {
  const file = join(tempDir("nft"), "ruleset.nft");
  writeFileSync(file, text);
  const r = spawnSync("unshare", ["--net", "nft", "-c", "-f", file], { encoding: "utf8" });
  if (r.error) throw r.error;
  return r.status === 0 ? "" : `nft exited ${r.status}: ${r.stdout}${r.stderr}`;
}

/** A case file's JSON, merged over minimal.json as test/cases.test.ts does. */
function caseConfig(file: string): unknown {
  const json = readFileSync(file, "utf8").split("\n").filter((l) => !l.startsWith("## ")).join("\n");
  const merge = (a: any, b: any): any => (a && b && typeof a === "object" && typeof b === "object" && !Array.isArray(a) && !Array.isArray(b) ? Object.fromEntries([...new Set([...Object.keys(a), ...Object.keys(b)])].map((k) => [k, k in b ? merge(a[k], b[k]) : a[k]])) : b);
  return merge(example("minimal"), JSON.parse(json));
}

const CASES = join(ROOT, "test", "cases");
const withLinks = readdirSync(CASES).filter((f) => f.startsWith("netvm-")).sort();

test("nft -c: the host table of every configuration with netvm links", (t) => {
  const why = missing();
  if (why) return t.skip(`SKIP: ${why}`);
  const trees = [...EXAMPLES.map((n) => [`examples/${n}.json`, render(example(n))] as const), ...withLinks.map((f) => [`test/cases/${f}`, render(caseConfig(join(CASES, f)))] as const)];
  let checked = 0;
  for (const [what, tree] of trees) {
    const f = tree.get(OUT.firewall);
    if (!f) continue;
    checked++;
    const text = fileAt(tree, OUT.firewall).content;
    assert.doesNotMatch(text, /flush ruleset/, `${what}: the host table must never flush the ruleset`);
    assert.equal(nftCheck(text), "", `${what}: ${OUT.firewall}`);
  }
  assert.ok(checked >= 3, `only ${checked} rulesets checked`);
});

test("nft -c: the network VM's guest table, as the guest module evaluates it", (t) => {
  const why = missing();
  if (why) return t.skip(`SKIP: ${why}`);
  if (skipWithoutLib(t)) return;
  const evalGuest = (netvm: boolean) => {
    const r = nixEval(join(NIX_DIR, "guest-system.nix"), { lib: libArg(), guest: `{ netvm = ${netvm}; }` }, { hostRoot: "/usr" });
    assert.equal(r.status, 0, r.stderr);
    return (JSON.parse(r.stdout) as { netvm: { forwarding: unknown; nftables: unknown; table: { family: string; content: string } | null; dnsmasq: unknown } }).netvm;
  };
  const net = evalGuest(true);
  const dns = net.dnsmasq as { enable: boolean; resolveLocalQueries: boolean; settings: { "conf-file": string[] } };
  assert.equal(dns.enable, true);
  assert.equal(dns.resolveLocalQueries, false, "the network VM's own lookups stay with its resolver");
  // (evaluated read-only: the store path is named, not written) nixos-module/guest/netvm-dns.conf
  assert.match(dns.settings["conf-file"][0]!, /^\/nix\/store\/[a-z0-9]{32}-netvm-dns\.conf$/);
  assert.match(readFileSync(join(ROOT, "nixos-module", "guest", "netvm-dns.conf"), "utf8"), /^interface=vc-\*$/m, "dnsmasq answers on the client interfaces only");
  assert.match(net.table!.content, /iifname "vc-\*" meta l4proto \{ tcp, udp \} th dport 53 accept/);
  assert.equal(net.forwarding, true);
  assert.equal(net.nftables, true);
  assert.equal(net.table?.family, "inet");
  assert.match(net.table!.content, /iifname "vc-\*" oifname != "vc-\*" masquerade/);
  assert.equal(nftCheck(`table inet vmsilo-netvm {\n${net.table!.content}\n}\n`), "");
  assert.deepEqual(evalGuest(false), { forwarding: null, nftables: null, table: null, dnsmasq: null }, "a VM that is no network VM gets none of it");
});
