/** What usb.sh runs against, shared by usb.test.ts and the latency benchmark (../../bench/usb-bench.ts). */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { ROOT, example } from "../../support/harness.js";

/** A VM of a stand-in hypervisor, its images at a store path of its own. */
export function usbStandinVm(name: string, n: number, extra: Record<string, unknown> = {}): Record<string, unknown> {
  const store = `/nix/store/${"7".repeat(31)}${n}-vmsilo-rootfs-${name}`;
  return { kernel: `${store}/bzImage`, initramfs: `${store}/initrd`, rootDisk: { path: `${store}/nixos.erofs` }, memory: 512, cpus: 1, ...extra };
}

/** The configuration usb.sh expects: work (persistent devices), personal, idle (not started), web (cloud-hypervisor). */
export function usbConfig(): Record<string, unknown> {
  const base = example("desktop") as Record<string, any>;
  return {
    ...base,
    nixosVms: {
      work: usbStandinVm("work", 1, { usbDevices: [{ vendorId: "0781", productId: "5567", serial: "4C530001" }, { vendorId: "0781", productId: "5568" }] }),
      personal: usbStandinVm("personal", 2),
      idle: usbStandinVm("idle", 3, { usbDevices: [{ vendorId: "046D", productId: "C52B" }] }),
      web: usbStandinVm("web", 4, { hypervisor: "cloud-hypervisor" }),
    },
  };
}

export const usbDriver = (vars: Record<string, string> = {}) => [...Object.entries(vars).map(([k, v]) => `${k}=${v}`), readFileSync(join(ROOT, "test", "e2e", "nspawn", "usb.sh"), "utf8")].join("\n");

