import type { Model } from "../../model/model.js";
import type { UnitFile } from "../../systemd/unit.js";
import type { Tools } from "../context.js";
import { proxyUnit, socketUnit } from "./command-channel.js";
import { consoleRelayUnit } from "./console-relay.js";
import { gpuUnit, seccontextUnit, sessionBindUnit } from "./gpu.js";
import { prepUnit } from "./prep.js";
import { sharedHomeUnit } from "./shared-home.js";
import { soundUnit } from "./sound.js";
import { sessionTarget, systemTarget } from "./targets.js";
import { virtiofsdUnit } from "./virtiofsd.js";
import { vmUnit } from "./vm.js";

/** Every unit of the tree, one family per module in this directory. */
export interface Units {
  readonly system: UnitFile[];
  readonly user: UnitFile[];
}

export function renderUnits(model: Model, t: Tools): Units {
  const system: UnitFile[] = [];
  const user: UnitFile[] = [];
  for (const vm of model.vms) {
    system.push(socketUnit(model, vm), proxyUnit(model, vm, t), prepUnit(model, vm, t), vmUnit(model, vm, t), consoleRelayUnit(model, vm, t));
    for (const share of vm.shares) system.push(virtiofsdUnit(model, vm, t, share.tag));
    if (vm.sharedHomePath !== null) system.push(sharedHomeUnit(model, vm, t, vm.sharedHomePath));
    if (vm.soundStreams !== null) system.push(soundUnit(model, vm, t, vm.soundStreams));
    if (vm.gpu) system.push(seccontextUnit(model, vm, t), gpuUnit(model, vm, t));
    if (vm.gpu) user.push(sessionBindUnit(model, vm, t));
  }
  system.push(systemTarget(model));
  user.push(sessionTarget(model));
  return { system, user };
}
