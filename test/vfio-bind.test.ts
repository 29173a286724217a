/**
 * isolatedPciDevices: the generated vfio-bind, run for real against a fake /sys/bus/pci that a
 * private mount namespace lays over the real one, with a stand-in for the kernel's side
 * (./support/fake-pci.ts). Its unit under systemd: e2e/nspawn/vfio.test.ts.
 * It runs in a pid namespace of its own, so the stand-in ends with it. Needs root and unshare; prints
 * SKIP otherwise.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync, readlinkSync } from "node:fs";
import { join } from "node:path";
import { example, have, render, tempDir, writeTree } from "./support/harness.js";
import { BDF, fakePciBus, type FakePciOptions, KERNEL_SIDE } from "./support/fake-pci.js";

const canRun = process.getuid?.() === 0 && have("unshare") && have("mkfifo") && existsSync("/sys/bus/pci");

interface Fake {
  root: string;
  run(args: string[]): { status: number | null; stdout: string; stderr: string };
}

/** A rendered tree and the fake PCI bus of ./support/fake-pci.ts. */
function fake(o: FakePciOptions = {}): Fake {
  const dir = tempDir("vfio");
  const config = example("minimal") as any;
  config.programs = { ...config.programs, bash: "/usr", coreutils: "/usr" };
  config.isolatedPciDevices = [BDF];
  writeTree(render(config, join(dir, "out")), join(dir, "out"));
  const root = join(dir, "pci");
  fakePciBus(root, o);
  const bind = join(dir, "out", "libexec/vmsilo/vfio-bind");
  return {
    root,
    run(args) {
      const script = String.raw`
        set -u
        mount --bind "$1" /sys/bus/pci
        pci=/sys/bus/pci
        ${KERNEL_SIDE}
        shift
        "$@"
        status=$?
        kill $pci_kernel 2>/dev/null
        # (the stand-in's last cat goes with this namespace's pid 1)
        exit $status`;
      const r = spawnSync("unshare", ["--mount", "--propagation", "private", "--pid", "--fork", "bash", "-c", script, "vfio", root, bind, ...args], { encoding: "utf8", timeout: 30000 });
      return { status: r.status, stdout: r.stdout, stderr: r.stderr };
    },
  };
}

const driverOf = (f: Fake) => (existsSync(join(f.root, "devices", BDF, "driver")) ? readlinkSync(join(f.root, "devices", BDF, "driver")).split("/").pop() : null);
const override = (f: Fake) => readFileSync(join(f.root, "devices", BDF, "driver_override"), "utf8");

test("vfio-bind: a device the host drives moves to vfio-pci, and a second run changes nothing", { skip: canRun ? false : "SKIP: needs root, unshare, mkfifo and /sys/bus/pci" }, () => {
  const f = fake();
  let r = f.run(["5", BDF]);
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout, `vmsilo: PCI device ${BDF} bound to vfio-pci\n`);
  assert.equal(override(f), "vfio-pci");
  assert.equal(driverOf(f), "vfio-pci");
  r = f.run(["5", BDF]);
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout, "", "already bound: nothing to do");
  assert.equal(driverOf(f), "vfio-pci");
});

test("vfio-bind: refuses a device the host uses, one that does not exist, and a missing vfio-pci, changing nothing", { skip: canRun ? false : "SKIP: needs root, unshare, mkfifo and /sys/bus/pci" }, () => {
  let f = fake({ up: true });
  let r = f.run(["5", BDF]);
  assert.equal(r.status, 1);
  assert.match(r.stderr, /isolatedPciDevices: PCI device 0000:03:00\.0 is in use by the host: its network interface wlp3s0 is up/);
  assert.equal(driverOf(f), "iwlwifi");
  assert.equal(override(f), "(null)\n");

  f = fake();
  r = f.run(["5", "0000:04:00.0", BDF]);
  assert.equal(r.status, 1);
  assert.match(r.stderr, /PCI device 0000:04:00\.0 does not exist/);
  assert.equal(driverOf(f), "iwlwifi", "checked before anything is touched");

  f = fake({ vfioLoaded: false });
  r = f.run(["5", BDF]);
  assert.equal(r.status, 1);
  assert.match(r.stderr, /the vfio-pci driver is not loaded/);
  assert.equal(driverOf(f), "iwlwifi");

  for (const bad of [[], [BDF], ["5"], ["5", "03:00.0"], ["5", "/sys/bus/pci/devices/0000:03:00.0"], ["5", `${BDF};reboot`], ["0", BDF]]) {
    r = f.run(bad);
    assert.equal(r.status, 2, `${JSON.stringify(bad)}: ${r.stderr}`);
    assert.equal(r.stderr, "usage: vfio-bind SECONDS DDDD:BB:DD.F…\n");
  }
});
