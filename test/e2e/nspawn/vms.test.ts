/**
 * Every VM kind under real systemd (harness.ts, lifecycle.ts), one container boot per tree:
 *
 *  - the VMs of examples/desktop.json (crosvm and cloud-hypervisor, GPU, sound, shares, shared
 *    homes, taps on two bridges), as a user would start, use and stop them;
 *  - one VM per hypervisor with every helper kind it has: crosvm and cloud-hypervisor with a GPU,
 *    sound, a share, the shared home, a tap on a bridge, an extra disk; qemu (the real one, TCG,
 *    the test guest) with a share, the shared home and a tap. The same tree has a VM whose guest
 *    panics and one whose start fails (what is left for the user to read), and a switch to a
 *    configuration without one VM and with another changed (nixos-rebuild switch).
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { ROOT, example } from "../../support/harness.js";
import { CACHE, qemuTestConfig, skip, testGuest, type TestGuest } from "../support.js";
import { STAGE } from "../standins/index.js";
import { bootNspawn, nspawnPrerequisites } from "./harness.js";
import { hypervisors, lifecycleDriver } from "./lifecycle.js";

const script = (name: string) => readFileSync(join(ROOT, "test", "e2e", "nspawn", name), "utf8");

/** examples/desktop.json as this machine can run it: PCI passthrough needs an IOMMU (none here). */
function desktop(): Record<string, any> {
  const config = example("desktop") as Record<string, any>;
  delete config.isolatedPciDevices;
  for (const vm of Object.values(config.nixosVms as Record<string, any>)) delete vm.pciDevices;
  return config;
}

test("examples/desktop.json: every VM starts as the user through polkit, shows its console, stops gracefully, survives kill -9", (t) => {
  const why = nspawnPrerequisites();
  if (why) return skip(t, why);
  const config = desktop();
  const run = bootNspawn({ label: "desktop", config, driver: (out) => lifecycleDriver(out, hypervisors(config)) });
  t.after(run.remove);
  assert.ok(run.done, run.context());
  assert.deepEqual(run.failed, [], run.context());
});

/** A VM of a stand-in hypervisor, its images at a store path of its own. */
function standinVm(name: string, n: number, extra: Record<string, unknown> = {}): Record<string, unknown> {
  const store = `/nix/store/${"1".repeat(31)}${n}-vmsilo-rootfs-${name}`;
  return { kernel: `${store}/bzImage`, initramfs: `${store}/initrd`, rootDisk: { path: `${store}/nixos.erofs` }, memory: 512, cpus: 1, ...extra };
}

const tap = (address: string) => ({ interfaces: { eth0: { tap: { bridge: "br0" }, addresses: [address] } } });

/** Every helper kind, per hypervisor; the qemu VM boots the test guest (its files as the container sees the cache). */
function kinds(g: TestGuest): Record<string, any> {
  const base = example("desktop") as Record<string, any>;
  const full = (vm: string, n: number, hypervisor: string) =>
    standinVm(vm, n, {
      hypervisor,
      gpu: true,
      sound: { playback: true, capture: true },
      sharedHome: true,
      sharedDirectories: { projects: { path: `/home/alice/${vm}-projects` } },
      additionalDisks: [{ path: `/var/lib/vmsilo/${vm}-data.img`, id: "data" }],
      rootOverlay: { type: "raw", size: "1G" },
      network: tap(`10.30.0.${n}/24`),
    });
  const q = qemuTestConfig(g, "qe", {
    kernelParams: ["console=ttyS0", "quiet"],
    rootOverlay: { type: "raw", size: "32M" },
    sharedHome: true,
    sharedDirectories: { data: { path: "/home/alice/qe-data" } },
    network: tap("10.30.0.3/24"),
  }) as Record<string, any>;
  const qe = JSON.parse(JSON.stringify(q.nixosVms.qe).replaceAll(CACHE, `${STAGE}/cache`));
  // No PCI device to isolate here (desktop() above).
  delete base.isolatedPciDevices;
  return {
    ...base,
    programs: { ...base.programs, qemu: `/nix/store/${"2".repeat(32)}-qemu-10.1.2` },
    qemu: q.qemu,
    nixosVms: {
      cv: full("cv", 1, "crosvm"),
      ch: full("ch", 2, "cloud-hypervisor"),
      qe,
      panic: standinVm("panic", 4, { kernelParams: ["vmsilo.standin.panic"] }),
      // cloud-hypervisor: its unit is ready once booted, so a failed boot fails the start itself.
      nodisk: standinVm("nodisk", 5, { hypervisor: "cloud-hypervisor", additionalDisks: [{ path: "/var/lib/vmsilo/nodisk-missing.img", id: "missing" }] }),
      gone: standinVm("gone", 6, { network: tap("10.30.0.6/24") }),
    },
  };
}

test("one VM per hypervisor with every helper kind; a guest that panics and a start that fails leave what to read; nixos-rebuild switch", (t) => {
  const why = nspawnPrerequisites();
  if (why) return skip(t, why);
  const g = testGuest();
  if (typeof g === "string") return skip(t, `the qemu VM's test guest: ${g}`);
  const config = kinds(g);
  // After the switch: VM gone removed, VM cv changed (its memory).
  const next = JSON.parse(JSON.stringify(config));
  delete next.nixosVms.gone;
  next.nixosVms.cv.memory = 768;
  const NEW = `/nix/store/${"3".repeat(32)}-vmsilo`;
  const run = bootNspawn({
    label: "kinds",
    config,
    extraTrees: [{ prefix: NEW, config: next }],
    driver: (out) => [lifecycleDriver(out, { cv: "crosvm", ch: "cloud-hypervisor", qe: "qemu" }), script("failures.sh"), `NEW=${NEW}`, script("switch.sh")].join("\n"),
    timeoutS: 420,
  });
  t.after(run.remove);
  assert.ok(run.done, run.context());
  assert.deepEqual(run.failed, [], run.context());
  for (const check of ["qe:vm-shell-console", "qe:graceful-stop", "cv:killed:no-tap:cv-eth0", "ch:seccomp:vmsilo-ch-gpu.service", "cv:seccontext-context", "cv:gpu-backend-confined", "ch:gpu-backend-confined", "panic:console-log-kept", "nodisk:names-the-journal", "switch:changed-vm-kept-running", "switch:removed-vm-cleaned-up"]) {
    assert.match(run.result, new RegExp(`^ok ${check}$`, "m"), check);
  }
});
