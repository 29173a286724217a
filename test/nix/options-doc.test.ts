/**
 * docs/options.md: `vmsilo-gen options-doc` over the module's option documentation, evaluated
 * against nixpkgs' lib as nixosOptionsDoc evaluates it (test/nix/nix/option-docs.nix), is the
 * committed page (`UPDATE_DOCS=1` rewrites it); and the hypervisors each option names agree with
 * the refusals of nixos-module/hypervisors.nix.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { ROOT, runCli, tempDir } from "../support/harness.js";
import { NIX_DIR, libArg, nixEval, skipWithoutLib, skipWithoutNix } from "./support.js";

const PAGE = join(ROOT, "docs", "options.md");

function optionDocs(): Record<string, { description: string; type: string }> {
  const r = nixEval(join(NIX_DIR, "option-docs.nix"), { lib: libArg() });
  assert.equal(r.status, 0, r.stderr);
  return JSON.parse(r.stdout);
}

test("docs/options.md is the module's option documentation rendered (UPDATE_DOCS=1 rewrites it)", (t) => {
  if (skipWithoutLib(t)) return;
  const file = join(tempDir("options-doc"), "options.json");
  writeFileSync(file, JSON.stringify(optionDocs()));
  const r = runCli(["options-doc", "--options", file]);
  assert.equal(r.status, 0, r.stderr);
  if (process.env.UPDATE_DOCS) writeFileSync(PAGE, r.stdout);
  assert.equal(readFileSync(PAGE, "utf8"), r.stdout, "docs/options.md is stale: UPDATE_DOCS=1 node --test dist/test/nix/options-doc.test.js");
});

test("the page gives every option its type and default, and shows the module's examples", () => {
  const page = readFileSync(PAGE, "utf8");
  const entries = page.split("\n### ").slice(1);
  assert.ok(entries.length >= 100, `${entries.length} options`);
  for (const e of entries) {
    const name = e.slice(0, e.indexOf("\n"));
    assert.match(e, /\n- Type: \S/, name);
    assert.match(e, /\n- Default:/, name);
  }
  assert.ok(entries.filter((e) => e.includes("\n- Example:")).length >= 40, "the module's examples are shown");
  assert.ok(page.includes("### `programs.vmsilo.nixosVms.<name>.memory`\n\nMemory in MiB.\n\nProduces: crosvm `--mem size=`, cloud-hypervisor `memory.size`, qemu `-m`. Honoured by: cloud-hypervisor, crosvm, qemu.\n\n- Type: integer between 64 and 16777216 (both inclusive)\n- Default: `1024`\n- Example: `4096`\n"));
});

test("every option's hypervisors are filled in", (t) => {
  if (skipWithoutLib(t)) return;
  const unfilled = Object.entries(optionDocs()).filter(([, o]) => o.description.includes("@honoured-by@"));
  // An option declared with `doc` in a submodule whose options are not passed through `honoured`.
  assert.deepEqual(unfilled.map(([n]) => n), [], 'wrap the submodule\'s options in `honoured "<path below the VM>"` (options.nix)');
});

test("an option under a feature a hypervisor refuses does not name that hypervisor", (t) => {
  if (skipWithoutLib(t)) return;
  const hv = nixEval(join(ROOT, "nixos-module", "hypervisors.nix"));
  assert.equal(hv.status, 0, hv.stderr);
  const table = JSON.parse(hv.stdout) as Record<string, { unsupported: Record<string, string> }>;
  const honours = (description: string) => (/Honoured by: ([^\n]*)\.$/m.exec(description)?.[1] ?? "").split(", ");
  const vmPrefix = "programs.vmsilo.nixosVms.<name>.";
  const checked: string[] = [];
  for (const [name, o] of Object.entries(optionDocs())) {
    if (!name.startsWith(vmPrefix)) continue;
    // optionAttrSetToDocList writes list items as `*`; hypervisors.nix names them as attributes.
    const path = name.slice(vmPrefix.length).replace(/\.\*\./g, ".<name>.");
    for (const [h, { unsupported }] of Object.entries(table)) {
      const refused = Object.keys(unsupported).some((f) => path === f || path.startsWith(`${f}.`));
      // A refusal of one value (a user-mode interface type) leaves the option honoured.
      if (refused && path !== "network.interfaces.<name>.type") {
        assert.ok(!honours(o.description).includes(h), `${name} is refused by ${h} but its description says ${h} honours it`);
        checked.push(name);
      }
    }
  }
  assert.ok(checked.includes(`${vmPrefix}gpu.vulkan`) && checked.includes(`${vmPrefix}qemu.machine`), "refused options were checked");
});

test("options-doc refuses a file that is not option documentation, with exit status 2", (t) => {
  if (skipWithoutNix(t)) return;
  const file = join(tempDir("options-doc-bad"), "options.json");
  writeFileSync(file, JSON.stringify({ "programs.vmsilo.enable": { type: "boolean" } }));
  const r = runCli(["options-doc", "--options", file]);
  assert.equal(r.status, 2);
  assert.match(r.stderr, /programs\.vmsilo\.enable\.description: must be a string/);
  assert.equal(r.stdout, "");
});
