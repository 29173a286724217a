import type { Model } from "../model/model.js";
import { OUT, USB_UNITS } from "../model/paths.js";
import { type GeneratedFile, provenance } from "./files.js";
import { renderTemplate } from "./templates.js";

/** The USB broker's units the user may start: attach or detach, a VM with USB, a bus path (the
 * broker checks all of it again). VM names are [a-z0-9-], nothing a regular expression reads. */
export function usbUnitPattern(vms: readonly string[]): string {
  const port = "[1-9][0-9]{0,2}";
  return `^${USB_UNITS.attach.replace(/-attach@\.service$/, "")}-(?:attach|detach)@(?:${vms.join("|")}):${port}-${port}(?:\\.${port}){0,6}\\.service$`;
}

/** The polkit rule of D5: only the configured VMs' services, only start/stop/restart; and the USB broker's units, start only. */
export function renderPolkit(model: Model): GeneratedFile {
  const usbVms = model.vms.filter((v) => v.usb !== null).map((v) => v.name);
  const content = renderTemplate("polkit.rules.hbs", {
    header: provenance("programs.vmsilo.user and programs.vmsilo.nixosVms").map((l) => `// ${l}`).join("\n"),
    user: model.config.user.name,
    userJs: JSON.stringify(model.config.user.name),
    unitsJs: JSON.stringify(model.vms.map((v) => v.units.vm)),
    usb: usbVms.length ? { pattern: usbUnitPattern(usbVms) } : false,
  });
  return { path: OUT.polkit, mode: 0o644, content };
}
