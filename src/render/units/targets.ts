import type { Model } from "../../model/model.js";
import { BALLOOND_UNIT, FIREWALL_UNIT, SESSION_TARGET, SYSTEM_TARGET, VFIO_BIND_UNIT } from "../../model/paths.js";
import { add, unitFile, type UnitFile } from "../../systemd/unit.js";
import type { Tools } from "../context.js";
import { channelsOf } from "./command-channel.js";
import { hasBalloond } from "./balloond.js";

export function systemTarget(model: Model, t: Tools): UnitFile {
  const u = unitFile(SYSTEM_TARGET, "programs.vmsilo.nixosVms.*.autoStart");
  add(u, "Unit", "Description", "vmsilo VMs and their sockets");
  for (const vm of model.vms) for (const ch of channelsOf(vm, t)) add(u, "Unit", "Wants", ch.socketUnit);
  for (const vm of model.vms) if (vm.slot !== null) add(u, "Unit", "Wants", vm.units.useSocket);
  // Loaded at boot whether or not a VM starts: the firewall, and the devices taken from the host.
  if (model.links.length) add(u, "Unit", "Wants", FIREWALL_UNIT);
  if (model.config.isolatedPciDevices.length) add(u, "Unit", "Wants", VFIO_BIND_UNIT);
  if (hasBalloond(model)) add(u, "Unit", "Wants", BALLOOND_UNIT);
  for (const vm of model.vms) if (vm.config.autoStart && !vm.gpu) add(u, "Unit", "Wants", vm.units.vm);
  return u;
}

export function sessionTarget(model: Model): UnitFile {
  const u = unitFile(SESSION_TARGET, "programs.vmsilo.nixosVms.*.gpu");
  add(u, "Unit", "Description", "vmsilo VMs bound to the graphical session");
  add(u, "Unit", "ConditionUser", model.config.user.name);
  // Wanted by graphical-session.target (wiring.nix): without this, that target would be ordered
  // after this one, this one after its bind units, and those after the session: a cycle (D8).
  add(u, "Unit", "After", "graphical-session.target");
  for (const vm of model.vms) if (vm.gpu) add(u, "Unit", "Wants", vm.units.sessionBind);
  return u;
}
