import type { Model, VmModel } from "../../model/model.js";
import { driverFor } from "../../hypervisors/index.js";
import { agentTransportOf, type AgentTransport } from "../../hypervisors/driver.js";
import { add, exec, raw, unitFile, type UnitFile } from "../../systemd/unit.js";
import type { Tools } from "../context.js";
import { vmSource } from "../files.js";
import { harden } from "./common.js";

/** The vsock port of the guest command agent (SPEC §2). */
export const AGENT_VSOCK_PORT = 5000;
/** The vsock port of the guest sshd (SPEC §2). */
export const SSH_VSOCK_PORT = 22;

/**
 * The channels' socket limits (docs/protocol.md, "Load"): each connection is one proxy process as
 * long as its session runs, so MaxConnections bounds what one user's loop can start; the trigger
 * limit (systemd stops a socket that triggers more often) sits above the rate systemd can start
 * instances at all, so a burst of vm-run calls never turns the command channel off.
 */
export const COMMAND_SOCKET_LIMITS = { maxConnections: 256, triggerLimitIntervalSec: "1s", triggerLimitBurst: 5000 } as const;

/** A socket-activated channel to one guest vsock port: the user's 0600 unix socket, one proxy per connection. */
export interface Channel {
  /** What it carries, for the descriptions. */
  readonly what: "command" | "ssh";
  readonly port: number;
  readonly listen: string;
  readonly socketUnit: string;
  readonly proxyUnit: string;
}

/** Every VM's channels: vm-run's command channel, and the ssh channel when vm-shell --ssh has an ssh. */
export function channelsOf(vm: VmModel, t: Tools): Channel[] {
  const u = vm.units;
  const command: Channel = { what: "command", port: AGENT_VSOCK_PORT, listen: vm.paths.commandSocket, socketUnit: u.socket, proxyUnit: u.proxy };
  const ssh: Channel = { what: "ssh", port: SSH_VSOCK_PORT, listen: vm.paths.sshSocket, socketUnit: u.sshSocket, proxyUnit: u.sshProxy };
  return t.ssh === null ? [command] : [command, ssh];
}

export function socketUnit(model: Model, vm: VmModel, ch: Channel): UnitFile {
  const u = unitFile(ch.socketUnit, vmSource(vm.name));
  add(u, "Unit", "Description", `vmsilo ${ch.what} socket of VM ${vm.name}`);
  add(u, "Socket", "ListenStream", ch.listen);
  add(u, "Socket", "Accept", true);
  add(u, "Socket", "SocketUser", model.config.user.name);
  add(u, "Socket", "SocketGroup", "root");
  add(u, "Socket", "SocketMode", "0600");
  add(u, "Socket", "DirectoryMode", "0755");
  add(u, "Socket", "MaxConnections", COMMAND_SOCKET_LIMITS.maxConnections);
  add(u, "Socket", "TriggerLimitIntervalSec", COMMAND_SOCKET_LIMITS.triggerLimitIntervalSec);
  add(u, "Socket", "TriggerLimitBurst", COMMAND_SOCKET_LIMITS.triggerLimitBurst);
  return u;
}

export function proxyUnit(model: Model, vm: VmModel, t: Tools, ch: Channel): UnitFile {
  const u = unitFile(ch.proxyUnit, vmSource(vm.name));
  add(u, "Unit", "Description", raw(`vmsilo ${ch.what} channel to VM ${vm.name} (connection %i)`));
  // A disposable slot's channel never starts its VM: only taking the slot does (units/disposable.ts),
  // so no instance runs that no use will stop and wipe.
  add(u, "Unit", vm.slot === null ? "Requires" : "Requisite", vm.units.vm);
  add(u, "Unit", "After", vm.units.vm);
  add(u, "Unit", "CollectMode", "inactive-or-failed");
  const s = "Service";
  add(u, s, "User", model.config.user.name);
  add(u, s, "StandardInput", "socket");
  add(u, s, "StandardOutput", "socket");
  add(u, s, "StandardError", "journal");
  const transport = agentTransportOf(driverFor(vm.config.hypervisor), vm);
  add(u, s, "ExecStart", exec(vsockConnectArgv(transport, ch.port, model, t)));
  if (transport.kind === "vsock") {
    // AF_VSOCK needs the host's network namespace. The guest accepts only peers on a privileged
    // port, which no other local user can bind: the proxy gets the one capability that binds it,
    // ambient (it runs as the user) and alone (PrivateUsers= would void it).
    harden(u, { network: true, families: "AF_VSOCK AF_UNIX", caps: ["CAP_NET_BIND_SERVICE"] });
    add(u, s, "AmbientCapabilities", "CAP_NET_BIND_SERVICE");
  } else {
    // A hybrid vsock is a unix socket on the filesystem, guarded by its owner and mode.
    harden(u, {});
    add(u, s, "PrivateUsers", true);
  }
  return u;
}

/**
 * The argv that joins stdin/stdout to a guest vsock port over the VM's transport (the driver's):
 * vmsilo-vsock-proxy retries only failed connects, until the startTimeout deadline (D12), and never
 * re-sends a started session (docs/protocol.md).
 */
export function vsockConnectArgv(transport: AgentTransport, port: number, model: Model, t: Tools): string[] {
  const target = transport.kind === "vsock" ? ["--vsock", `${transport.cid}:${port}`] : ["--hybrid", `${transport.socket}:${port}`];
  return [t.vsockProxy, "--timeout", String(model.config.startTimeout), ...target];
}
