/** validate() and resolve() called directly: defaults, key-order independence, paths, `either`, grammars. */
import { test } from "node:test";
import assert from "node:assert/strict";
import { isIPv6 } from "node:net";
import { validate } from "../../src/config/validate.js";
import { ConfigError, resolve } from "../../src/generate.js";
import * as g from "../../src/config/grammar.js";
import { bool, closest, either, int, object, pathKey, record, str, type Ctx } from "../../src/config/types.js";
import { example, render } from "../support/harness.js";

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Json = any;

function ok(input: unknown) {
  const r = validate(input);
  assert.deepEqual(r.issues, [], "expected no issues");
  assert.ok(r.config);
  return r.config;
}

function issues(input: unknown): string[] {
  const r = validate(input);
  assert.equal(r.config, undefined, "an invalid config must not come back");
  return r.issues.map((i) => `${i.path}: ${i.message}`);
}

/** The same document with every object's keys in reverse order, at every depth. */
function reverseKeys(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(reverseKeys);
  if (v && typeof v === "object") return Object.fromEntries(Object.entries(v).reverse().map(([k, x]) => [k, reverseKeys(x)]));
  return v;
}

const withVm = (vm: Json): Json => {
  const c: Json = example("minimal");
  Object.assign(c.nixosVms.work, vm);
  return c;
};

test("defaults are filled at every level", () => {
  const c = ok(example("minimal"));
  assert.equal(c.schedulerIsolation, "full");
  assert.equal(c.startTimeout, 30);
  assert.equal(c.stopTimeout, 30);
  assert.deepEqual(c.crosvm, { logLevel: "info", extraArgs: [], extraRunArgs: [] });
  assert.deepEqual(c.gpu, { allowWX: false });
  assert.equal(c.programs.virtiofsd, null);
  assert.equal(c.programs.iproute2, null);
  const w = c.nixosVms.work!;
  assert.equal(w.memory, 1024);
  assert.equal(w.cpus, 2);
  assert.equal(w.hypervisor, "crosvm");
  assert.equal(w.id, null);
  assert.equal(w.autoStart, false);
  assert.equal(w.color, "gray");
  assert.deepEqual(w.dependsOn, []);
  assert.deepEqual(w.autoShutdown, { enable: false, after: 300 });
  assert.deepEqual(w.rootDisk, { path: "/nix/store/5h2q8h3b9b3f0w7ryf2l0fqb6c4q5zpx-vmsilo-rootfs-work/nixos.erofs", ro: true, id: null, options: {}, format: "raw", createSize: null });
  assert.deepEqual(w.rootOverlay, { type: "tmpfs", size: "10G" });
  assert.equal(w.sharedHome, false);
  assert.equal(w.gpu, false);
  assert.deepEqual(w.sound, { playback: false, capture: false });
  assert.deepEqual(w.network, { interfaces: {}, nameservers: [], netvm: null, netvmSubnet: null, hostServices: { tcp: [], udp: [] } });
  assert.deepEqual(w.usbDevices, []);
  assert.equal(w.qemu.usb, false);
  assert.deepEqual(w.crosvm, { logLevel: null, extraArgs: [], extraRunArgs: [] });
  assert.deepEqual([w.sharedDirectories, w.pciDevices, w.vhostUser, w.additionalDisks, w.kernelParams], [{}, [], [], [], []]);
});

test("defaults inside lists and records: extra disks are writable, shares and interfaces get theirs", () => {
  const c = ok(
    withVm({
      additionalDisks: [{ path: "/var/lib/d.img" }],
      sharedDirectories: { data: { path: "/srv/data" } },
      network: { interfaces: { eth0: {} } },
    }),
  );
  const w = c.nixosVms.work!;
  assert.deepEqual(w.additionalDisks, [{ path: "/var/lib/d.img", ro: false, id: null, options: {}, format: "raw", createSize: null }]);
  assert.deepEqual(w.sharedDirectories.data, {
    path: "/srv/data",
    mountPoint: null,
    threadPoolSize: 0,
    inodeFileHandles: "never",
    cache: "auto",
    logLevel: "info",
    xattr: false,
    posixAcl: false,
    readonly: false,
    allowMmap: false,
    enableReaddirplus: true,
    writeback: false,
    allowDirectIo: false,
    killprivV2: false,
    preserveNoatime: false,
    uidMap: null,
    gidMap: null,
    translateUid: null,
    translateGid: null,
  });
  assert.deepEqual(w.network.interfaces.eth0, { type: "tap", forwardPorts: [], restrictNetwork: false, macAddress: null, tap: { name: null, bridge: null, hostAddress: null }, dhcp: false, addresses: [], routes: {}, v6Addresses: [], v6Routes: {} });
});

