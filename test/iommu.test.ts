/**
 * The launcher's IOMMU group check and qemu's hand-over of its disks and VFIO devices, run for real
 * against a fake /sys/bus/pci/devices that a private mount namespace lays over the real one (needs
 * root and unshare; prints SKIP otherwise).
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { chmodSync, existsSync, mkdirSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { example, have, render, tempDir, writeTree } from "./support/harness.js";

const canRun = process.getuid?.() === 0 && have("unshare") && existsSync("/sys/bus/pci/devices");

interface Peer {
  driver?: string;
  cls: string;
}

/** A fake devices directory: `dev` in an IOMMU group with `peers`; `group: false` leaves the group out. */
function fakeSysfs(root: string, dev: string, peers: Record<string, Peer>, group = true): void {
  const devices = join(root, "devices");
  const all: Record<string, Peer> = { [dev]: { driver: "vfio-pci", cls: "0x020000" }, ...peers };
  for (const [bdf, p] of Object.entries(all)) {
    mkdirSync(join(devices, bdf), { recursive: true });
    writeFileSync(join(devices, bdf, "class"), `${p.cls}\n`);
    if (p.driver) symlinkSync(`../../../bus/pci/drivers/${p.driver}`, join(devices, bdf, "driver"));
  }
  if (group) {
    const members = join(root, "groups", "7", "devices");
    mkdirSync(members, { recursive: true });
    for (const bdf of Object.keys(all)) {
      symlinkSync(`../../../devices/${bdf}`, join(members, bdf));
      symlinkSync(join(root, "groups", "7"), join(devices, bdf, "iommu_group"));
    }
  }
}

function launch(peers: Record<string, Peer>, options: { group?: boolean; also?: string[] } = {}) {
  const dir = tempDir("iommu");
  const crosvm = join(dir, "crosvm");
  mkdirSync(join(crosvm, "bin"), { recursive: true });
  writeFileSync(join(crosvm, "bin", "crosvm"), "#!/bin/sh\necho crosvm-started\n");
  chmodSync(join(crosvm, "bin", "crosvm"), 0o755);
  const config = example("minimal") as any;
  config.programs = { ...config.programs, bash: "/usr", coreutils: "/usr", crosvm };
  config.nixosVms.work.pciDevices = [{ path: "03:00.0" }, ...(options.also ?? []).map((path) => ({ path }))];
  writeTree(render(config, join(dir, "out")), join(dir, "out"));
  const fake = join(dir, "sys");
  fakeSysfs(fake, "0000:03:00.0", peers, options.group ?? true);
  const script = `mount --bind ${fake}/devices /sys/bus/pci/devices && exec ${join(dir, "out", "libexec/vmsilo/work/launch")}`;
  const r = spawnSync("unshare", ["--mount", "--propagation", "private", "sh", "-c", script], { encoding: "utf8" });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

test("IOMMU group check", { skip: canRun ? false : "SKIP: needs root, unshare and /sys/bus/pci" }, () => {
  let r = launch({});
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout, "crosvm-started\n");

  for (const [what, peer] of [
    ["an unbound peer", { cls: "0x020000" }],
    ["a peer bound to vfio-pci", { driver: "vfio-pci", cls: "0x020000" }],
    ["a PCI bridge", { driver: "pcieport", cls: "0x060400" }],
  ] as const) {
    r = launch({ "0000:03:00.1": peer });
    assert.equal(r.status, 0, `${what}: ${r.stderr}`);
  }

  r = launch({ "0000:03:00.1": { driver: "snd_hda_intel", cls: "0x040300" } });
  assert.equal(r.status, 1);
  assert.equal(r.stdout, "", "crosvm must not start");
  assert.match(r.stderr, /PCI device 0000:03:00\.0 shares IOMMU group with 0000:03:00\.1 \(bound to snd_hda_intel\)/);

  r = launch({ "0000:03:00.1": { driver: "snd_hda_intel", cls: "0x040300" } }, { also: ["0000:03:00.1"] });
  assert.equal(r.status, 0, `a peer passed to the same VM is fine: ${r.stderr}`);

  r = launch({}, { group: false });
  assert.equal(r.status, 1);
  assert.match(r.stderr, /IOMMU not enabled or PCI device 0000:03:00\.0 not found/);
});

