/**
 * The generated udev rule (lib/udev/rules.d/70-vmsilo-usb.rules), read as udev reads it: every line
 * a comma-separated list of KEY[{attr}] OP "value" with keys and operators udev knows, and matched
 * against the properties and sysfs attributes udev would have for a device (match values are
 * globs; this configuration's ids and serials hold no glob character, which the grammar ensures).
 * There is no udev to run here (Debian 12's udevadm has no `verify`, and no udevd runs): this is the
 * rule's syntax and what it matches. Its action, starting the VM's USB unit, is in the nspawn test.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { render, example } from "../support/harness.js";
import { OUT } from "../../src/model/paths.js";
import type { GeneratedFile } from "../../src/render/files.js";

interface Term {
  key: string;
  attr: string | null;
  op: string;
  value: string;
}

/** One rule line as udev's parser splits it (udev-rules.c: key, optional {attr}, operator, quoted value). */
function parse(line: string): Term[] {
  const terms: Term[] = [];
  const re = /\s*([A-Z_]+)(?:\{([^}]*)\})?\s*(==|!=|\+=|-=|:=|=)\s*"([^"]*)"\s*(,|$)/y;
  let m: RegExpExecArray | null;
  let at = 0;
  while (at < line.length && (m = re.exec(line))) {
    terms.push({ key: m[1]!, attr: m[2] ?? null, op: m[3]!, value: m[4]! });
    at = re.lastIndex;
    if (m[5] === "") break;
  }
  assert.equal(at, line.length, `a udev rule line that does not parse: ${line}`);
  return terms;
}

const MATCH_KEYS = new Set(["ACTION", "SUBSYSTEM", "ENV", "ATTR"]);
const ASSIGN_KEYS = new Set(["TAG", "ENV"]);

/** Whether udev would apply the rule to a device with these properties and attributes. */
function matches(terms: Term[], dev: { props: Record<string, string>; attrs: Record<string, string> }): boolean {
  return terms
    .filter((t) => t.op === "==" || t.op === "!=")
    .every((t) => {
      const have = t.key === "ATTR" ? dev.attrs[t.attr!] : t.key === "ENV" ? dev.props[t.attr!] : dev.props[t.key];
      return (have === t.value) === (t.op === "==");
    });
}

const device = (attrs: Record<string, string>, devtype = "usb_device") => ({ props: { ACTION: "add", SUBSYSTEM: "usb", DEVTYPE: devtype }, attrs });

test("the udev rule parses as udev's grammar, matches the configured devices only (ids in any case, serial exactly), and wants the VM's USB unit", () => {
  const base = example("minimal") as Record<string, any>;
  const config = {
    ...base,
    nixosVms: { work: { ...base.nixosVms.work, usbDevices: [{ vendorId: "046D", productId: "C52B" }, { vendorId: "0781", productId: "5567", serial: "4C530001" }] } },
  };
  const tree = render(config);
  const rules = (tree.get(OUT.udevRules) as GeneratedFile).content.split("\n").filter((l) => l && !l.startsWith("#"));
  assert.equal(rules.length, 2);
  const parsed = rules.map(parse);
  for (const terms of parsed) {
    for (const t of terms) {
      if (t.op === "==" || t.op === "!=") assert.ok(MATCH_KEYS.has(t.key), `match key ${t.key}`);
      else assert.ok(ASSIGN_KEYS.has(t.key) && t.op === "+=", `assignment ${t.key}${t.op}`);
      assert.doesNotMatch(t.value, /[*?[\]|%$]/, "no glob or substitution character in a value");
    }
    const wants = terms.find((t) => t.key === "ENV" && t.attr === "SYSTEMD_WANTS")!;
    assert.ok(tree.has(`${OUT.systemUnits}/${wants.value}`), `${wants.value} is generated`);
    assert.ok(terms.some((t) => t.key === "TAG" && t.value === "systemd"), "tagged for systemd, so the device unit wants it");
  }
  const any = (dev: ReturnType<typeof device>) => parsed.some((terms) => matches(terms, dev));
  assert.ok(any(device({ idVendor: "046d", idProduct: "c52b" })), "sysfs's lower case matches the configured upper case");
  assert.ok(any(device({ idVendor: "046d", idProduct: "c52b", serial: "whatever" })), "no serial configured: any serial");
  assert.ok(any(device({ idVendor: "0781", idProduct: "5567", serial: "4C530001" })));
  assert.ok(!any(device({ idVendor: "0781", idProduct: "5567", serial: "4C530002" })), "another serial is another device");
  assert.ok(!any(device({ idVendor: "0781", idProduct: "5567" })), "no serial at all is not that device");
  assert.ok(!any(device({ idVendor: "046d", idProduct: "c52c" })));
  assert.ok(!any(device({ idVendor: "046d", idProduct: "c52b" }, "usb_interface")), "interfaces are not devices");
  assert.ok(!any({ props: { ACTION: "remove", SUBSYSTEM: "usb", DEVTYPE: "usb_device" }, attrs: { idVendor: "046d", idProduct: "c52b" } }), "only on plug-in");
});