test("given values are kept over defaults", () => {
  const w = ok(example("desktop")).nixosVms.work!;
  assert.equal(w.memory, 4096);
  assert.equal(w.sharedDirectories.projects!.cache, "always");
  assert.equal(w.sharedDirectories.projects!.threadPoolSize, 4);
  assert.deepEqual(w.rootOverlay, { type: "raw", size: "20G" });
});

test("defaults are fresh copies: the input is not changed and results share nothing", () => {
  const input: Json = example("minimal");
  const before = structuredClone(input);
  const a = ok(input);
  assert.deepEqual(input, before);
  a.nixosVms.work!.kernelParams.push("changed");
  (a.nixosVms.work!.rootDisk.options as Record<string, unknown>).x = 1;
  a.crosvm.extraArgs.push("changed");
  const b = ok(example("minimal"));
  assert.deepEqual(b.nixosVms.work!.kernelParams, []);
  assert.deepEqual(b.nixosVms.work!.rootDisk.options, {});
  assert.deepEqual(b.crosvm.extraArgs, []);
});

test("the validated config is the same regardless of key order", () => {
  for (const name of ["minimal", "desktop"]) {
    const a = ok(example(name));
    const b = ok(reverseKeys(example(name)));
    // JSON.stringify keeps insertion order: equal strings mean equal key order as well as equal values.
    assert.equal(JSON.stringify(b), JSON.stringify(a), name);
    assert.deepEqual(Object.keys(b.nixosVms), [...Object.keys(b.nixosVms)].sort(), "VMs come out sorted");
  }
});

test("the model and the rendered tree are the same regardless of key order", () => {
  const a = render(example("desktop"));
  const b = render(reverseKeys(example("desktop")));
  assert.deepEqual([...b.keys()], [...a.keys()]);
  assert.deepEqual([...b.entries()], [...a.entries()]);
  assert.deepEqual(
    resolve(reverseKeys(example("desktop"))).vms.map((v) => [v.name, v.id, v.kernelParams]),
    resolve(example("desktop")).vms.map((v) => [v.name, v.id, v.kernelParams]),
  );
});

test("a root that is not an object is reported at (document)", () => {
  assert.deepEqual(issues(null), ["(document): must be an object, got null"]);
  assert.deepEqual(issues([]), ["(document): must be an object, got []"]);
  assert.deepEqual(issues(42), ["(document): must be an object, got 42"]);
  assert.deepEqual(issues("{}"), ['(document): must be an object, got "{}"']);
  assert.deepEqual(issues(undefined), ["(document): must be an object, got undefined"]);
});

test("a wrong schemaVersion is the only issue reported (the rest is another format)", () => {
  const c: Json = example("minimal");
  c.schemaVersion = 0;
  c.user = 5;
  assert.deepEqual(issues(c), ["schemaVersion: must be 1 (this vmsilo-gen reads schema version 1), got 0"]);
});

test("every issue is returned, not only the first, in document order", () => {
  const c: Json = example("minimal");
  c.user.uid = "1000";
  c.user.gid = -1;
  c.nixosVms.work.cpus = 0;
  c.nixosVms.work.rootDisk.path = "relative";
  assert.deepEqual(issues(c), [
    'user.uid: must be an integer from 1 to 4294967294, got "1000"',
    "user.gid: must be an integer from 0 to 4294967294, got -1",
    "nixosVms.work.cpus: must be an integer from 1 to 512, got 0",
    'nixosVms.work.rootDisk.path: must be an absolute path (starting with "/"), got "relative"',
  ]);
});

test("long values are shortened in messages", () => {
  const c: Json = example("minimal");
  c.nixosVms.work.color = "x".repeat(100);
  assert.deepEqual(issues(c), [`nixosVms.work.color: must be a CSS colour name or #RRGGBB, got "${"x".repeat(56)}...`]);
});

