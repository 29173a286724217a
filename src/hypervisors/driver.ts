import type { Argv, ArgvLines } from "../shell/quote.js";
import type { Model, VmModel } from "../model/model.js";

/** What every VMM backend provides to the renderers (one per hypervisor, see index.ts). */
export interface HypervisorDriver {
  /** The VMM command line the launcher `exec`s, one option (with its value) per line. */
  launchCommand(vm: VmModel, model: Model): ArgvLines;
  /** Asks the guest to shut down cleanly (ACPI power button or equivalent); D9. */
  gracefulStopArgv(vm: VmModel, model: Model): Argv;
  /** Stops the VM at once, used when the graceful stop's deadline passes. */
  forceStopArgv(vm: VmModel, model: Model): Argv;
  /** Sockets the VMM creates, removed before start and after stop. */
  ownSockets(vm: VmModel): readonly string[];
}
