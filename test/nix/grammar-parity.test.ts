/**
 * The NixOS option types and the generator enforce the same grammars (SPEC D1): every grammar of
 * nixos-module/lib.nix (POSIX regular expressions for builtins.match) is run over the same
 * strings as its counterpart in src/config/grammar.ts, and they must agree on each. The strings
 * are hand-picked edge cases plus seeded random ones: some generated to match the TypeScript
 * expression, some drawn from an alphabet of the characters that matter.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import fc from "fast-check";
import * as g from "../../src/config/grammar.js";
import { VHOST_USER_TYPES } from "../../src/model/model.js";
import { tempDir } from "../support/harness.js";
import { NIX_DIR, libArg, nixEval, skipWithoutLib } from "./support.js";

/** Nix grammar → the TypeScript expression and wording it mirrors. */
const PAIRS: Record<string, { re: RegExp; text?: string }> = {
  vmName: { re: g.VM_NAME, text: g.VM_NAME_TEXT },
  shareTag: { re: g.SHARE_TAG, text: g.SHARE_TAG_TEXT },
  ifName: { re: g.IFNAME, text: g.IFNAME_TEXT },
  absPath: { re: g.ABS_PATH, text: g.ABS_PATH_TEXT },
  mountPoint: { re: g.MOUNT_POINT, text: g.MOUNT_POINT_TEXT },
  size: { re: g.SIZE, text: g.SIZE_TEXT },
  duration: { re: g.DURATION, text: g.DURATION_TEXT },
  mac: { re: g.MAC, text: g.MAC_TEXT },
  ipv4: { re: g.IPV4, text: g.IPV4_TEXT },
  cidr4: { re: g.CIDR4, text: g.CIDR4_TEXT },
  ipv6: { re: g.IPV6, text: g.IPV6_TEXT },
  cidr6: { re: g.CIDR6, text: g.CIDR6_TEXT },
  ip: { re: g.IP, text: g.IP_TEXT },
  route4Dest: { re: g.ROUTE4_DEST },
  route6Dest: { re: g.ROUTE6_DEST },
  kernelParam: { re: g.KERNEL_PARAM, text: g.KERNEL_PARAM_TEXT },
  logLevel: { re: g.LOG_LEVEL, text: g.LOG_LEVEL_TEXT },
  version: { re: g.VERSION, text: g.VERSION_TEXT },
  pciDevice: { re: g.PCI_DEVICE, text: g.PCI_DEVICE_TEXT },
  pciBdf: { re: g.PCI_BDF, text: g.PCI_BDF_TEXT },
  idMap: { re: g.ID_MAP, text: g.ID_MAP_TEXT },
  usbId: { re: g.USB_ID, text: g.USB_ID_TEXT },
  usbSerial: { re: g.USB_SERIAL, text: g.USB_SERIAL_TEXT },
  color: { re: g.COLOR, text: g.COLOR_TEXT },
  userName: { re: g.USER_NAME, text: g.USER_NAME_TEXT },
  kvKey: { re: g.KV_KEY, text: g.KV_KEY_TEXT },
  ipv4OrEmpty: { re: g.IPV4_OR_EMPTY, text: g.IPV4_OR_EMPTY_TEXT },
  qemuCpu: { re: g.QEMU_CPU, text: g.QEMU_CPU_TEXT },
  // Inline in src/config/schema.ts.
  diskId: { re: /^[A-Za-z0-9_-]{1,20}$/ },
};

const EDGE = [
  "", "a", "A", "-", "a-", "-a", "a--b", "0", "_", "work", "work-1", "x".repeat(32), "x".repeat(33), "x".repeat(36), "x".repeat(37),
  "/", "//", "/a b", "/a\tb", "/a\nb", "/a\u0001b", "/a\u007fb", "/a\u001fb", "/é", "/€/x", "a/b", " /a", "/mnt/a:b", "/mnt/a\\b", "/mnt/x+y@z.1", "/mnt/a,b",
  "/.", "/..", "/...", "/.a", "/a.", "/..a", "/a/.", "/a/../b", "/a/./b", "/a//b", "/a/", "/ ", "/ a", "/a ", "/a /b", "/a b/c", "/x y z", "/a\"b", "a\"b", "x\"",
  "10G", "1", "0G", "10g", "1234567890123", "12345678901234", "10GB",
  "2s", "250ms", "0s", "1m", "s", "ms", "12345678s", "123456789s", "2 s", "2sec",
  "02:00:00:00:00:01", "02:00:00:00:00:0G", "02:AA:00:00:00:01", "02-00-00-00-00-01", "02:00:00:00:00",
  "0.0.0.0", "255.255.255.255", "256.1.1.1", "01.1.1.1", "1.1.1", "10.0.0.2/24", "10.0.0.2/33", "0.0.0.0/0", "10.0.0.2/",
  "::", "::1", "fd00::2", "fd00::2/64", "fd00::2/129", "1:2:3:4:5:6:7:8", "1:2:3:4:5:6:7:8:9", "1::2::3", "::ffff:1.2.3.4", "64:ff9b::1.2.3.4",
  "fe80::1%eth0", "[::1]", ":::", "1:2:3:4:5:6:1.2.3.4", "FD00::A",
  "quiet", "console=hvc0", "-p", "a b", "a=b,c", "init=/nix/store/x/init",
  "info", "info,devices=debug", "debug:x", "in fo",
  "046d", "046D", "c52b", "046", "046dd", "g46d", "AB:CD:EF", "4C530001", "a b", "a*b", "a?b", "a[b]", "a|b", "a%b", "a$b", "a\\b", "a\"b", "x".repeat(126), "x".repeat(127),
  "53.0", "52", "52.0.1.2", "52.0.1.2.3", "v53", "53.", "53.0-unstable-2026-08-01", "53.0+git", "53.0-", "1234567.0",
  "0000:01:00.0", "01:00.0", "01:20.0", "01:00.8", "/sys/bus/pci/devices/0000:01:00.0", "0000:01:00.0x",
  ":0:1000:1:", "guest:1000:1001", "a b",
  "#3465a4", "#3465A4", "#3465a", "gray", "ab", "x".repeat(24), "x".repeat(25), "red2",
  "alice", "_apt", "Alice", "a".repeat(32), "a".repeat(33),
  "packed-queue", "block-size", "Block", "net", "data", "x".repeat(20), "x".repeat(21),
];