test("sharedHome (either boolean or path) accepts true, false and an absolute path", () => {
  assert.equal(ok(withVm({ sharedHome: true })).nixosVms.work!.sharedHome, true);
  assert.equal(ok(withVm({ sharedHome: false })).nixosVms.work!.sharedHome, false);
  assert.equal(ok(withVm({ sharedHome: "/srv/homes/work" })).nixosVms.work!.sharedHome, "/srv/homes/work");
});

test("sharedHome rejects other values with one message naming both shapes, and bad paths with the path rule they break", () => {
  const msg = `must be true, false or ${g.ABS_PATH_TEXT}`;
  for (const [v, got] of [[1, "1"], [null, "null"], [{}, "{}"]] as const) {
    assert.deepEqual(issues(withVm({ sharedHome: v })), [`nixosVms.work.sharedHome: ${msg}, got ${got}`], String(v));
  }
  for (const [v, rule] of [["relative/path", 'an absolute path (starting with "/")'], ["true", 'an absolute path (starting with "/")'], ["/a\nb", "a path without control characters"], ["/shared/a ", "a path whose names neither start nor end with a space"]] as const) {
    assert.deepEqual(issues(withVm({ sharedHome: v })), [`nixosVms.work.sharedHome: must be ${rule}, got ${JSON.stringify(v)}`], v);
  }
});

test("gpu (either boolean or object) accepts true, false and objects, filling the object's defaults", () => {
  assert.equal(ok(withVm({ gpu: true })).nixosVms.work!.gpu, true);
  assert.equal(ok(withVm({ gpu: false })).nixosVms.work!.gpu, false);
  assert.deepEqual(ok(withVm({ gpu: {} })).nixosVms.work!.gpu, { wayland: true, opengl: true, vulkan: false, allowWX: null, logLevel: null, seccompPolicy: "enforcing" });
  assert.deepEqual(ok(withVm({ gpu: { vulkan: true, allowWX: true } })).nixosVms.work!.gpu, { wayland: true, opengl: true, vulkan: true, allowWX: true, logLevel: null, seccompPolicy: "enforcing" });
});

test("gpu rejects other values; an object is checked field by field", () => {
  for (const [v, got] of [["yes", '"yes"'], [null, "null"], [[], "[]"], [1, "1"]] as const) {
    assert.deepEqual(issues(withVm({ gpu: v })), [`nixosVms.work.gpu: must be true, false or an object of GPU settings, got ${got}`]);
  }
  // An object goes to the object node, so the message points inside it instead of at `gpu`.
  assert.deepEqual(issues(withVm({ gpu: { wayland: "on", bogus: 1 } })), [
    "nixosVms.work.gpu.bogus: unknown option (known: wayland, opengl, vulkan, allowWX, logLevel, seccompPolicy)",
    'nixosVms.work.gpu.wayland: must be true or false, got "on"',
  ]);
});

test("either: a failed first try leaves no issue behind", () => {
  const node = either(int(1, 5, { doc: "" }), object({ a: bool({ doc: "" }) }, { doc: "" }), { doc: "", expected: "a small number or an object" });
  const ctx: Ctx = { issues: [] };
  assert.deepEqual(node.check({ a: true }, "x", ctx), { a: true });
  assert.equal(node.check(3, "x", ctx), 3);
  assert.deepEqual(ctx.issues, []);
  assert.equal(node.check(9, "x", ctx), undefined);
  assert.deepEqual(ctx.issues, [{ path: "x", message: "must be a small number or an object, got 9" }]);
});

test("resolve() throws a ConfigError with every issue (schema or model)", () => {
  const schemaBad: Json = example("minimal");
  schemaBad.nixosVms.work.memory = 1;
  assert.throws(() => resolve(schemaBad), (e) => e instanceof ConfigError && e.issues.length === 1 && e.issues[0]!.path === "nixosVms.work.memory");
  const modelBad: Json = example("desktop");
  modelBad.nixosVms.work.dependsOn = ["work", "nobody"];
  assert.throws(
    () => resolve(modelBad),
    (e) =>
      e instanceof ConfigError &&
      e.message === 'nixosVms.work.dependsOn[0]: must name another VM, got the VM itself "work"\nnixosVms.work.dependsOn[1]: must name a configured VM (banking, dev, net, work), got "nobody"',
  );
  assert.equal(resolve(example("desktop")).vms.length, 4);
});

