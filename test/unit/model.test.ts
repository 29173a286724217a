/** The resolved model: stable ids (D2), MACs, tap names (D1), PCI slots, the kernel command line (SPEC §2), shares. */
import { test } from "node:test";
import assert from "node:assert/strict";
import { ConfigError, resolve } from "../../src/generate.js";
import { RESERVED_VM_NAMES } from "../../src/config/grammar.js";
import { OUT, SHARED_LIBEXEC } from "../../src/model/paths.js";
import { derivedId, derivedMac, derivedTapName, MIN_ID } from "../../src/model/derive.js";
import type { Model, VmModel } from "../../src/model/model.js";
import { example, render } from "../support/harness.js";

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Json = any;

const ROOTFS = "/nix/store/5h2q8h3b9b3f0w7ryf2l0fqb6c4q5zpx-vmsilo-rootfs-work";
const INIT = "/nix/store/6k7bw6fnl3g7vq5ggl5p9zr3j5dhxq1m-nixos-system-work-25.11/init";

const vmOf = (m: Model, name: string): VmModel => {
  const v = m.vms.find((x) => x.name === name);
  assert.ok(v, `VM ${name}`);
  return v;
};

/** minimal.json with `work` extended by `extra`; every program present (desktop.json's). */
function minimalWith(extra: Json): Json {
  const c: Json = example("minimal");
  c.programs = example("desktop").programs;
  Object.assign(c.nixosVms.work, extra);
  return c;
}

function addVm(c: Json, name: string, extra: Json = {}): Json {
  c.nixosVms[name] = { kernel: `${ROOTFS}/bzImage`, initramfs: `${ROOTFS}/initrd`, init: null, rootDisk: { path: `${ROOTFS}/nixos.erofs` }, ...extra };
  return c;
}

/** Names made of the VM grammar's characters, some at its length limit. */
function sampleNames(n: number): string[] {
  const alphabet = "abcdefghijklmnopqrstuvwxyz0123456789-";
  const names: string[] = [];
  for (let i = 0; names.length < n; i++) {
    let s = String.fromCharCode(97 + (i % 26));
    let x = i * 2654435761;
    const len = 1 + (i % 32);
    while (s.length < len) {
      s += alphabet[x % alphabet.length];
      x = Math.floor(x / 7) + i;
    }
    if (s.endsWith("-")) s = s.slice(0, -1) + "z";
    names.push(s);
  }
  return names;
}

// ── ids (D2) ───────────────────────────────────────────────────────────────────────────────────

test("derived ids are fixed values: a change to the hash is caught", () => {
  assert.equal(derivedId("work"), 1458968006);
  assert.equal(derivedId("net"), 1975728321);
  assert.equal(derivedId("banking"), 1850248471);
  assert.equal(derivedId("a"), 151389351);
  assert.equal(derivedId("a".repeat(32)), 17385557);
  const m = resolve(example("desktop"));
  assert.deepEqual(
    m.vms.map((v) => [v.name, v.id]),
    [
      ["banking", 1850248471],
      ["dev", 204989737],
      ["net", 1975728321],
      ["work", 1458968006],
    ],
  );
});

test("derived ids are integers in [3, 2^31) and differ between names", () => {
  const names = sampleNames(3000);
  const ids = new Set<number>();
  for (const n of names) {
    const id = derivedId(n);
    assert.ok(Number.isInteger(id) && id >= MIN_ID && id < 2 ** 31, `${n}: ${id}`);
    assert.equal(derivedId(n), id, "the same name gives the same id");
    ids.add(id);
  }
  assert.equal(ids.size, new Set(names).size, "no collisions among the sample names");
  assert.equal(MIN_ID, 3);
});

