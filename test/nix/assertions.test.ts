/**
 * One bad configuration per assertion of nixos-module/assertions.nix, each failing with exactly
 * its message (and no other), and one per option type the grammars make strict, each failing
 * evaluation with the option named. Every case is a module applied over the configuration of
 * examples/minimal.json or examples/desktop.json (test/nix/nix/configs/).
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { ROOT } from "../support/harness.js";
import { evalModule, evalModuleRaw, skipWithoutLib } from "./support.js";

interface AssertionCase {
  what: string;
  base?: "minimal" | "desktop" | "templates";
  module: string;
  expected: string[];
}

const vm = (name: string, body: string) => `{ lib, ... }: { programs.vmsilo.nixosVms.${name} = ${body}; }`;
// Extra VMs need a guest: the stub builder gives every VM the minimal example's.
const anyGuest = `{ lib, ... }: { programs.vmsilo.guestBuilder = lib.mkForce ({ name, ... }: { kernel = "/k"; initrd = "/i"; rootImage = "/r"; init = "/s/init"; kernelParams = [ ]; }); }`;

const UNDECLARED = (b: string) =>
  `is not a bridge of this host; declare it in networking.bridges (networking.bridges.${b}.interfaces = [ ];) or as a systemd.network netdev of Kind bridge, or set tap.bridge = null.`;

const ASSERTIONS: AssertionCase[] = [
  // --- templates (configs/templates.nix: vm00, vm03, … on "browser", vm01, … on "office")
  {
    what: "a VM on a template sets guest options of its own",
    base: "templates",
    module: "{ ... }: { programs.vmsilo.nixosVms.vm03.guestConfig = { services.other.enable = true; }; }",
    expected: ['programs.vmsilo.nixosVms.vm03: sets guestPrograms, guestConfig or waylandProxy, but runs template "browser", whose image other VMs share; set them in programs.vmsilo.templates.browser, or remove template to give the VM a guest of its own.'],
  },
  {
    what: "a VM names no template",
    base: "templates",
    module: '{ lib, ... }: { programs.vmsilo.nixosVms.vm05.template = lib.mkForce "mail"; }',
    expected: ['programs.vmsilo.nixosVms.vm05.template: "mail" is not a template of programs.vmsilo.templates (known: browser, net, office, unused).'],
  },
  {
    what: "a VM on a template brings its own kernel, initramfs and root",
    base: "templates",
    module: '{ ... }: { programs.vmsilo.nixosVms.vm07 = { kernel = "/k"; initramfs = "/i"; rootDisk.path = "/r"; }; }',
    expected: ["programs.vmsilo.nixosVms.vm07.template: the VM brings its own kernel, initramfs and rootDisk, so it runs no template; remove template or one of them."],
  },
  {
    what: "two VMs on one template would need different images",
    base: "templates",
    module: '{ ... }: { programs.vmsilo.nixosVms.vm03.rootOverlay.type = "raw"; }',
    expected: ['programs.vmsilo.nixosVms.vm03.rootOverlay.type: is "raw", but VM "vm00" on the same template "browser" has "tmpfs"; one image serves both, so they must agree (or give vm03 a template or guest of its own).'],
  },
  // --- the host user
  {
    what: "the user is not declared",
    module: `{ lib, ... }: { users.users = lib.mkForce { }; }`,
    expected: ['programs.vmsilo.user: "alice" is not a user of users.users; declare it (with a uid).'],
  },
  {
    what: "the user has no uid",
    module: `{ lib, ... }: { users.users.alice.uid = lib.mkForce null; }`,
    expected: ["programs.vmsilo.user: users.users.alice.uid must be set (vmsilo.json carries the numeric uid), for example users.users.alice.uid = 1000;"],
  },
  {
    what: "the user's group has no gid",
    module: `{ lib, ... }: { users.groups = lib.mkForce { }; }`,
    expected: ['programs.vmsilo.user: the primary group of alice (users.users.alice.group = "users") must be a group of users.groups with a gid.'],
  },
  // --- dependsOn
  {
    what: "dependsOn names a VM that does not exist",
    module: vm("work", `{ dependsOn = [ "nett" ]; }`),
    expected: ['programs.vmsilo.nixosVms.work.dependsOn: names "nett", which is not a VM of programs.vmsilo.nixosVms (known: work).'],
  },
  {
    what: "dependsOn names the VM itself",
    module: vm("work", `{ dependsOn = [ "work" ]; }`),
    expected: ["programs.vmsilo.nixosVms.work.dependsOn: names the VM itself."],
  },
  {
    what: "dependsOn forms a cycle",
    module: `{ lib, ... }: { imports = [ (${anyGuest}) ]; programs.vmsilo.nixosVms = { a.dependsOn = [ "b" ]; b.dependsOn = [ "c" ]; c.dependsOn = [ "a" ]; work.dependsOn = [ "a" ]; }; }`,
    expected: ["programs.vmsilo.nixosVms: dependsOn forms a cycle: a -> b -> c -> a."],
  },
  {
    what: "dependsOn lists a VM twice",
    base: "desktop",
    module: vm("work", `{ dependsOn = lib.mkForce [ "net" "net" ]; }`),
    expected: ['programs.vmsilo.nixosVms.work.dependsOn: lists "net" more than once.'],
  },
  // --- hypervisor × feature: the test adds a hypervisor the way a new driver would (the enum and
  // the table) and uses what it refuses; the real table's refusals follow.
  {
    what: "a feature the VM's hypervisor does not support",
    module: `{ lib, ... }: {
      options.programs.vmsilo.nixosVms = lib.mkOption {
        type = lib.types.attrsOf (lib.types.submodule { options.hypervisor = lib.mkOption { type = lib.types.enum [ "testvmm" ]; }; });
      };
      config.programs.vmsilo.internal.hypervisors.testvmm = { description = "a test VMM"; package = "crosvm"; unsupported = { sound = "it has no sound device"; gpu = "it has no GPU device"; }; };
      config.programs.vmsilo.nixosVms.work = { hypervisor = "testvmm"; sound.playback = true; };
    }`,
    expected: ["programs.vmsilo.nixosVms.work.sound: not supported by testvmm (it has no sound device)."],
  },
  // The real table (hypervisors.nix): cloud-hypervisor refuses crosvm's options, crosvm refuses cloud-hypervisor's.
  {
    what: "cloud-hypervisor refuses crosvm-only options",
    module: vm("work", `{ hypervisor = "cloud-hypervisor"; vhostUser = [ { type = "net"; socket = "/run/net.sock"; } ]; crosvm = { logLevel = "debug"; extraRunArgs = [ "--x" ]; }; }`),
    expected: [
      "programs.vmsilo.nixosVms.work.crosvm.extraRunArgs: not supported by cloud-hypervisor (crosvm options; use cloudHypervisor.extraArgs or cloudHypervisor.extraConfig).",
      "programs.vmsilo.nixosVms.work.crosvm.logLevel: not supported by cloud-hypervisor (a crosvm option; set cloudHypervisor.logLevel).",
      "programs.vmsilo.nixosVms.work.vhostUser: not supported by cloud-hypervisor (these are crosvm `--vhost-user` devices; cloud-hypervisor VMs get GPU, sound and shares from their own options).",
    ],
  },
  {
    what: "crosvm refuses cloud-hypervisor settings",
    module: vm("work", `{ cloudHypervisor.extraConfig.cpus.kvm_hyperv = true; }`),
    expected: ["programs.vmsilo.nixosVms.work.cloudHypervisor.extraConfig: not supported by crosvm (applies to cloud-hypervisor only)."],
  },
  {
    what: "qemu refuses sound, and crosvm settings",
    module: vm("work", `{ hypervisor = "qemu"; sound.playback = true; crosvm.extraRunArgs = [ "--no-usb" ]; }`),
    expected: [
      "programs.vmsilo.nixosVms.work.crosvm.extraRunArgs: not supported by qemu (crosvm options; use qemu.extraArgs).",
      "programs.vmsilo.nixosVms.work.sound: not supported by qemu (vhost-device-sound needs a vhost-user sound device).",
    ],
  },
  {
    what: "qemu refuses the GPU",
    base: "desktop",
    module: `{ lib, ... }: { programs.vmsilo.nixosVms = lib.mkForce { dev = { hypervisor = "qemu"; gpu = true; }; }; }`,
    expected: ["programs.vmsilo.nixosVms.dev.gpu: not supported by qemu (vmsilo's GPU is crosvm's vhost-user virtio-gpu backend, which qemu cannot attach)."],
  },
  {
    what: "crosvm refuses qemu settings and user-mode networking",
    module: vm("work", `{ qemu.console = "serial"; network.interfaces.eth0.type = "user"; }`),
    expected: [
      'programs.vmsilo.nixosVms.work.network.interfaces.<name>.type: not supported by crosvm ("user" is qemu\'s user-mode network; use a tap).',
      "programs.vmsilo.nixosVms.work.qemu.console: not supported by crosvm (applies to qemu only).",
    ],
  },
  {
    what: "vm-exec without its kernel and initramfs",
    module: `{ ... }: { programs.vmsilo.vmExec.enable = true; }`,
    expected: ["programs.vmsilo.vmExec: kernel and initramfs must be set when vmExec.enable is true (an initrd implementing docs/vm-exec.md's guest side)."],
  },
  {
    what: "vm-exec without qemu",
    module: `{ ... }: { programs.vmsilo.vmExec = { enable = true; kernel = "/k"; initramfs = "/i"; }; programs.vmsilo.packages.qemu = null; }`,
    expected: ["programs.vmsilo.vmExec: packages.qemu and packages.virtiofsd are required by vmExec.enable, got null."],
  },
  {
    what: "no cloud-hypervisor package for a cloud-hypervisor VM",
    module: `{ ... }: { programs.vmsilo.packages.cloudHypervisor = null; programs.vmsilo.nixosVms.work.hypervisor = "cloud-hypervisor"; }`,
    expected: ["programs.vmsilo.packages.cloudHypervisor: is required by the hypervisor of VM work, got null."],
  },
  {
    what: "no crosvm package for a cloud-hypervisor VM's GPU backend",
    base: "desktop",
    module: `{ lib, ... }: { programs.vmsilo.packages.crosvm = null; programs.vmsilo.nixosVms = lib.mkForce { dev = { hypervisor = "cloud-hypervisor"; gpu = true; }; }; }`,
    expected: ["programs.vmsilo.packages.crosvm: is required by the GPU backend (crosvm device gpu) of VM dev, got null."],
  },
  // --- packages the VMs need
  {
    what: "no crosvm package for a crosvm VM",
    module: `{ ... }: { programs.vmsilo.packages.crosvm = null; }`,
    expected: ["programs.vmsilo.packages.crosvm: is required by the hypervisor of VM work, got null."],
  },
  {
    what: "no virtiofsd for a shared home",
    module: `{ ... }: { programs.vmsilo.packages.virtiofsd = null; programs.vmsilo.nixosVms.work.sharedHome = true; }`,
    expected: ["programs.vmsilo.packages.virtiofsd: is required by the shares of VM work, got null."],
  },
  {
    what: "no iproute2 for a network interface",
    base: "desktop",
    module: `{ ... }: { programs.vmsilo.packages.iproute2 = null; }`,
    expected: ["programs.vmsilo.packages.iproute2: is required by the network interfaces of VMs banking, dev, net, work, got null."],
  },
  {
    what: "no vhost-device-sound for sound",
    module: `{ ... }: { programs.vmsilo.packages.vhostDeviceSound = null; programs.vmsilo.nixosVms.work.sound.capture = true; }`,
    expected: ["programs.vmsilo.packages.vhostDeviceSound: is required by the sound of VM work, got null."],
  },
  {
    what: "no vmsilo-wayland-seccontext for a GPU (a vm-run package without the wayland output)",
    module: `{ pkgs, ... }: { programs.vmsilo.packages.vmsiloTools = pkgs.socat; programs.vmsilo.nixosVms.work.gpu = true; }`,
    expected: ["programs.vmsilo.packages.waylandSeccontext: is required by the GPU (vmsilo-wayland-seccontext, the `wayland` output of packages.vmsiloTools) of VM work, got null."],
  },
  {
    what: "no vulkan-loader for a GPU",
    base: "desktop",
    module: `{ ... }: { programs.vmsilo.packages.vulkanLoader = null; }`,
    expected: ["programs.vmsilo.packages.vulkanLoader: is required by the GPU of VMs dev, work, got null."],
  },
  // --- per-VM shapes
  {
    what: "a nameserver twice",
    module: vm("work", `{ network.nameservers = [ "10.0.0.1" "10.0.0.1" ]; }`),
    expected: ['programs.vmsilo.nixosVms.work.network.nameservers: lists "10.0.0.1" more than once.'],
  },
  {
    what: "an IPv4 address twice",
    module: vm("work", `{ network.interfaces.eth0.addresses = [ "10.0.0.2/24" "10.0.0.2/24" ]; }`),
    expected: ['programs.vmsilo.nixosVms.work.network.interfaces.eth0.addresses: lists "10.0.0.2/24" more than once.'],
  },
  {
    what: "an IPv6 address twice",
    module: vm("work", `{ network.interfaces.eth0.v6Addresses = [ "fd00::2/64" "fd00::2/64" ]; }`),
    expected: ['programs.vmsilo.nixosVms.work.network.interfaces.eth0.v6Addresses: lists "fd00::2/64" more than once.'],
  },
  {
    what: "a share tagged home together with sharedHome",
    module: vm("work", `{ sharedHome = true; sharedDirectories.home.path = "/srv/home"; }`),
    expected: ['programs.vmsilo.nixosVms.work.sharedDirectories.home: conflicts with sharedHome, which defines the share "home"; remove one of them.'],
  },
  // --- bridges the taps join
  {
    what: "a tap on a bridge the host does not declare",
    module: vm("work", `{ network.interfaces.eth0.tap.bridge = "br0"; }`),
    expected: [`programs.vmsilo.nixosVms.work.network.interfaces.eth0.tap.bridge: "br0" ${UNDECLARED("br0")}`],
  },
  {
    what: "a tap on a bridge the host no longer declares",
    base: "desktop",
    module: `{ lib, ... }: { networking.bridges = lib.mkForce { }; }`,
    expected: [`programs.vmsilo.nixosVms.net.network.interfaces.lan.tap.bridge: "br-lan" ${UNDECLARED("br-lan")}`],
  },
  {
    what: "a share mounted under /run",
    module: vm("work", `{ sharedDirectories.cache = { path = "/srv/cache"; mountPoint = "/run/cache"; }; }`),
    expected: ['programs.vmsilo.nixosVms.work.sharedDirectories.cache.mountPoint: must be a normalised path (no empty, "." or ".." components, no trailing "/"), not "/", and not /nix, /proc, /sys, /dev, /run or under them (the guest system\'s own mounts), got "/run/cache".'],
  },
  {
    what: "a 9p share with a '..' in its mount point",
    module: vm("work", `{ hypervisor = "qemu"; qemu.shares9p.media = { path = "/srv/media"; mountPoint = "/mnt/../etc"; }; }`),
    expected: ['programs.vmsilo.nixosVms.work.qemu.shares9p.media.mountPoint: must be a normalised path (no empty, "." or ".." components, no trailing "/"), not "/", and not /nix, /proc, /sys, /dev, /run or under them (the guest system\'s own mounts), got "/mnt/../etc".'],
  },
  {
    what: "two shares on one mount point, one of them the shared home's",
    module: vm("work", `{ sharedHome = true; sharedDirectories.docs = { path = "/srv/docs"; mountPoint = "/home/user"; }; sharedDirectories.data.path = "/srv/data"; sharedDirectories.more = { path = "/srv/more"; mountPoint = "/mnt/data"; }; }`),
    expected: ['programs.vmsilo.nixosVms.work: more than one share is mounted on "/home/user", "/mnt/data"; give each share its own mountPoint (the shared home is on /home/user).'],
  },
  // --- netvm links
  {
    what: "a netvm that is not a VM",
    module: vm("work", `{ network.netvm = "net"; }`),
    expected: ['programs.vmsilo.nixosVms.work.network.netvm: must name another VM of programs.vmsilo.nixosVms (work) or "host", got "net".'],
  },
  {
    what: "a netvm that is the VM itself",
    module: vm("work", `{ network.netvm = "work"; }`),
    expected: ['programs.vmsilo.nixosVms.work.network.netvm: must name another VM of programs.vmsilo.nixosVms (work) or "host", got "work".'],
  },
  {
    what: "an odd netvmSubnet",
    module: vm("work", `{ network.netvm = "host"; network.netvmSubnet = "10.200.0.3/31"; }`),
    expected: ['programs.vmsilo.nixosVms.work.network.netvmSubnet: must be the lower (even) address of a /31, like "10.200.7.2/31", on a VM with network.netvm set, got "10.200.0.3/31".'],
  },
  {
    what: "a netvmSubnet without a netvm",
    module: vm("work", `{ network.netvmSubnet = "10.200.0.2/31"; }`),
    expected: ['programs.vmsilo.nixosVms.work.network.netvmSubnet: must be the lower (even) address of a /31, like "10.200.7.2/31", on a VM with network.netvm set, got "10.200.0.2/31".'],
  },
  {
    what: "an interface named upstream beside a netvm",
    module: vm("work", `{ network.netvm = "host"; network.interfaces.upstream = { }; }`),
    expected: ['programs.vmsilo.nixosVms.work.network.interfaces.upstream: is the interface network.netvm ("host") gives this VM; rename it.'],
  },
  {
    what: "hostServices on a VM whose gateway is not the host",
    module: vm("work", `{ network.hostServices.tcp = [ 22 631 ]; }`),
    expected: ['programs.vmsilo.nixosVms.work.network.hostServices.tcp: applies only to a VM whose gateway is the host (network.netvm = "host"), got ports 22, 631 and netvm null.'],
  },
  {
    what: "a hostServices port twice",
    module: vm("work", `{ network.netvm = "host"; network.hostServices.udp = [ 53 53 ]; }`),
    expected: ['programs.vmsilo.nixosVms.work.network.hostServices.udp: lists 53 more than once.'],
  },
  {
    what: "an interface with the prefix vc-",
    module: vm("work", `{ network.interfaces.vc-lan = { }; }`),
    expected: ['programs.vmsilo.nixosVms.work.network.interfaces.vc-lan: names an interface with the prefix "vc-", which is for the interfaces a network VM gets towards its clients (network.netvm); rename it.'],
  },
  {
    what: "a host address on a bridged tap",
    base: "desktop",
    module: vm("net", `{ network.interfaces.lan.tap.hostAddress = "10.9.0.1/24"; }`),
    expected: ['programs.vmsilo.nixosVms.net.network.interfaces.lan.tap.hostAddress: must be null for a tap on a bridge (tap.bridge = "br-lan"): the host\'s address belongs on the bridge.'],
  },
  {
    what: "more than 16 interfaces",
    module: vm("work", `{ network.interfaces = lib.genAttrs (map (i: "eth\${toString i}") (lib.range 0 16)) (_: { }); }`),
    expected: ["programs.vmsilo.nixosVms.work.network.interfaces: at most 16 interfaces, got 17."],
  },
];

for (const c of ASSERTIONS) {
  test(`assertion: ${c.what}`, (t) => {
    if (skipWithoutLib(t)) return;
    const r = evalModule(c.base ?? "minimal", [c.module]);
    assert.deepEqual(r.failedAssertions, c.expected);
    assert.equal(r.json, null);
  });
}

test("a bridge declared as networking.bridges or as a systemd-networkd netdev is a bridge of the host", (t) => {
  if (skipWithoutLib(t)) return;
  const tap = vm("work", `{ network.interfaces = { eth0.tap.bridge = "br0"; eth1.tap.bridge = "br1"; eth2 = { }; }; }`);
  const declared = `{ ... }: { networking.bridges.br0.interfaces = [ ]; systemd.network.netdevs."20-br1".netdevConfig = { Kind = "bridge"; Name = "br1"; }; }`;
  const r = evalModule("minimal", [tap, declared]);
  assert.deepEqual(r.failedAssertions, []);
  assert.notEqual(r.json, null);
});

test("every message of assertions.nix is produced by a case above", () => {
  // Each message template's literal parts (between interpolations) must all appear in the
  // expected message of one case, so a new assertion without a case fails here.
  const source = readFileSync(join(ROOT, "nixos-module", "assertions.nix"), "utf8");
  const templates = [...source.matchAll(/message =\s*"((?:\$\{[^}]*\}|[^"\\]|\\.)*)"/g)].map((m) => m[1]!);
  assert.ok(templates.length >= 10, `found only ${templates.length} messages in assertions.nix`);
  const expected = ASSERTIONS.flatMap((c) => c.expected);
  for (const template of templates) {
    const parts = template
      .split(/\$\{[^}]*\}/)
      .map((p) => p.replace(/\\"/g, '"'))
      .filter((p) => p.trim().length >= 4);
    assert.ok(
      expected.some((e) => parts.every((p) => e.includes(p))),
      `no case produces the message ${JSON.stringify(template)}`,
    );
  }
});

interface TypeCase {
  what: string;
  module: string;
  /** Substrings of nix's error output: the option path and the type's wording. */
  expected: string[];
}