test("option paths quote attribute names that are not plain identifiers", () => {
  assert.equal(pathKey("work"), "work");
  assert.equal(pathKey("a-b_c1"), "a-b_c1");
  assert.equal(pathKey("0.0.0.0/0"), '"0.0.0.0/0"');
  assert.equal(pathKey("1work"), '"1work"');
  assert.equal(pathKey("a b"), '"a b"');
  assert.equal(pathKey(""), '""');
  const node = record(/^x$/, "x", int(0, 1, { doc: "" }), { doc: "" });
  const ctx: Ctx = { issues: [] };
  node.check({ "a.b": 0 }, "top", ctx);
  assert.deepEqual(ctx.issues, [{ path: 'top."a.b"', message: 'name "a.b" is not x' }]);
});

test("grammar: VM names, share tags and interface names stop exactly at their length limits", () => {
  assert.ok(g.VM_NAME.test("a".repeat(32)));
  assert.ok(!g.VM_NAME.test("a".repeat(33)));
  assert.ok(g.VM_NAME.test("a"));
  assert.ok(g.VM_NAME.test("a-1"));
  for (const bad of ["", "-a", "a-", "A", "1a", "a_b", "a.b", "a b", "ä"]) assert.ok(!g.VM_NAME.test(bad), bad);
  assert.ok(g.SHARE_TAG.test("s".repeat(36)));
  assert.ok(!g.SHARE_TAG.test("s".repeat(37)));
  assert.ok(g.SHARE_TAG.test("0_Data-1"));
  assert.ok(g.IFNAME.test("e".repeat(15)));
  assert.ok(!g.IFNAME.test("e".repeat(16)));
  for (const bad of ["eth0.1", "eth:0", "eth,0", "0eth", ""]) assert.ok(!g.IFNAME.test(bad), bad);
});

test("grammar: IPv6 addresses agree with node's own parser", () => {
  const samples = [
    "::", "::1", "1::", "fd00::2", "fd00:20::2", "FD00::A", "1:2:3:4:5:6:7:8", "1:2:3:4:5:6:7::", "::2:3:4:5:6:7:8", "1:2::3:4:5:6:7",
    "fe80::1:2", "1::8", "1:2:3:4:5:6::8", "::ffff:1.2.3.4", "64:ff9b::1.2.3.4", "1:2:3:4:5:6:1.2.3.4", "::1.2.3.4",
    "fd00:::2", ":::", ":::::", "1:2:3:4:5:6:7:8:9", "1:2", "1::2::3", "12345::1", "g::1", "1:2:3:4:5:6:7",
    "1:2:3:4:5:6:7:8::", "::1:2:3:4:5:6:7:8", ":1::", "1:::", "1.2.3.4", "", ":", "::ffff:1.2.3.256",
  ];
  for (const s of samples) assert.equal(g.IPV6.test(s), isIPv6(s), s);
  assert.ok(g.CIDR6.test("fd00::2/64"));
  assert.ok(!g.CIDR6.test("fd00:::2/64"));
  assert.ok(!g.CIDR6.test("fd00::2/129"));
  assert.ok(g.ROUTE6_DEST.test("::/0"));
  assert.ok(g.ROUTE6_DEST.test("fd00:1::"));
  assert.ok(g.IP.test("10.0.0.1") && g.IP.test("fd00::1") && !g.IP.test("fd00::1/64") && !g.IP.test("10.0.0.1/8"));
});

test("grammar: kernel parameters, sizes, MACs, PCI addresses", () => {
  for (const good of ["quiet", "a=b", "console=ttyS0,115200", "x=-1"]) assert.ok(g.KERNEL_PARAM.test(good), good);
  for (const bad of ["", "-s", "a b", "a\tb", "a\nb", "a\x7f", 'a="b', '"']) assert.ok(!g.KERNEL_PARAM.test(bad), JSON.stringify(bad));
  for (const good of ["1", "10G", "512M", "1T", "4096"]) assert.ok(g.SIZE.test(good), good);
  for (const bad of ["0", "10GB", "10g", "-1", "1.5G", ""]) assert.ok(!g.SIZE.test(bad), bad);
  assert.ok(g.MAC.test("02:00:00:00:00:01"));
  for (const bad of ["02:00:00:00:00:0A", "02-00-00-00-00-01", "02:00:00:00:00", "02:00:00:00:00:01:02"]) assert.ok(!g.MAC.test(bad), bad);
  for (const good of ["0000:01:00.0", "01:1f.7", "/sys/bus/pci/devices/0000:01:00.0"]) assert.ok(g.PCI_DEVICE.test(good), good);
  for (const bad of ["01:20.0", "01:00.8", "1:00.0", "0000:0A:00.0", "sys/bus/pci", "01:00.0 "]) assert.ok(!g.PCI_DEVICE.test(bad), bad);
});