test("adding or removing a VM changes no other VM's id, MACs or taps (D2)", () => {
  const summary = (m: Model, name: string) => {
    const v = vmOf(m, name);
    return { id: v.id, interfaces: v.interfaces, kernelParams: v.kernelParams };
  };
  const base = resolve(example("desktop"));
  const more: Json = example("desktop");
  addVm(more, "aaa-first");
  addVm(more, "zzz-last", { network: { interfaces: { eth0: {} } } });
  const grown = resolve(more);
  const fewer: Json = example("desktop");
  delete fewer.nixosVms.banking;
  const shrunk = resolve(fewer);
  // A removed client takes its own link with it from its network VM (net's vc-banking), nothing else.
  const withoutLinkTo = (s: ReturnType<typeof summary>, client: string) => ({
    ...s,
    // The remaining link interfaces close up their PCI slots; the guest names interfaces by MAC.
    interfaces: s.interfaces.filter((i) => i.name !== `vc-${client}`).map(({ pciAddress: _, ...i }) => i),
    kernelParams: s.kernelParams.filter((p) => !p.includes(`vc-${client}`)),
  });
  for (const name of ["net", "work"]) {
    assert.deepEqual(summary(grown, name), summary(base, name), `${name} after adding VMs`);
    const shrunkNoSlots = { ...summary(shrunk, name), interfaces: summary(shrunk, name).interfaces.map(({ pciAddress: _, ...i }) => i) };
    assert.deepEqual(shrunkNoSlots, withoutLinkTo(summary(base, name), "banking"), `${name} after removing banking`);
  }
  assert.notDeepEqual(summary(shrunk, "net"), summary(base, "net"), "banking's link left net");
  assert.deepEqual(summary(grown, "banking"), summary(base, "banking"));
});

test("an explicit id overrides the derived one and touches no other VM", () => {
  const c: Json = example("desktop");
  c.nixosVms.work.id = 42;
  const m = resolve(c);
  assert.equal(vmOf(m, "work").id, 42);
  assert.equal(vmOf(m, "net").id, derivedId("net"));
  assert.equal(vmOf(m, "banking").id, derivedId("banking"));
  c.nixosVms.work.id = 4294967294;
  assert.equal(vmOf(resolve(c), "work").id, 4294967294);
});

// ── MACs ───────────────────────────────────────────────────────────────────────────────────────

test("derived MACs are fixed, locally administered and unicast", () => {
  assert.equal(derivedMac("work", "eth0"), "02:21:f6:49:ce:dc");
  assert.equal(derivedMac("work", "eth1"), "02:79:bf:28:d5:ae");
  assert.equal(derivedMac("net", "eth0"), "02:0c:8d:67:83:93");
  for (const n of sampleNames(500)) {
    for (const i of ["eth0", "wlan0", "x"]) {
      const mac = derivedMac(n, i);
      assert.match(mac, /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/);
      const first = parseInt(mac.slice(0, 2), 16);
      assert.equal(first & 0b11, 0b10, `${n}/${i}: ${mac} must be locally administered (bit 1) and unicast (bit 0 clear)`);
      assert.equal(derivedMac(n, i), mac);
    }
  }
  assert.notEqual(derivedMac("ab", "c"), derivedMac("a", "bc"), "the two names are kept apart in the hash");
});

test("the model uses the derived MAC unless one is given", () => {
  const c: Json = example("desktop");
  c.nixosVms.work.network = { interfaces: { eth0: { dhcp: true } } };
  c.nixosVms.banking.network = { interfaces: { eth0: { macAddress: "02:42:ac:11:00:02", dhcp: true } } };
  const m = resolve(c);
  assert.deepEqual(
    vmOf(m, "work").interfaces.map((i) => i.mac),
    ["02:21:f6:49:ce:dc"],
  );
  assert.deepEqual(
    vmOf(m, "banking").interfaces.map((i) => i.mac),
    ["02:42:ac:11:00:02"],
  );
});

// ── tap names (D1) ─────────────────────────────────────────────────────────────────────────────

