import type { VmModel } from "../model/model.js";

/**
 * The disk images of a VM whose path someone other than root might control: every one outside the
 * store (which only the Nix daemon writes), checked by check-disks before the VM service opens them.
 */
export function checkedDisks(vm: VmModel): string[] {
  return ownDisks(vm).map((d) => d.path);
}

const ownDisks = (vm: VmModel) => [vm.config.rootDisk, ...vm.config.additionalDisks].filter((d) => !d.path.startsWith("/nix/store/"));

/**
 * What root hands an unprivileged VMM's user before it starts (libexec/vmsilo/<vm>/hand-over): its
 * disks outside the store, writable and read-only, and its PCI devices' VFIO groups; null when the
 * VMM runs as root or there is nothing to hand over.
 */
export function handedOver(vm: VmModel): { rw: string[]; ro: string[] } | null {
  if (vm.vmmUser === null) return null;
  const own = ownDisks(vm);
  const rw = own.filter((d) => !d.ro).map((d) => d.path);
  const ro = own.filter((d) => d.ro).map((d) => d.path);
  return rw.length || ro.length || vm.pciSysfsPaths.length ? { rw, ro } : null;
}
