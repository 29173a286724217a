/**
 * The launcher's IOMMU group check, run for real against a fake /sys/bus/pci/devices that a private
 * mount namespace lays over the real one (needs root and unshare; prints SKIP otherwise).
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