test("tap names: <vm>-<if> up to 15 bytes, else vs + 8 hex digits", () => {
  assert.equal(derivedTapName("work", "eth0"), "work-eth0");
  assert.equal(derivedTapName("abcdefghij", "eth0"), "abcdefghij-eth0"); // exactly 15
  assert.equal(derivedTapName("abcdefghijk", "eth0"), "vsea37a8ec"); // 16 would not fit
  assert.equal(derivedTapName("work", "wlan-guest-1"), "vsa21b5905");
  for (const n of sampleNames(500)) {
    for (const i of ["eth0", "e".repeat(15)]) {
      const tap = derivedTapName(n, i);
      assert.ok(Buffer.byteLength(tap) <= 15, tap);
      if (n.length + 1 + i.length <= 15) assert.equal(tap, `${n}-${i}`);
      else assert.match(tap, /^vs[0-9a-f]{8}$/, "never a truncated readable name");
    }
  }
});

test("the model uses tap.name when given, else the derived name", () => {
  const c = minimalWith({ network: { interfaces: { eth0: { tap: { name: "mytap", bridge: "br0" } }, "wlan-guest-1": {} } } });
  const ifs = vmOf(resolve(c), "work").interfaces;
  assert.deepEqual(
    ifs.map((i) => [i.name, i.tap, i.bridge]),
    [
      ["eth0", "mytap", "br0"],
      ["wlan-guest-1", "vsa21b5905", null],
    ],
  );
});

// ── PCI slots ──────────────────────────────────────────────────────────────────────────────────

test("network PCI slots follow the sorted interface names, from 00:10.0", () => {
  const c = minimalWith({ network: { interfaces: { wlan0: {}, eth1: {}, eth0: {}, "br-x": {} } } });
  assert.deepEqual(
    vmOf(resolve(c), "work").interfaces.map((i) => [i.name, i.pciAddress]),
    [
      ["br-x", "00:10.0"],
      ["eth0", "00:11.0"],
      ["eth1", "00:12.0"],
      ["wlan0", "00:13.0"],
    ],
  );
});

test("sixteen interfaces take slots 00:10.0 to 00:1f.0", () => {
  const interfaces = Object.fromEntries(Array.from({ length: 16 }, (_, i) => [`e${String(i).padStart(2, "0")}`, {}]));
  const ifs = vmOf(resolve(minimalWith({ network: { interfaces } })), "work").interfaces;
  assert.equal(ifs.length, 16);
  assert.equal(ifs[0]!.pciAddress, "00:10.0");
  assert.equal(ifs[15]!.pciAddress, "00:1f.0");
  assert.equal(new Set(ifs.map((i) => i.pciAddress)).size, 16);
});

// ── kernel command line (SPEC §2) ─────────────────────────────────────────────────────────────

const NETWORKED = {
  network: {
    interfaces: {
      wlan0: { dhcp: true, addresses: ["10.9.9.9/24"], routes: { "0.0.0.0/0": { via: "10.9.9.1" } } },
      eth0: {
        addresses: ["10.0.0.2/24", "192.168.1.5/16"],
        routes: { "10.1.0.0/16": { via: "10.0.0.254" }, "0.0.0.0/0": { via: "10.0.0.1" } },
        v6Addresses: ["fd00::2/64"],
        v6Routes: { "::/0": { via: "fd00::1" } },
      },
      eth1: {},
    },
    nameservers: ["10.0.0.1", "fd00::1"],
  },
  autoShutdown: { enable: true, after: 120 },
  rootOverlay: { type: "raw" },
  sharedHome: true,
  kernelParams: ["quiet", "loglevel=3"],
};

