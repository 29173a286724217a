import type { Model, VmModel } from "../../model/model.js";
import { add, exec, unitFile, type UnitFile } from "../../systemd/unit.js";
import { type Tools, required } from "../context.js";
import { vmSource } from "../files.js";
import { harden, helper, settingWord, userRuntimeDir, waitForSocket } from "./common.js";

export function soundUnit(model: Model, vm: VmModel, t: Tools, streams: string): UnitFile {
  const u = unitFile(vm.units.sound, vmSource(vm.name, "sound"));
  helper(u, vm, `Sound backend (vhost-device-sound) of VM ${vm.name}`);
  const s = "Service";
  add(u, s, "User", model.config.user.name);
  add(u, s, "Environment", settingWord(`XDG_RUNTIME_DIR=${model.config.user.runtimeDir}`));
  add(u, s, "ExecStart", exec([`${required(model.config.programs.vhostDeviceSound, "programs.vhostDeviceSound")}/bin/vhost-device-sound`, "--socket", vm.paths.soundSocket, "--backend", "pipewire", "--streams", streams]));
  waitForSocket(u, t, vm.paths.soundSocket, model);
  userRuntimeDir(u, [vm.paths.soundDir]);
  harden(u, {});
  add(u, s, "ProtectHome", "read-only");
  add(u, s, "UMask", "0007");
  return u;
}