const ALPHABET = ["a", "z", "A", "Z", "0", "9", "-", "_", ".", ":", "/", "#", "=", ",", "[", "]", " ", "%", "é", "\t", "\n", "\u0001", "\u007f", "f", "F", "1", "2", "5", '"', "/.", "/..", "//"];

function samples(re: RegExp): string[] {
  const matching = fc.sample(fc.stringMatching(re), { numRuns: 60, seed: 4242 });
  const random = fc.sample(fc.string({ unit: fc.constantFrom(...ALPHABET), maxLength: 40 }), { numRuns: 200, seed: 4243 });
  // A Nix string cannot hold NUL; JSON cannot carry lone surrogates.
  return [...new Set([...EDGE, ...matching, ...random])].filter((s) => !s.includes("\u0000") && !/[\uD800-\uDFFF]/.test(s));
}

test("every Nix grammar agrees with its TypeScript grammar on every sample", (t) => {
  if (skipWithoutLib(t)) return;
  const input: Record<string, string[]> = {};
  for (const [name, { re }] of Object.entries(PAIRS)) input[name] = samples(re);
  const file = join(tempDir("grammar"), "samples.json");
  writeFileSync(file, JSON.stringify(input));
  const r = nixEval(join(NIX_DIR, "grammar-check.nix"), { lib: libArg(), samplesFile: file });
  assert.equal(r.status, 0, r.stderr);
  const out = JSON.parse(r.stdout) as { matches: Record<string, boolean[]>; texts: Record<string, string>; reserved: string[]; vmNameType: boolean[] };

  assert.deepEqual(Object.keys(out.texts).sort(), Object.keys(PAIRS).sort(), "the Nix grammars and this table differ");
  const disagreements: string[] = [];
  for (const [name, { re, text }] of Object.entries(PAIRS)) {
    input[name]!.forEach((s, i) => {
      const ts = re.test(s);
      if (out.matches[name]![i] !== ts) disagreements.push(`${name}: ${JSON.stringify(s)} TypeScript ${ts}, Nix ${out.matches[name]![i]}`);
    });
    if (text !== undefined) assert.equal(out.texts[name], text, `${name}: wording`);
  }
  assert.deepEqual(disagreements, []);

  assert.deepEqual(out.reserved, [...g.RESERVED_VM_NAMES]);
  input.vmName!.forEach((s, i) => {
    const expected = g.VM_NAME.test(s) && !(g.RESERVED_VM_NAMES as readonly string[]).includes(s);
    assert.equal(out.vmNameType[i], expected, `the vmName option type on ${JSON.stringify(s)}`);
  });
});

test("the reserved VM names are refused by the Nix type", (t) => {
  if (skipWithoutLib(t)) return;
  const file = join(tempDir("grammar"), "samples.json");
  writeFileSync(file, JSON.stringify({ vmName: [...g.RESERVED_VM_NAMES, "work"] }));
  const r = nixEval(join(NIX_DIR, "grammar-check.nix"), { lib: libArg(), samplesFile: file });
  assert.equal(r.status, 0, r.stderr);
  const out = JSON.parse(r.stdout) as { vmNameType: boolean[] };
  assert.deepEqual(out.vmNameType, [...g.RESERVED_VM_NAMES.map(() => false), true]);
});

test("the Nix vhost-user device types are model.ts's VHOST_USER_TYPES (crosvm's DeviceType names)", (t) => {
  if (skipWithoutLib(t)) return;
  const file = join(tempDir("grammar"), "samples.json");
  const others = ["snd", "virtio-fs", "gpuu", "", "NET"];
  writeFileSync(file, JSON.stringify({ vhostUserType: [...VHOST_USER_TYPES, ...others] }));
  const r = nixEval(join(NIX_DIR, "grammar-check.nix"), { lib: libArg(), samplesFile: file });
  assert.equal(r.status, 0, r.stderr);
  const out = JSON.parse(r.stdout) as { vhostUserType: boolean[] };
  assert.deepEqual(out.vhostUserType, [...VHOST_USER_TYPES.map(() => true), ...others.map(() => false)]);
});
