import { RUN_ROOT } from "../../model/paths.js";
import type { Model, VmModel } from "../../model/model.js";
import { add, exec, unitFile, type UnitFile } from "../../systemd/unit.js";
import type { Tools } from "../context.js";
import { vmSource } from "../files.js";
import { harden } from "./common.js";

export function prepUnit(_model: Model, vm: VmModel, t: Tools): UnitFile {
  const u = unitFile(vm.units.prep, vmSource(vm.name));
  add(u, "Unit", "Description", `Runtime directories of VM ${vm.name}`);
  add(u, "Unit", "StopWhenUnneeded", true);
  add(u, "Service", "Type", "oneshot");
  add(u, "Service", "RemainAfterExit", true);
  // Root owns the VM's directory (D4) and creates it as root, so it needs no capability at all. The
  // directories of backends that run as the user are their units' RuntimeDirectory= (userRuntimeDir):
  // root never changes the owner of a path here, so there is no link of the user's to follow.
  // The shares' mount points, where each virtiofsd binds its directory (vmsilo-share-bind).
  add(u, "Service", "ExecStart", exec([t.install, "-d", "-m", "0755", "--", vm.paths.run, vm.paths.virtiofsDir, ...vm.shares.map((s) => vm.paths.virtiofsRoot(s.tag))]));
  harden(u, { writable: [RUN_ROOT] });
  return u;
}
