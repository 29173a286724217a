/**
 * Real qemu accepts every command line the qemu driver writes: for microvm, q35 and pc, with every
 * device kind this machine can back (disks raw and qcow2, the ephemeral overlay, virtio-fs through
 * the stand-in virtiofsd, 9p, a tap in a network namespace of the test's own, user-mode networking
 * with forwards, both consoles, a firmware image, extra options), the generated launcher starts qemu
 * paused (`-S`: every device realized, nothing booted) and the generated QMP client gets answers.
 * vhost-vsock and vfio-pci need host devices this machine lacks: their options are checked against
 * qemu's own property lists instead.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, truncateSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { ConsoleCapture, Proc, cleanRuntime, freshRuntime, qemuTestConfig, renderTree, skip, testGuest, uniqueVmName, tempDir, virtiofsdCommand, waitFor, type TestGuest } from "./support.js";

interface Variant {
  label: string;
  vm: (dir: string) => Record<string, unknown>;
  tap?: string;
}

const VARIANTS: Variant[] = [
  {
    label: "microvm, virtio console, every disk kind, virtio-fs, 9p, user networking with forwards, a tap",
    tap: "vmsiloaccept0",
    vm: (dir) => ({
      rootOverlay: { type: "raw", size: "16M" },
      additionalDisks: [
        { path: join(dir, "data,1.qcow2"), format: "qcow2", id: "data" },
        { path: join(dir, "scratch.raw"), ro: true },
      ],
      sharedDirectories: { data: { path: join(dir, "share") } },
      network: {
        interfaces: {
          lan: { tap: { name: "vmsiloaccept0", bridge: null }, dhcp: true },
          nat: { type: "user", restrictNetwork: true, forwardPorts: [{ host: { address: "127.0.0.1", port: 40222 }, guest: { port: 22 } }, { from: "guest", host: { address: "127.0.0.1", port: 40080 }, guest: { address: "10.0.2.100", port: 80 } }] },
        },
      },
      qemu: { vsock: false, console: "virtio", shares9p: { media: { path: join(dir, "media,9p"), readonly: true }, rw: { path: join(dir, "rw"), securityModel: "none" } }, extraArgs: ["-device", "virtio-rng-device"] },
    }),
  },
  {
    label: "q35, serial console, SeaBIOS, virtio-fs, 9p, user networking, a tap on a PCI slot",
    tap: "vmsiloaccept1",
    vm: (dir) => ({
      sharedDirectories: { data: { path: join(dir, "share") } },
      network: { interfaces: { lan: { tap: { name: "vmsiloaccept1", bridge: null } }, nat: { type: "user" } } },
      qemu: { machine: "q35", vsock: false, console: "serial", bios: "/usr/share/seabios/bios.bin", shares9p: { media: { path: join(dir, "media,9p") } } },
    }),
  },
  { label: "pc, virtio console, nothing else", vm: () => ({ qemu: { machine: "pc", vsock: false, console: "virtio" } }) },
];

async function acceptOne(g: TestGuest, v: Variant, netns: string): Promise<void> {
  const vm = uniqueVmName("acc");
  const dir = tempDir("qemu-accepts");
  for (const d of ["share", "media,9p", "rw"]) mkdirSync(join(dir, d));
  writeFileSync(join(dir, "scratch.raw"), Buffer.alloc(1 << 20));
  const img = spawnSync("qemu-img", ["create", "-q", "-f", "qcow2", join(dir, "data,1.qcow2"), "64M"], { encoding: "utf8" });
  assert.equal(img.status, 0, img.stderr);
  const config = qemuTestConfig(g, vm, { ...v.vm(dir) });
  (config.nixosVms as any)[vm].qemu.extraArgs = [...((config.nixosVms as any)[vm].qemu.extraArgs ?? []), "-S"];
  const out = renderTree(config, "qemu-accepts-tree");
  freshRuntime(vm);
  mkdirSync(`/run/vmsilo/${vm}/virtiofs`, { recursive: true });
  const consoleCapture = await new ConsoleCapture(`/run/vmsilo/${vm}/console-backend.socket`, dir).ready();
  const helpers: Proc[] = [];
  let launcher: Proc | undefined;
  try {
    if ((config.nixosVms as any)[vm].rootOverlay?.type === "raw") {
      mkdirSync(`/var/lib/vmsilo/${vm}`, { recursive: true, mode: 0o700 });
      writeFileSync(`/var/lib/vmsilo/${vm}/ephemeral.raw`, "");
      truncateSync(`/var/lib/vmsilo/${vm}/ephemeral.raw`, 16 << 20);
    }
    // The share units' own command lines, as systemd would run them.
    for (const tag of Object.keys((config.nixosVms as any)[vm].sharedDirectories ?? {})) {
      const p = new Proc(["timeout", "60", ...virtiofsdCommand(out, vm, tag)]);
      helpers.push(p);
      await waitFor(`virtiofsd for ${tag}`, () => existsSync(`/run/vmsilo/${vm}/virtiofs/${tag}.socket`), 10000);
    }
    // The tap as the VM unit's ExecStartPre= makes it, in the test's namespace.
    if (v.tap) {
      const r = spawnSync("ip", ["-n", netns, "tuntap", "add", "dev", v.tap, "mode", "tap", "vnet_hdr"], { encoding: "utf8" });
      assert.equal(r.status, 0, r.stderr);
    }
    launcher = new Proc(["timeout", "60", "ip", "netns", "exec", netns, join(out, "libexec", "vmsilo", vm, "launch")]);
    const qmp = `/run/vmsilo/${vm}/vmm/qmp.socket`;
    await waitFor(`qemu's QMP socket (${v.label})`, () => {
      if (!launcher!.running) throw new Error(`qemu refused the command line (${v.label}):\n${launcher!.err}`);
      return existsSync(qmp);
    }, 20000);
    const client = join(out, "libexec", "vmsilo", "qmp");
    const status = spawnSync(client, [qmp, "query-status"], { encoding: "utf8" });
    assert.equal(status.status, 0, status.stderr);
    const quit = spawnSync(client, [qmp, "quit"], { encoding: "utf8" });
    assert.equal(quit.status, 0, quit.stderr);
    const exit = await launcher.exited;
    assert.equal(exit.code, 0, `${v.label}: ${launcher.err}`);
    assert.equal(launcher.err.replace(/^.*virtio_loop.*\n?/gm, ""), "", `qemu warned (${v.label})`);
  } finally {
    await launcher?.stop();
    for (const h of helpers) await h.stop();
    if (v.tap) spawnSync("ip", ["-n", netns, "link", "delete", "dev", v.tap]);
    await consoleCapture.stop();
    cleanRuntime(vm);
  }
}

test("qemu accepts the generated command line of every machine and device kind (paused with -S; QMP answers)", async (t) => {
  const g = testGuest();
  if (typeof g === "string") return skip(t, `qemu command-line acceptance: ${g}`);
  if (process.getuid?.() !== 0) return skip(t, "qemu command-line acceptance: needs root (a network namespace with taps)");
  const netns = `vmsilo-e2e-${process.pid}`;
  const add = spawnSync("ip", ["netns", "add", netns], { encoding: "utf8" });
  if (add.status !== 0) return skip(t, `qemu command-line acceptance: cannot create a network namespace: ${add.stderr.trim()}`);
  try {
    for (const v of VARIANTS) await acceptOne(g, v, netns);
  } finally {
    spawnSync("ip", ["netns", "del", netns]);
  }
});

test("the devices this machine cannot back: vhost-vsock and vfio-pci have the properties the driver sets", (t) => {
  const g = testGuest();
  if (typeof g === "string") return skip(t, `qemu device properties: ${g}`);
  const props = (machine: string, device: string) => spawnSync("qemu-system-x86_64", ["-machine", machine, "-device", `${device},help`], { encoding: "utf8" }).stdout;
  assert.match(props("microvm", "vhost-vsock-device"), /^\s*guest-cid=/m);
  assert.match(props("q35", "vhost-vsock-pci"), /^\s*guest-cid=/m);
  assert.match(props("q35", "vfio-pci"), /^\s*sysfsdev=/m);
  assert.match(props("microvm", "virtio-net-device"), /^\s*mac=/m);
});