test("kernel parameters: init, hostname, ifnames, addresses and routes, nameservers, autoShutdown, overlay, home, user params last", () => {
  assert.deepEqual(vmOf(resolve(minimalWith(NETWORKED)), "work").kernelParams, [
    `init=${INIT}`,
    "vmsilo.hostname=work",
    "vmsilo.ifname=eth0,02:21:f6:49:ce:dc",
    "vmsilo.ifname=eth1,02:79:bf:28:d5:ae",
    "vmsilo.ifname=wlan0,02:e9:bb:ab:b0:d0",
    "ip=10.0.0.2:::255.255.255.0::eth0:none",
    "ip=192.168.1.5:::255.255.0.0::eth0:none",
    "ip=[fd00::2]:::64::eth0:none",
    "rd.route=0.0.0.0/0:10.0.0.1:eth0",
    "rd.route=10.1.0.0/16:10.0.0.254:eth0",
    "rd.route=[::/0]:[fd00::1]:eth0",
    // DHCP: the static settings of wlan0 are ignored.
    "ip=:::::wlan0:dhcp",
    "nameserver=10.0.0.1",
    "nameserver=fd00::1",
    "autoShutdown.enable=1",
    "autoShutdown.after=120",
    "vmsilo.rootOverlay=raw,ephemeral",
    "systemd.mount-extra=home:/home/user:virtiofs:",
    "quiet",
    "loglevel=3",
  ]);
});

test("kernel parameters of a bare VM without init: hostname and tmpfs overlay only", () => {
  assert.deepEqual(vmOf(resolve(minimalWith({ init: null })), "work").kernelParams, ["vmsilo.hostname=work", "vmsilo.rootOverlay=tmpfs"]);
});

test("kernel parameters of the desktop example's VMs", () => {
  const m = resolve(example("desktop"));
  assert.deepEqual(vmOf(m, "banking").kernelParams, [
    "init=/nix/store/1o9n8l6z4e2j0sh1g9r7a4x6d3f8y0d4-nixos-system-banking-25.11/init",
    "vmsilo.hostname=banking",
    "vmsilo.ifname=upstream,02:d6:a8:66:c3:34",
    // Its link to net: the client's end of a /31 from netvmRange, net's end as the default route.
    "ip=10.200.131.212:::255.255.255.254::upstream:none",
    "rd.route=0.0.0.0/0:10.200.131.213:upstream",
    "nameserver=9.9.9.9",
    "autoShutdown.enable=1",
    "autoShutdown.after=600",
    "vmsilo.rootOverlay=tmpfs",
    "systemd.mount-extra=downloads:/mnt/downloads:virtiofs:ro",
  ]);
  assert.deepEqual(vmOf(m, "net").kernelParams.slice(2), [
    `vmsilo.ifname=lan,${derivedMac("net", "lan")}`,
    "vmsilo.ifname=vc-banking,02:69:02:2d:d6:f9",
    "vmsilo.ifname=vc-work,02:20:07:d2:2a:3f",
    "ip=192.168.50.1:::255.255.255.0::lan:none",
    "ip=10.200.131.213:::255.255.255.254::vc-banking:none",
    "ip=10.200.64.45:::255.255.255.254::vc-work:none",
    "vmsilo.rootOverlay=tmpfs",
  ]);
});

// systemd-network-generator (the guest side of SPEC §2) parses the client IP of ip= with
// in_addr_from_string() and takes the prefix from the netmask field, and checks nameserver= with
// in_addr_from_string_auto(): neither accepts "addr/prefix" in brackets or a bracketed nameserver.
test("IPv6 addresses on the kernel command line use systemd-network-generator's syntax", () => {
  const p = vmOf(resolve(minimalWith(NETWORKED)), "work").kernelParams;
  assert.ok(p.includes("ip=[fd00::2]:::64::eth0:none"), p.join(" "));
  assert.ok(p.includes("nameserver=fd00::1"), p.join(" "));
});

// ── shares ─────────────────────────────────────────────────────────────────────────────────────