const TYPES: TypeCase[] = [
  { what: "a VM name with an upper-case letter", module: vm("Work", `{ }`), expected: ["programs.vmsilo.nixosVms.Work.name", "a VM name: a lower-case letter"] },
  { what: "a VM name ending in '-'", module: vm('"work-"', `{ }`), expected: ["programs.vmsilo.nixosVms.work-.name", "a VM name"] },
  { what: "a VM name of 33 characters", module: vm("a".repeat(33), `{ }`), expected: [`programs.vmsilo.nixosVms.${"a".repeat(33)}.name`, "at most 32 characters"] },
  { what: "a reserved VM name", module: vm("session", `{ }`), expected: ["programs.vmsilo.nixosVms.session.name", "not one of session, usb"] },
  { what: "dependsOn with a name outside the grammar", module: vm("work", `{ dependsOn = [ "Net" ]; }`), expected: ["programs.vmsilo.nixosVms.work.dependsOn", "a VM name"] },
  { what: "a share tag with a dot", module: vm("work", `{ sharedDirectories."my.share".path = "/srv"; }`), expected: ['programs.vmsilo.nixosVms.work.sharedDirectories."my.share".tag', "a share tag"] },
  { what: "an interface name of 16 characters", module: vm("work", `{ network.interfaces.ethernet01234567 = { }; }`), expected: ["programs.vmsilo.nixosVms.work.network.interfaces.ethernet01234567.name", "an interface name"] },
  { what: "a route destination that is not an address", module: vm("work", `{ network.interfaces.eth0.routes.default.via = "10.0.0.1"; }`), expected: ["programs.vmsilo.nixosVms.work.network.interfaces.eth0.routes.default.destination", "an IPv4 destination"] },
  { what: "an IPv6 route under routes", module: vm("work", `{ network.interfaces.eth0.routes."::/0".via = "fd00::1"; }`), expected: ['routes."::/0".destination', "an IPv4 destination"] },
  { what: "memory below 64 MiB", module: vm("work", `{ memory = 32; }`), expected: ["programs.vmsilo.nixosVms.work.memory", "between 64 and 16777216"] },
  { what: "a MAC address in upper case", module: vm("work", `{ network.interfaces.eth0.macAddress = "02:AA:00:00:00:01"; }`), expected: ["programs.vmsilo.nixosVms.work.network.interfaces.eth0.macAddress", "a lower-case MAC address"] },
  { what: "a kernel parameter starting with '-'", module: vm("work", `{ kernelParams = [ "-p" ]; }`), expected: ["programs.vmsilo.nixosVms.work.kernelParams", "one kernel parameter"] },
  { what: "a kernel parameter with a space", module: vm("work", `{ kernelParams = [ "a b" ]; }`), expected: ["programs.vmsilo.nixosVms.work.kernelParams", "one kernel parameter"] },
  { what: "a crosvm option key in upper case", module: vm("work", `{ additionalDisks = [ { path = "/d"; options.Block_Size = 1; } ]; }`), expected: ["programs.vmsilo.nixosVms.work.additionalDisks", 'a crosvm option key like "packed-queue"'] },
  { what: "an empty crosvm option value", module: vm("work", `{ pciDevices = [ { path = "01:00.0"; options.iommu = ""; } ]; }`), expected: ["programs.vmsilo.nixosVms.work.pciDevices", "non-empty string, non-negative integer or boolean"] },
  { what: "sharedHome as a relative path", module: vm("work", `{ sharedHome = "shared/work"; }`), expected: ["programs.vmsilo.nixosVms.work.sharedHome", "a normalised absolute path"] },
  { what: "a share mount point with a colon", module: vm("work", `{ sharedDirectories.data = { path = "/srv/data"; mountPoint = "/mnt/a:b"; }; }`), expected: ["programs.vmsilo.nixosVms.work.sharedDirectories.data.mountPoint", "an absolute path of letters, digits and . _ + @ - /"] },
  { what: "a 9p share mount point that is relative", module: vm("work", `{ hypervisor = "qemu"; qemu.shares9p.media = { path = "/srv/media"; mountPoint = "mnt/media"; }; }`), expected: ["programs.vmsilo.nixosVms.work.qemu.shares9p.media.mountPoint", "an absolute path of letters, digits and . _ + @ - /"] },
  { what: "sharedHome with a '..' component", module: vm("work", `{ sharedHome = "/shared/../etc"; }`), expected: ["programs.vmsilo.nixosVms.work.sharedHome", "a normalised absolute path"] },
  { what: "a share path with a trailing space", module: vm("work", `{ sharedDirectories.data.path = "/srv/data "; }`), expected: ["programs.vmsilo.nixosVms.work.sharedDirectories.data.path", "no space at a name's start or end"] },
  { what: "a share path with a name of 256 bytes", module: vm("work", `{ sharedDirectories.data.path = "/srv/${"n".repeat(256)}"; }`), expected: ["programs.vmsilo.nixosVms.work.sharedDirectories.data.path", "255 bytes per name"] },
  { what: "a kernel parameter with '\"'", module: vm("work", `{ kernelParams = [ ''a="b'' ]; }`), expected: ["programs.vmsilo.nixosVms.work.kernelParams", "one kernel parameter"] },
  { what: "a netvm outside the VM-name grammar", module: vm("work", `{ network.netvm = "Net"; }`), expected: ["programs.vmsilo.nixosVms.work.network.netvm", "a VM name"] },
  { what: "an isolated PCI device given as a path", module: `{ programs.vmsilo.isolatedPciDevices = [ "/sys/bus/pci/devices/0000:03:00.0" ]; }`, expected: ["programs.vmsilo.isolatedPciDevices", 'a PCI address like "0000:01:00.0"'] },
  { what: "a VM named like a shared helper", module: vm("qmp", `{ }`), expected: ["programs.vmsilo.nixosVms.qmp.name", "create-disk"] },
  { what: "a size without digits", module: vm("work", `{ rootOverlay.size = "G"; }`), expected: ["programs.vmsilo.nixosVms.work.rootOverlay.size", 'a size like "10G"'] },
  { what: "an unknown hypervisor", module: vm("work", `{ hypervisor = "kvmtool"; }`), expected: ["programs.vmsilo.nixosVms.work.hypervisor", '"qemu"'] },
  { what: "a qemu machine type qemu-vm.nix has but vmsilo does not render", module: vm("work", `{ qemu.machine = "isapc"; }`), expected: ["programs.vmsilo.nixosVms.work.qemu.machine", '"microvm"'] },
  { what: "a forwarded port of 0", module: vm("work", `{ hypervisor = "qemu"; network.interfaces.nat = { type = "user"; forwardPorts = [ { host.port = 0; guest.port = 22; } ]; }; }`), expected: ["programs.vmsilo.nixosVms.work.network.interfaces.nat.forwardPorts", "between 1 and 65535"] },
  { what: "a colour name with digits", module: vm("work", `{ color = "red2"; }`), expected: ["programs.vmsilo.nixosVms.work.color", "a CSS colour name or #RRGGBB"] },
  { what: "no vm-run programs (every VM has a command channel)", module: `{ ... }: { programs.vmsilo.packages.vmsiloTools = null; }`, expected: ["programs.vmsilo.packages.vmsiloTools", "is not of type `package'"] },
  { what: "a user name with upper case", module: `{ lib, ... }: { programs.vmsilo.user = lib.mkForce "Alice"; }`, expected: ["programs.vmsilo.user", "a POSIX user or group name"] },
  { what: "an unknown option", module: vm("work", `{ memorySize = 4096; }`), expected: ["programs.vmsilo.nixosVms.work.memorySize", "does not exist"] },
];

for (const c of TYPES) {
  test(`type: ${c.what}`, (t) => {
    if (skipWithoutLib(t)) return;
    const r = evalModuleRaw("minimal", [c.module]);
    assert.notEqual(r.status, 0, `evaluation succeeded:\n${r.stdout.slice(0, 500)}`);
    for (const e of c.expected) assert.ok(r.stderr.includes(e), `nix's error does not mention ${JSON.stringify(e)}:\n${r.stderr}`);
  });
}