/** qemu's hand-over, in a namespace with the fake sysfs, a /dev holding only `nodes` and a passwd
 * file naming the VM's user; returns its result and the owner:group mode of /dev/vfio/7 and of
 * each disk afterwards. */
function handOver(nodes: string[], group = true) {
  const dir = tempDir("hand-over");
  const disks = join(dir, "disks");
  mkdirSync(disks);
  for (const [name, mode] of [["rw.raw", 0o600], ["ro.raw", 0o600], ["public.raw", 0o644]] as const) {
    writeFileSync(join(disks, name), "");
    chmodSync(join(disks, name), mode);
  }
  const config = example("minimal") as any;
  config.programs = { ...config.programs, bash: "/usr", coreutils: "/usr", crosvm: null, qemu: "/usr" };
  config.nixosVms.work = {
    ...config.nixosVms.work,
    hypervisor: "qemu",
    qemu: { machine: "q35" },
    pciDevices: [{ path: "03:00.0" }],
    additionalDisks: [{ path: join(disks, "rw.raw") }, { path: join(disks, "ro.raw"), ro: true }, { path: join(disks, "public.raw"), ro: true }],
  };
  writeTree(render(config, join(dir, "out")), join(dir, "out"));
  const fake = join(dir, "sys");
  fakeSysfs(fake, "0000:03:00.0", {}, group);
  writeFileSync(join(dir, "passwd"), "root:x:0:0::/root:/bin/sh\nvmsilo-work:x:990:990::/var/empty:/usr/sbin/nologin\n");
  writeFileSync(join(dir, "group"), "root:x:0:\nvmsilo-work:x:990:\n");
  const script = [
    `mount --bind ${fake}/devices /sys/bus/pci/devices`,
    `mount --bind ${dir}/passwd /etc/passwd`,
    `mount --bind ${dir}/group /etc/group`,
    "mount -t tmpfs none /dev",
    "mkdir /dev/vfio",
    ...nodes.map((n) => `mknod /dev/vfio/${n} c 1 3`),
    `${join(dir, "out", "libexec/vmsilo/work/hand-over")}; s=$?`,
    "stat -c '%U:%G %a' /dev/vfio/7 2>/dev/null || echo none",
    `stat -c '%U:%G %a' ${disks}/rw.raw ${disks}/ro.raw ${disks}/public.raw`,
    "exit $s",
  ].join("\n");
  const r = spawnSync("unshare", ["--mount", "--propagation", "private", "sh", "-c", script], { encoding: "utf8" });
  const [vfio, rw, ro, pub] = r.stdout.trim().split("\n");
  return { status: r.status, vfio, rw, ro, pub, stderr: r.stderr };
}

test("qemu's hand-over gives the VM's own user its disks and VFIO group device, and refuses a device without one", { skip: canRun ? false : "SKIP: needs root, unshare and /sys/bus/pci" }, () => {
  let r = handOver(["7", "8"]);
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.vfio, "vmsilo-work:vmsilo-work 644");
  assert.equal(r.rw, "vmsilo-work:vmsilo-work 600", "a writable disk is the VM user's");
  assert.equal(r.ro, "root:vmsilo-work 640", "a read-only disk is readable, not writable, by the VM's group");
  assert.equal(r.pub, "root:root 644", "a disk everyone may read is left alone");

  r = handOver([]);
  assert.equal(r.status, 1);
  assert.match(r.stderr, /VM work: \/dev\/vfio\/7 does not exist: bind PCI device 0000:03:00\.0 to vfio-pci/);

  r = handOver(["7"], false);
  assert.equal(r.status, 1);
  assert.match(r.stderr, /PCI device 0000:03:00\.0 has no IOMMU group/);
  assert.equal(r.vfio, "root:root 644", "no device handed over");
});
