import type { Model } from "../../model/model.js";
import { add, type UnitFile } from "../../systemd/unit.js";
import type { Tools } from "../context.js";
import { channelsOf, proxyUnit, socketUnit } from "./command-channel.js";
import { consoleRelayUnit } from "./console-relay.js";
import { gpuUnit, seccontextUnit, sessionBindUnit } from "./gpu.js";
import { prepUnit } from "./prep.js";
import { sharedHomeUnit } from "./shared-home.js";
import { soundUnit } from "./sound.js";
import { sessionTarget, systemTarget } from "./targets.js";
import { trayUnit } from "./tray.js";
import { virtiofsdUnit } from "./virtiofsd.js";
import { vmUnit } from "./vm.js";
import { balloondUnit, hasBalloond } from "./balloond.js";
import { firewallUnit, linkUnit, vfioBindUnit } from "./network.js";
import { SLOT_START_LIMIT, useSocketUnit, useUnit } from "./disposable.js";
import { usbUnits } from "./usb.js";

/** Every unit of the tree, one family per module in this directory. */
export interface Units {
  readonly system: UnitFile[];
  readonly user: UnitFile[];
}

export function renderUnits(model: Model, t: Tools): Units {
  const system: UnitFile[] = [];
  const user: UnitFile[] = [];
  for (const vm of model.vms) {
    const running = [prepUnit(model, vm, t), vmUnit(model, vm, t), consoleRelayUnit(model, vm, t)];
    for (const share of vm.shares) running.push(virtiofsdUnit(model, vm, t, share.tag));
    if (vm.sharedHomePath !== null) running.push(sharedHomeUnit(model, vm, t, vm.sharedHomePath));
    if (vm.soundStreams !== null) running.push(soundUnit(model, vm, t, vm.soundStreams));
    if (vm.gpu) running.push(seccontextUnit(model, vm, t), gpuUnit(model, vm, t));
    if (vm.config.tray.enable) running.push(trayUnit(model, vm));
    // nixos-rebuild switch leaves a running VM and its helpers alone when their definition changes
    // (switch-to-configuration honours this key): the new one applies at the VM's next start.
    for (const u of running) add(u, "Unit", "X-RestartIfChanged", "false");
    // A disposable slot's units start once per command (units/disposable.ts).
    if (vm.slot !== null) for (const u of running) for (const [k, v] of Object.entries(SLOT_START_LIMIT)) add(u, "Unit", k, v);
    for (const ch of channelsOf(vm, t)) system.push(socketUnit(model, vm, ch), proxyUnit(model, vm, t, ch));
    system.push(...running);
    if (vm.slot !== null) system.push(useSocketUnit(model, vm), useUnit(model, vm, t));
    if (vm.gpu) user.push(sessionBindUnit(model, vm, t));
  }
  for (const l of model.links) if (l.unit !== null) system.push(linkUnit(model, l, t));
  if (model.links.length) system.push(firewallUnit(model, t));
  if (model.config.isolatedPciDevices.length) system.push(vfioBindUnit(model, t));
  if (hasBalloond(model)) system.push(balloondUnit(model, t));
  system.push(...usbUnits(model, t));
  system.push(systemTarget(model, t));
  user.push(sessionTarget(model));
  return { system, user };
}
