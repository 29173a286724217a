import type { VmConfig } from "../config/schema.js";
import type { Config } from "../config/schema.js";
import type { Issue } from "../config/types.js";
import { cloudHypervisor } from "./cloud-hypervisor.js";
import { crosvm } from "./crosvm.js";
import { qemu, qemuOnlyRefusals } from "./qemu.js";
import type { HypervisorDriver } from "./driver.js";

export type Hypervisor = VmConfig["hypervisor"];

/** The hypervisor list, defined once: the schema's enum and this table must agree (checked by tsc). */
export const drivers = { crosvm, "cloud-hypervisor": cloudHypervisor, qemu } satisfies Record<Hypervisor, HypervisorDriver>;

export const driverFor = (h: Hypervisor): HypervisorDriver => drivers[h];

/** Every VM's options its hypervisor cannot honour (each driver's `refusals`), in VM-name order. */
export function hypervisorRefusals(config: Config): Issue[] {
  return Object.keys(config.nixosVms)
    .sort()
    .flatMap((name) => {
      const vm = config.nixosVms[name]!;
      // qemu's own sections (qemu.*, user-mode interfaces) on another hypervisor's VM, then the driver's.
      return [...qemuOnlyRefusals(name, vm), ...(driverFor(vm.hypervisor).refusals?.(name, vm, config) ?? [])];
    });
}
