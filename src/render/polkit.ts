import type { Model } from "../model/model.js";
import { OUT } from "../model/paths.js";
import { type GeneratedFile, provenance } from "./files.js";
import { renderTemplate } from "./templates.js";

/** The polkit rule of D5: only the configured VMs' services, only start/stop/restart. */
export function renderPolkit(model: Model): GeneratedFile {
  const content = renderTemplate("polkit.rules.hbs", {
    header: provenance("programs.vmsilo.user and programs.vmsilo.nixosVms").map((l) => `// ${l}`).join("\n"),
    user: model.config.user.name,
    userJs: JSON.stringify(model.config.user.name),
    unitsJs: JSON.stringify(model.vms.filter((v) => v.slot === null).map((v) => v.units.vm)),
    // A disposable slot is started by taking it (vm-run --disposable); the user may stop one, and
    // start a preloaded one (what the graphical session does for a GPU VM's).
    slotsJs: JSON.stringify(Object.fromEntries(model.vms.filter((v) => v.slot !== null).map((v) => [v.units.vm, v.slot!.preloaded ? ["start", "stop"] : ["stop"]]))),
  });
  return { path: OUT.polkit, mode: 0o644, content };
}
