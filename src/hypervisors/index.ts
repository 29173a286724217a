import type { VmConfig } from "../config/schema.js";
import { crosvm } from "./crosvm.js";
import type { HypervisorDriver } from "./driver.js";

export type Hypervisor = VmConfig["hypervisor"];

/** The hypervisor list, defined once: the schema's enum and this table must agree (checked by tsc). */
export const drivers = { crosvm } satisfies Record<Hypervisor, HypervisorDriver>;

export const driverFor = (h: Hypervisor): HypervisorDriver => drivers[h];