test("sharedHome true adds the share home at /shared/<vm>, sorted among the others", () => {
  const m = resolve(example("desktop"));
  const work = vmOf(m, "work");
  assert.equal(work.sharedHomePath, "/shared/work");
  assert.deepEqual(
    work.shares.map((s) => [s.tag, s.path, s.isSharedHome]),
    [
      ["home", "/shared/work", true],
      ["projects", "/home/alice/Projects", false],
    ],
  );
  assert.deepEqual(
    vmOf(m, "banking").shares.map((s) => [s.tag, s.isSharedHome]),
    [["downloads", false]],
  );
  assert.equal(vmOf(m, "banking").sharedHomePath, null);
});

test("sharedHome as a path shares that directory as home", () => {
  const v = vmOf(resolve(minimalWith({ sharedHome: "/srv/homes/work", sharedDirectories: { a: { path: "/srv/a" }, z: { path: "/srv/z" } } })), "work");
  assert.equal(v.sharedHomePath, "/srv/homes/work");
  assert.deepEqual(
    v.shares.map((s) => [s.tag, s.path]),
    [
      ["a", "/srv/a"],
      ["home", "/srv/homes/work"],
      ["z", "/srv/z"],
    ],
  );
  // Every share is mounted in tag order, each at /mnt/<tag> but the home.
  assert.deepEqual(
    v.kernelParams.filter((p) => p.startsWith("systemd.mount-extra=")),
    ["systemd.mount-extra=a:/mnt/a:virtiofs:", "systemd.mount-extra=home:/home/user:virtiofs:", "systemd.mount-extra=z:/mnt/z:virtiofs:"],
  );
  assert.deepEqual(
    v.shares.map((s) => s.mountPoint),
    ["/mnt/a", "/home/user", "/mnt/z"],
  );
});

test("sharedHome false: no home share and no home mount", () => {
  const v = vmOf(resolve(minimalWith({ sharedHome: false })), "work");
  assert.deepEqual(v.shares, []);
  assert.equal(v.sharedHomePath, null);
  assert.ok(!v.kernelParams.some((p) => p.startsWith("systemd.mount-extra=")));
});

test("the home share has the same settings as a share given only its path", () => {
  const v = vmOf(resolve(minimalWith({ sharedHome: "/srv/h", sharedDirectories: { plain: { path: "/srv/h" } } })), "work");
  const strip = ({ tag: _t, isSharedHome: _h, mountPoint: _m, ...rest }: (typeof v.shares)[number]) => rest;
  const home = v.shares.find((s) => s.tag === "home")!;
  const plain = v.shares.find((s) => s.tag === "plain")!;
  assert.deepEqual(strip(home), strip(plain));
});

// ── other derived parts ────────────────────────────────────────────────────────────────────────

test("disks come in crosvm order: root, additional, then the raw overlay disk", () => {
  const v = vmOf(resolve(example("desktop")), "work");
  assert.deepEqual(
    v.disks.map((d) => [d.path, d.ro, d.id]),
    [
      ["/nix/store/3c9x7e2c5w3z6q8f0gr9i1d3y5k7m8n0-vmsilo-rootfs-work/nixos.erofs", true, null],
      ["/var/lib/vmsilo/work-data.img", false, "data"],
      ["/var/lib/vmsilo/work/ephemeral.raw", false, "ephemeral"],
    ],
  );
  assert.equal(vmOf(resolve(example("desktop")), "banking").disks.length, 1, "tmpfs overlay: no overlay disk");
});

test("gpu true takes the defaults; sound streams; PCI devices as sysfs paths", () => {
  const v = vmOf(resolve(minimalWith({ gpu: true, sound: { playback: true, capture: true }, pciDevices: [{ path: "01:00.0" }, { path: "0000:02:00.1" }, { path: "/sys/devices/x" }] })), "work");
  assert.deepEqual(v.gpu, { wayland: true, opengl: true, vulkan: false, allowWX: null, logLevel: null, seccompPolicy: "enforcing" });
  assert.equal(v.soundStreams, "input,output");
  assert.deepEqual(v.pciSysfsPaths, ["/sys/bus/pci/devices/0000:01:00.0", "/sys/bus/pci/devices/0000:02:00.1", "/sys/devices/x"]);
  const quiet = vmOf(resolve(minimalWith({ sound: { playback: false, capture: true } })), "work");
  assert.equal(quiet.gpu, null);
  assert.equal(quiet.soundStreams, "input");
  assert.equal(vmOf(resolve(minimalWith({})), "work").soundStreams, null);
});

