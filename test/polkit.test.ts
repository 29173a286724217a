/** The generated polkit rule, run in a stand-in for polkit's JavaScript environment (D5). */
import { test } from "node:test";
import assert from "node:assert/strict";
import { runInNewContext } from "node:vm";
import { example, fileAt, render } from "./support/harness.js";
import { OUT } from "../src/model/paths.js";

type Rule = (action: unknown, subject: unknown) => string;

function loadRule(text: string): Rule {
  const rules: Rule[] = [];
  const polkit = { Result: { YES: "yes", NO: "no", NOT_HANDLED: "not-handled" }, addRule: (r: Rule) => rules.push(r) };
  runInNewContext(text, { polkit });
  assert.equal(rules.length, 1);
  return rules[0]!;
}

const action = (unit: string, verb: string, id = "org.freedesktop.systemd1.manage-units") => ({ id, lookup: (k: string) => (k === "unit" ? unit : k === "verb" ? verb : undefined) });

test("the user may start, stop and restart exactly the configured VM services", () => {
  const rule = loadRule(fileAt(render(example("desktop")), OUT.polkit).content);
  const alice = { user: "alice", local: true, active: true };
  for (const vm of ["banking", "net", "work"]) {
    for (const verb of ["start", "stop", "restart"]) assert.equal(rule(action(`vmsilo-${vm}-vm.service`, verb), alice), "yes", `${verb} ${vm}`);
    assert.equal(rule(action(`vmsilo-${vm}-vm.service`, "reload-or-restart"), alice), "not-handled");
    assert.equal(rule(action(`vmsilo-${vm}-vm.service`, "start", "org.freedesktop.systemd1.manage-unit-files"), alice), "not-handled");
  }
  for (const unit of ["vmsilo-work-gpu.service", "vmsilo-work-prep.service", "vmsilo-usb-attach@x.service", "vmsilo-other-vm.service", "vmsilo.target", "sshd.service", "vmsilo-work@1.service"]) {
    assert.equal(rule(action(unit, "start"), alice), "not-handled", unit);
  }
  assert.equal(rule(action("vmsilo-work-vm.service", "start"), { user: "mallory", local: true, active: true }), "not-handled");
  // Only from the user's active local session: an ssh login, cron or a service of theirs is not one.
  for (const subject of [{ user: "alice", local: false, active: true }, { user: "alice", local: true, active: false }, { user: "alice", local: false, active: false }]) {
    assert.equal(rule(action("vmsilo-work-vm.service", "start"), subject), "not-handled", JSON.stringify(subject));
  }
});

test("a disposable VM's slots: the user may stop each and start a preloaded one, nothing else", () => {
  const c = example("minimal") as Record<string, any>;
  c.nixosVms.work.disposable = { enable: true, slots: 2, preload: 1 };
  const rule = loadRule(fileAt(render(c), OUT.polkit).content);
  const alice = { user: "alice", local: true, active: true };
  const says = (unit: string, verb: string) => rule(action(unit, verb), alice);
  assert.equal(says("vmsilo-work-d1-vm.service", "start"), "yes");
  assert.equal(says("vmsilo-work-d1-vm.service", "stop"), "yes");
  assert.equal(says("vmsilo-work-d1-vm.service", "restart"), "not-handled");
  assert.equal(says("vmsilo-work-d2-vm.service", "stop"), "yes");
  assert.equal(says("vmsilo-work-d2-vm.service", "start"), "not-handled");
  for (const unit of ["vmsilo-work-vm.service", "vmsilo-work-d2_use.service", "vmsilo-work-d3-vm.service", "toString", "__proto__"]) {
    assert.equal(says(unit, "start"), "not-handled", unit);
    assert.equal(says(unit, "stop"), "not-handled", unit);
  }
  assert.equal(rule(action("vmsilo-work-d1-vm.service", "start"), { user: "mallory", local: true, active: true }), "not-handled");
});