test("grammar: absPathProblem accepts exactly what ABS_PATH matches, within the length limits", () => {
  const names = ["a", ".", "..", "...", ".a", "a.", " ", " a", "a ", "a b", "é", "", "x\"y"];
  const paths = ["/", ...names.map((n) => `/${n}`), ...names.flatMap((a) => names.map((b) => `/${a}/${b}`)), ...names.map((n) => `/x/${n}/`), "relative", "", "/a\nb"];
  for (const p of paths) assert.equal(g.absPathProblem(p) === null, g.ABS_PATH.test(p), JSON.stringify(p));
  assert.equal(g.absPathProblem(`/${"n".repeat(255)}`), null);
  assert.equal(g.absPathProblem(`/${"n".repeat(256)}`), "a path whose names are at most 255 bytes, not 256");
  const longest = `/${Array.from({ length: 16 }, () => "p".repeat(255)).join("/")}`; // 4096 bytes
  assert.equal(g.absPathProblem(longest.slice(0, 4095)), null);
  assert.equal(g.absPathProblem(longest), "a path of at most 4095 bytes, not 4096");
  assert.equal(g.absPathProblem("/a\ud800b"), g.LONE_SURROGATE_TEXT);
  assert.equal(g.absPathProblem("/a\ud83d\ude00b"), null, "a surrogate pair is one character");
});

test("grammar: sizes stop below 1 EiB, counted in bytes", () => {
  assert.equal(g.sizeBytes("10G"), 10n * 2n ** 30n);
  assert.equal(g.sizeBytes("4096"), 4096n);
  const at = (size: string) => issues(withVm({ rootOverlay: { type: "raw", size } }));
  assert.deepEqual(validate(withVm({ rootOverlay: { type: "raw", size: "1048575T" } })).issues, []);
  assert.deepEqual(at("1048576T"), ['nixosVms.work.rootOverlay.size: must be a size below 1 EiB (1048576T), which no file system here holds, got "1048576T"']);
  assert.deepEqual(validate(withVm({ rootOverlay: { type: "raw", size: "1099511627775M" } })).issues, []);
  assert.equal(at("1099511627776M").length, 1);
});

test("unknown keys: a near known key is suggested, a far one is not", () => {
  assert.equal(closest("memroy", ["memory", "cpus"]), "memory");
  assert.equal(closest("CPUs", ["memory", "cpus"]), "cpus");
  assert.equal(closest("kernelparam", ["kernelParams", "kernel"]), "kernelParams");
  assert.equal(closest("zzz", ["memory", "cpus"]), null);
  assert.equal(closest("x".repeat(100000), ["memory"]), null, "a huge key is no near miss, and costs nothing");
});

test("prototype names as keys neither crash nor pass silently", () => {
  for (const k of ["constructor", "toString", "hasOwnProperty", "__proto__", "valueOf"]) {
    const c = JSON.parse(JSON.stringify(example("minimal")).replace('"work":{', `"work":{"${k}":1,`));
    assert.ok(issues(c).some((i) => i.startsWith(`nixosVms.work.${k}: unknown option`)), k);
  }
  // A share tag or VM name that reads like a prototype member is a name like any other.
  const c: Json = example("minimal");
  c.programs.virtiofsd = "/nix/store/7m2p0x5v8n6r9h1y3zk2b4w6q8d0f1g3-virtiofsd-1.13.2";
  c.nixosVms.constructor = { ...structuredClone(c.nixosVms.work), sharedDirectories: { toString: { path: "/srv/a" }, valueOf: { path: "/srv/b" } } };
  const m = resolve(c);
  assert.deepEqual(m.vms.find((v) => v.name === "constructor")!.shares.map((s) => s.tag), ["toString", "valueOf"]);
});

test("grammar: a str() node's message uses the grammar's words", () => {
  const node = str(g.COLOR, g.COLOR_TEXT, { doc: "" });
  const ctx: Ctx = { issues: [] };
  node.check("Red", "c", ctx);
  assert.deepEqual(ctx.issues, [{ path: "c", message: 'must be a CSS colour name or #RRGGBB, got "Red"' }]);
});
