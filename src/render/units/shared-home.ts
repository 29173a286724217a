import type { Model, VmModel } from "../../model/model.js";
import { HOME_TEMPLATE } from "../../model/paths.js";
import { add, exec, unitFile, type UnitFile } from "../../systemd/unit.js";
import type { Tools } from "../context.js";
import { vmSource } from "../files.js";
import { harden, helper } from "./common.js";

export function sharedHomeUnit(model: Model, vm: VmModel, t: Tools, home: string): UnitFile {
  const u = unitFile(vm.units.sharedHome, vmSource(vm.name, "sharedHome"));
  helper(u, vm, `Create the shared home of VM ${vm.name} from the template`);
  // Runs as the user, who owns the directory: root never writes in a user-owned tree (E.2.2).
  add(u, "Unit", "ConditionPathExists", `!${home}`);
  add(u, "Service", "Type", "oneshot");
  add(u, "Service", "RemainAfterExit", true);
  add(u, "Service", "User", model.config.user.name);
  add(u, "Service", "ExecStart", exec([t.cp, "-a", "-T", "--", HOME_TEMPLATE, home]));
  harden(u, { writable: [parentDir(home)] });
  add(u, "Service", "ProtectHome", "read-only");
  add(u, "Service", "UMask", "0022");
  return u;
}

const parentDir = (p: string) => p.replace(/\/[^/]*\/?$/, "") || "/";
