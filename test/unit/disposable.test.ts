/** Disposable VMs: slots are ordinary derived VMs; what they would share or keep is refused on the pattern. */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { ConfigError, resolve } from "../../src/generate.js";
import { derivedId, derivedMac } from "../../src/model/derive.js";
import { OUT } from "../../src/model/paths.js";
import { example, fileAt, render, tempDir, writeTree } from "../support/harness.js";
import { join } from "node:path";

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Json = any;
const ROOTFS = "/nix/store/5h2q8h3b9b3f0w7ryf2l0fqb6c4q5zpx-vmsilo-rootfs-work";

/** desktop programs; `work` a disposable VM behind network VM `net`. */
function config(disposable: Json = { enable: true, slots: 3, preload: 1 }, extra: Json = {}): Json {
  const c: Json = example("minimal");
  c.programs = example("desktop").programs;
  c.nixosVms.net = { kernel: `${ROOTFS}/bzImage`, initramfs: `${ROOTFS}/initrd`, rootDisk: { path: `${ROOTFS}/nixos.erofs` } };
  Object.assign(c.nixosVms.work, { disposable, network: { netvm: "net" } }, extra);
  return c;
}

const issuesOf = (c: Json): string[] => {
  try {
    resolve(c);
  } catch (e) {
    if (e instanceof ConfigError) return e.issues.map((i) => `${i.path}: ${i.message}`);
    throw e;
  }
  return [];
};

test("a disposable VM is replaced by its slots, each an ordinary VM with its own id, MAC, tap and netvm link", () => {
  const m = resolve(config());
  const names = m.vms.map((v) => v.name);
  assert.deepEqual(names, ["net", "work-d1", "work-d2", "work-d3"]);
  assert.deepEqual(m.disposables, [{ name: "work", slots: ["work-d1", "work-d2", "work-d3"], preload: 1 }]);
  const slots = m.vms.filter((v) => v.slot !== null);
  assert.deepEqual(slots.map((v) => v.id), ["work-d1", "work-d2", "work-d3"].map(derivedId));
  assert.deepEqual(slots.map((v) => v.interfaces[0]!.mac), ["work-d1", "work-d2", "work-d3"].map((n) => derivedMac(n, "upstream")));
  assert.equal(new Set(slots.map((v) => v.interfaces[0]!.tap)).size, 3);
  assert.deepEqual(m.links.map((l) => l.client), ["work-d1", "work-d2", "work-d3"]);
  assert.equal(new Set(m.links.map((l) => l.clientAddress)).size, 3);
  // The network VM faces each slot on an interface of its own.
  assert.deepEqual(m.vms[0]!.interfaces.map((i) => i.name), ["vc-work-d1", "vc-work-d2", "vc-work-d3"]);
  assert.deepEqual(slots.map((v) => [v.slot!.index, v.slot!.preloaded, v.config.autoStart]), [[1, true, true], [2, false, false], [3, false, false]]);
  // The guest learns its slot's name (hostname) from the command line; the image is the pattern's.
  assert.ok(slots[1]!.kernelParams.includes("vmsilo.hostname=work-d2"));
  assert.equal(slots[1]!.disks[0]!.path, `${ROOTFS.replace("vmsilo-rootfs-work", "vmsilo-rootfs-work")}/nixos.erofs`);
});

test("an explicit id numbers the slots from it", () => {
  const m = resolve(config({ enable: true, slots: 2, preload: 0 }, { id: 700 }));
  assert.deepEqual(m.vms.filter((v) => v.slot).map((v) => v.id), [700, 701]);
});

test("what slots would share or keep is refused, naming the pattern's option", () => {
  const c = config({ enable: true, slots: 2, preload: 3 }, {
    autoStart: true,
    rootOverlay: { type: "raw", size: "1G" },
    additionalDisks: [{ path: "/var/lib/d.img" }],
    sharedHome: true,
    sharedDirectories: { docs: { path: "/srv/docs" } },
    pciDevices: [{ path: "0000:03:00.0" }],
    network: { netvm: "net", netvmSubnet: "10.200.7.2/31", interfaces: { eth0: { macAddress: "02:00:00:00:00:01", addresses: ["192.168.1.5/24"] } } },
  });
  const issues = issuesOf(c);
  for (const want of [
    /^nixosVms\.work\.disposable\.preload: must be at most disposable\.slots \(2\), got 3$/,
    /^nixosVms\.work\.autoStart: must be false for a disposable VM/,
    /^nixosVms\.work\.rootOverlay\.type: must be "tmpfs" for a disposable VM/,
    /^nixosVms\.work\.additionalDisks: must be empty/,
    /^nixosVms\.work\.sharedHome: must be false/,
    /^nixosVms\.work\.sharedDirectories\.docs\.readonly: must be true/,
    /^nixosVms\.work\.pciDevices: must be empty/,
    /^nixosVms\.work\.network\.netvmSubnet: must be null/,
    /^nixosVms\.work\.network\.interfaces\.eth0\.macAddress: must be null/,
    /^nixosVms\.work\.network\.interfaces\.eth0\.addresses: must be empty/,
  ]) {
    assert.ok(issues.some((i) => want.test(i)), `${want}\n${issues.join("\n")}`);
  }
});

