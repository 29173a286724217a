import { createHash } from "node:crypto";
import type { Model } from "../model/model.js";
import { OUT } from "../model/paths.js";
import { values, type UnitFile } from "../systemd/unit.js";
import { type GeneratedFile, isVmSource } from "./files.js";

/**
 * A VM's definition: the digest of what its running service was started from, so vm-list can tell
 * a VM that runs an older definition than the configuration (nixos-rebuild switch leaves running
 * VMs alone, their units say X-RestartIfChanged=false).
 *
 * It covers the units a switch leaves running (the VM's own, with X-RestartIfChanged=false), the
 * VM's scripts and files (libexec/vmsilo/<vm>/, share/vmsilo/<vm>/) and the shared helpers they
 * call, each with the tree's prefix replaced: every switch installs a new tree at a new store path,
 * and a VM whose files did not change otherwise needs no restart.
 */
export function vmDefinitions(model: Model, units: readonly { dir: string; unit: UnitFile }[], files: readonly GeneratedFile[], prefix: string): Map<string, string> {
  const byPath = new Map(files.map((f) => [f.path, f]));
  const normalised = (f: GeneratedFile) => f.content.replaceAll(`${prefix}/`, "@out@/");
  const shared = files.filter((f) => f.path.startsWith(`${OUT.libexec}/`) && !f.path.slice(OUT.libexec.length + 1).includes("/"));
  const result = new Map<string, string>();
  for (const vm of model.vms) {
    const own = [
      ...units.filter(({ unit }) => isVmSource(unit.source, vm.name) && values(unit, "Unit", "X-RestartIfChanged").includes("false")).map(({ dir, unit }) => byPath.get(`${dir}/${unit.name}`)!),
      ...files.filter((f) => f.path.startsWith(`${OUT.libexec}/${vm.name}/`) || f.path.startsWith(`${OUT.vmShare(vm.name)}/`)),
    ];
    const texts = own.map(normalised);
    const called = shared.filter((f) => texts.some((t) => t.includes(`@out@/${f.path}`)));
    const hash = createHash("sha256");
    for (const f of [...own, ...called].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0))) hash.update(`${f.path}\0${f.mode}\0${normalised(f)}\0`);
    result.set(vm.name, hash.digest("hex"));
  }
  return result;
}
