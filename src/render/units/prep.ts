import { RUN_ROOT } from "../../model/paths.js";
import type { Model, VmModel } from "../../model/model.js";
import { add, exec, unitFile, type UnitFile } from "../../systemd/unit.js";
import type { Tools } from "../context.js";
import { vmSource } from "../files.js";
import { harden } from "./common.js";

export function prepUnit(model: Model, vm: VmModel, t: Tools): UnitFile {
  const u = unitFile(vm.units.prep, vmSource(vm.name));
  const { uid, gid } = model.config.user;
  add(u, "Unit", "Description", `Runtime directories of VM ${vm.name}`);
  add(u, "Unit", "StopWhenUnneeded", true);
  add(u, "Service", "Type", "oneshot");
  add(u, "Service", "RemainAfterExit", true);
  // Root owns the VM's directory (D4); only directories of backends that run as the user are theirs.
  add(u, "Service", "ExecStart", exec([t.install, "-d", "-m", "0755", "-o", "0", "-g", "0", "--", vm.paths.run, vm.paths.virtiofsDir]));
  const userDirs = [...(vm.gpu ? [vm.paths.gpuDir, vm.paths.shaderCache, vm.paths.seccontextDir] : []), ...(vm.soundStreams ? [vm.paths.soundDir] : [])];
  if (userDirs.length) add(u, "Service", "ExecStart", exec([t.install, "-d", "-m", "0750", "-o", String(uid), "-g", String(gid), "--", ...userDirs]));
  harden(u, { writable: [RUN_ROOT], caps: ["CAP_CHOWN", "CAP_FOWNER", "CAP_DAC_OVERRIDE"] });
  return u;
}