test("a disposable VM's name leaves room for its slots' names; a VM named like a slot, or needing a pattern, is refused", () => {
  const long = "a".repeat(29);
  const c = config();
  c.nixosVms[long] = { ...c.nixosVms.work };
  assert.ok(issuesOf(c).some((i) => i.startsWith(`nixosVms.${long}.disposable.enable: needs a VM name of at most 28 characters`)), issuesOf(c).join("\n"));
  const d = config();
  d.nixosVms["work-d2"] = { ...d.nixosVms.net };
  d.nixosVms.other = { ...d.nixosVms.net, dependsOn: ["work"], network: { netvm: "work" } };
  const issues = issuesOf(d);
  assert.ok(issues.includes('nixosVms.work-d2: is the name of slot 2 of disposable VM "work" (nixosVms.work.disposable.slots); rename this VM'), issues.join("\n"));
  assert.ok(issues.some((i) => i.startsWith('nixosVms.other.dependsOn[0]: names disposable VM "work"')), issues.join("\n"));
  assert.ok(issues.some((i) => i.startsWith('nixosVms.other.network.netvm: names disposable VM "work"')), issues.join("\n"));
});

test("an issue found in a slot is said of the pattern's option", () => {
  const c = config({ enable: true, slots: 2, preload: 0 }, { id: 700 });
  c.nixosVms.net.id = 701;
  const issues = issuesOf(c);
  assert.ok(issues.some((i) => /^nixosVms\.work\.id: id 701 is used by both .* \(in its slot work-d2\)$/.test(i)), issues.join("\n"));
});

test("each slot gets a use socket and service; its channel never starts it; the polkit rule lets the user only stop it; vm-start refuses it", () => {
  const tree = render(config());
  const unit = (n: string) => fileAt(tree, `${OUT.systemUnits}/${n}`).content;
  const socket = unit("vmsilo-work-d2_use.socket");
  assert.match(socket, /^ListenStream=\/run\/vmsilo\/work-d2\/use\.socket$/m);
  assert.match(socket, /^Accept=no$/m);
  assert.match(socket, /^SocketMode=0600$/m);
  const use = unit("vmsilo-work-d2_use.service");
  assert.match(use, /^ExecStart=\S+\/bin\/vmsilo-slot-use --systemctl \S+\/bin\/systemctl --unit vmsilo-work-d2-vm\.service --marker \/run\/vmsilo\/work-d2\/use\/in-use$/m);
  assert.match(use, /^ExecStopPost=\S+\/bin\/systemctl stop -- vmsilo-work-d2-vm\.service$/m);
  assert.match(use, /^RuntimeDirectory=vmsilo\/work-d2\/use$/m);
  assert.doesNotMatch(use, /start --no-block/);
  // The preloaded slot boots afresh after its use.
  assert.match(unit("vmsilo-work-d1_use.service"), /^ExecStopPost=-\S+\/bin\/systemctl start --no-block -- vmsilo-work-d1-vm\.service$/m);
  for (const n of ["vmsilo-work-d2_use.service", "vmsilo-work-d2-vm.service", "vmsilo-work-d2-console-relay.service", "vmsilo-work-d2-prep.service"]) assert.match(unit(n), /^StartLimitBurst=100$/m, n);
  assert.match(unit("vmsilo-work-d2@.service"), /^Requisite=vmsilo-work-d2-vm\.service$/m);
  assert.doesNotMatch(unit("vmsilo-work-d2@.service"), /^Requires=vmsilo-work-d2-vm/m);
  const target = unit("vmsilo.target");
  assert.match(target, /^Wants=vmsilo-work-d2_use\.socket$/m);
  assert.match(target, /^Wants=vmsilo-work-d1-vm\.service$/m);
  assert.doesNotMatch(target, /^Wants=vmsilo-work-d2-vm\.service$/m);
  // No record of an instance outlives it: the console log goes at stop.
  assert.match(unit("vmsilo-work-d2-console-relay.service"), /^ExecStopPost=\S+\/rm -f -- \/run\/vmsilo\/work-d2\/console\.log$/m);
  assert.match(fileAt(tree, OUT.tmpfiles).content, /^f \/run\/vmsilo\/work\/pool\.lock +0600 alice users -$/m);
  const polkit = fileAt(tree, OUT.polkit).content;
  assert.match(polkit, /var units = \["vmsilo-net-vm\.service"\];/);
  assert.ok(polkit.includes('var slots = {"vmsilo-work-d1-vm.service":["start","stop"],"vmsilo-work-d2-vm.service":["stop"],"vmsilo-work-d3-vm.service":["stop"]};'), polkit);
  const manifest = JSON.parse(fileAt(tree, OUT.manifest).content);
  assert.equal(manifest.vms["work-d3"].disposable, "work");
  assert.deepEqual(manifest.disposables, { work: { slots: ["work-d1", "work-d2", "work-d3"], preload: 1 } });

  const dir = tempDir("disposable-cli");
  writeTree(tree, dir);
  const start = (vm: string) => spawnSync("bash", [join(dir, "bin", "vm-start"), vm], { encoding: "utf8" });
  const p = start("work");
  assert.equal(p.status, 2);
  assert.match(p.stderr, /vm-start: work is a disposable VM: run a command in a fresh instance with vm-run --disposable work COMMAND/);
  const s = start("work-d1");
  assert.equal(s.status, 2);
  assert.match(s.stderr, /work-d1 is a slot of disposable VM work, started by vm-run --disposable work/);
});
