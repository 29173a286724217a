import type { VmModel } from "../model/model.js";

/**
 * The disk images of a VM whose path someone other than root might control: every one outside the
 * store (which only the Nix daemon writes), checked by check-disks before the VM service opens them.
 */
export function checkedDisks(vm: VmModel): string[] {
  return [vm.config.rootDisk, ...vm.config.additionalDisks].map((d) => d.path).filter((p) => !p.startsWith("/nix/store/"));
}