test("VMs in the model are sorted by name", () => {
  const c: Json = example("minimal");
  addVm(c, "zeta");
  addVm(c, "alpha");
  assert.deepEqual(
    resolve(c).vms.map((v) => v.name),
    ["alpha", "work", "zeta"],
  );
});

test("well-typed crosvm options and every crosvm vhost-user device type are accepted", () => {
  const v = vmOf(
    resolve(
      minimalWith({
        rootDisk: { path: `${ROOTFS}/nixos.erofs`, options: { sparse: false, "block-size": 4096, "async-executor": "uring", bootindex: 0, "pci-address": "00:05.0" } },
        pciDevices: [{ path: "01:00.0", options: { iommu: "viommu", "guest-address": "0000:00:06.0", "dt-symbol": "gpu0" } }],
        vhostUser: ["9p", "net", "mac80211-hwsim"].map((type, i) => ({ type, socket: `/run/vu${i}.sock`, options: { "max-queue-size": 65535 } })),
      }),
    ),
    "work",
  );
  assert.deepEqual(v.disks[0]!.options, { "async-executor": "uring", "block-size": 4096, bootindex: 0, "pci-address": "00:05.0", sparse: false });
  assert.deepEqual(
    v.config.vhostUser.map((d) => d.type),
    ["9p", "net", "mac80211-hwsim"],
  );
});

test("the shared helpers beside the VM directories in libexec/vmsilo/ are exactly the names VMs may not take", () => {
  const c = example("minimal") as any;
  c.programs.qemu = "/nix/store/7q3ma1k6lq7w0b4j5b5n7m5ax9w5q2yz-qemu-10.1.2";
  c.nixosVms.work.additionalDisks = [{ path: "/var/lib/vmsilo/work-data.qcow2", format: "qcow2", createSize: "1G" }];
  c.nixosVms.q = { ...structuredClone(c.nixosVms.work), hypervisor: "qemu", additionalDisks: [] };
  c.isolatedPciDevices = ["0000:03:00.0"];
  const tree = render(c);
  const top = new Set([...tree.keys()].filter((p) => p.startsWith(`${OUT.libexec}/`)).map((p) => p.slice(OUT.libexec.length + 1).split("/")[0]!));
  const shared = [...top].filter((n) => !c.nixosVms[n]).sort();
  assert.deepEqual(shared, Object.values(SHARED_LIBEXEC).sort(), "every shared helper is rendered by this tree, and is in SHARED_LIBEXEC");
  for (const n of shared) assert.ok((RESERVED_VM_NAMES as readonly string[]).includes(n), n);
});

test("the kernel command line may be 1919 bytes, not one more", () => {
  const at = (extra: number) => {
    const c = example("minimal") as any;
    c.nixosVms.work.kernelParams = ["x"];
    const base = resolve(c).vms[0]!.kernelParams.join(" ").length;
    c.nixosVms.work.kernelParams = [`x=${"y".repeat(1918 - base + extra)}`];
    try {
      return resolve(c).vms[0]!.kernelParams.join(" ").length;
    } catch (e) {
      return (e as ConfigError).issues.map((i) => i.message);
    }
  };
  assert.equal(at(0), 1919);
  assert.deepEqual(at(1), [`make the kernel command line of VM "work" 1920 bytes long, more than the 1919 it may have (the kernel reads 2047, 128 are left for the VMM's own); shorten kernelParams, init or the network settings`]);
});
