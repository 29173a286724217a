import type { Argv, ArgvLines } from "../shell/quote.js";
import type { Config, VmConfig } from "../config/schema.js";
import type { Issue } from "../config/types.js";
import type { Model, VmModel } from "../model/model.js";
import type { VmPaths } from "../model/paths.js";
import type { Tools } from "../render/context.js";

/** How the host reaches a guest's vsock ports (the command agent, sshd): SPEC §2. */
export type AgentTransport =
  /** Kernel `AF_VSOCK` to the guest's CID (vhost-vsock: crosvm, qemu). */
  | { readonly kind: "vsock"; readonly cid: number }
  /** A unix socket the VMM serves, `CONNECT <port>\n` then `OK …\n` (cloud-hypervisor's hybrid vsock). */
  | { readonly kind: "hybrid"; readonly socket: string };

/**
 * How the launcher starts the VMM. `exec`: the launcher execs `launchCommand` (crosvm). `api`: the
 * launcher starts `launchCommand` in the background, waits (deadline `startTimeout`) for `apiSocket`,
 * runs `create` with `config` on its stdin and then `boot`, and waits for the VMM; `config` is written
 * to `configPath` in the output tree.
 */
export type LaunchPlan =
  | { readonly kind: "exec" }
  | {
      readonly kind: "api";
      readonly apiSocket: string;
      readonly create: Argv;
      readonly boot: Argv;
      /** The VM's configuration, as the text `create` reads. */
      readonly config: string;
      /** Where the config goes in the output tree (relative to the prefix). */
      readonly configPath: string;
      /** Sockets (of the VMM's) the user's helpers connect to; the launcher hands them to the user once booted. */
      readonly userSockets: readonly string[];
    };

/** How vmsilo-balloond reaches a VM's balloon (docs/balloon.md): the VMM's control protocol and socket. */
export interface BalloonControl {
  /** crosvm's control socket (JSON VmRequest packets), QMP, or cloud-hypervisor's HTTP API. */
  readonly control: "crosvm" | "qmp" | "cloud-hypervisor";
  readonly socket: string;
}

/** What every VMM backend provides to the renderers (one per hypervisor, see index.ts). */
export interface HypervisorDriver {
  /** The VMM command line the launcher `exec`s, one option (with its value) per line. */
  launchCommand(vm: VmModel, model: Model): ArgvLines;
  /** Asks the guest to shut down cleanly (ACPI power button or equivalent); D9. */
  gracefulStopArgv(vm: VmModel, model: Model, t?: Tools): Argv;
  /** Stops the VM at once, used when the graceful stop's deadline passes. */
  forceStopArgv(vm: VmModel, model: Model, t?: Tools): Argv;
  /** Where vmsilo-balloond asks for the VM's balloon and guest statistics. */
  balloonControl(vm: VmModel): BalloonControl;
  /** Sockets the VMM creates, removed before start and after stop. */
  ownSockets(vm: VmModel): readonly string[];
  /** How the launcher runs the VMM; absent: `{ kind: "exec" }`. */
  launchPlan?(vm: VmModel, model: Model): LaunchPlan;
  /** How the host reaches the guest's vsock ports; absent: `AF_VSOCK` to the VM's id. */
  agentTransport?(vm: VmModel): AgentTransport;
  /**
   * What the VMM does with `paths.consoleBackend` (D10: exactly one side listens). `connects`: the
   * console relay listens and the VMM connects (it is ordered before the VMM). `listens`: the VMM
   * binds it and the relay connects once the VMM is up (ordered after it). Absent: `connects`.
   */
  readonly consoleBackend?: "connects" | "listens";
  /**
   * True when the VMM runs without any capability: it opens only what root owns (disks, /dev/kvm,
   * taps made with `user 0`, its own sockets) and sets up no sandbox of its own that would need
   * privileges, so the unit drops them all and only the preparation and clean-up steps keep them.
   * Absent: the VMM keeps root's capabilities (crosvm and cloud-hypervisor build their own jails).
   */
  readonly unprivileged?: boolean;
  /** The socket the USB broker attaches devices through (crosvm's control socket, qemu's QMP), or
   * null when this VM has no USB controller; absent: the hypervisor has no USB passthrough. */
  usbSocket?(vm: VmConfig, paths: VmPaths): string | null;
  /** Options this hypervisor cannot honour, each issue naming the VM's option (D11); absent: none. */
  refusals?(name: string, vm: VmConfig, config: Config): Issue[];
}

/** The defaults of the optional members, in one place. */
export const launchPlanOf = (d: HypervisorDriver, vm: VmModel, model: Model): LaunchPlan => d.launchPlan?.(vm, model) ?? { kind: "exec" };
export const agentTransportOf = (d: HypervisorDriver, vm: VmModel): AgentTransport => d.agentTransport?.(vm) ?? { kind: "vsock", cid: vm.id };
export const consoleBackendOf = (d: HypervisorDriver): "connects" | "listens" => d.consoleBackend ?? "connects";
