import type { Model } from "../model/model.js";
import { OUT, USB_RESULTS, USB_UNITS } from "../model/paths.js";
import { shellQuote } from "../shell/quote.js";
import type { Tools } from "./context.js";
import { type GeneratedFile, provenance } from "./files.js";
import { renderTemplate } from "./templates.js";
import { cliUsage, usageText } from "./usage.js";

/**
 * USB passthrough's files (docs/usb.md): the broker's configuration, the udev rule that starts a
 * VM's persistent-devices unit when one of them is plugged in, and the vmsilo-usb CLI.
 */
export function renderUsb(model: Model, t: Tools): GeneratedFile[] {
  const usbVms = model.vms.filter((v) => v.usb !== null);
  if (!usbVms.length) return [];
  const files = [brokerConfig(model), usbCli(model, t)];
  const rules = udevRules(model);
  if (rules) files.push(rules);
  return files;
}

/**
 * Tab-separated lines the broker reads (agent/vmsilo-usb-broker.c): `crosvm PATH`, `timeout S`,
 * `vm NAME HYPERVISOR SOCKET VMM-USER` for every VM (a VM without USB has SOCKET empty and is
 * refused by name), `device VM VID PID SERIAL` per persistent device. Every field is from a grammar
 * without tabs or newlines.
 */
function brokerConfig(model: Model): GeneratedFile {
  const lines = provenance("programs.vmsilo.nixosVms (hypervisor, usbDevices)").map((l) => `# ${l}`);
  if (model.config.programs.crosvm !== null) lines.push(`crosvm\t${model.config.programs.crosvm}/bin/crosvm`);
  lines.push(`timeout\t${model.config.startTimeout}`);
  for (const vm of model.vms) {
    lines.push(["vm", vm.name, vm.config.hypervisor, vm.usb?.socket ?? "", vm.vmmUser ?? ""].join("\t"));
  }
  for (const vm of model.vms) for (const d of vm.usbDevices) lines.push(["device", vm.name, d.vid, d.pid, d.serial ?? ""].join("\t"));
  return { path: OUT.usbConfig, mode: 0o644, content: `${lines.join("\n")}\n` };
}

/** udev: a VM's persistent device plugged in starts the VM's USB unit (a no-op while the VM is down). */
function udevRules(model: Model): GeneratedFile | null {
  const rules: string[] = [];
  for (const vm of model.vms) {
    if (vm.usb === null) continue;
    for (const d of vm.usbDevices) {
      const serial = d.serial === null ? "" : `, ATTR{serial}=="${d.serial}"`;
      rules.push(`ACTION=="add", SUBSYSTEM=="usb", ENV{DEVTYPE}=="usb_device", ATTR{idVendor}=="${d.vid}", ATTR{idProduct}=="${d.pid}"${serial}, TAG+="systemd", ENV{SYSTEMD_WANTS}+="${vm.units.usb}"`);
    }
  }
  if (!rules.length) return null;
  const head = provenance("programs.vmsilo.nixosVms.*.usbDevices").map((l) => `# ${l}`);
  return { path: OUT.udevRules, mode: 0o644, content: [...head, ...rules].join("\n") + "\n" };
}

function usbCli(model: Model, t: Tools): GeneratedFile {
  const content = renderTemplate("vmsilo-usb.sh.hbs", {
    bash: t.bash,
    header: provenance("programs.vmsilo.nixosVms").map((l) => `# ${l}`).join("\n"),
    usage: usageText(cliUsage("vmsilo-usb")),
    broker: shellQuote(t.usbBroker),
    config: shellQuote(t.installed(OUT.usbConfig)),
    systemctl: shellQuote(t.systemctl),
    results: shellQuote(USB_RESULTS),
    attachUnit: USB_UNITS.attach.replace("@.service", ""),
    detachUnit: USB_UNITS.detach.replace("@.service", ""),
    vmList: model.vms.map((v) => v.name).join(", "),
    vms: model.vms.map((v) => ({
      pattern: shellQuote(v.name),
      refusal: v.usb !== null ? false : shellQuote(v.config.hypervisor === "cloud-hypervisor" ? `VM ${v.name} uses cloud-hypervisor, which has no USB passthrough` : `VM ${v.name} has no USB controller (set qemu.usb = true or usbDevices)`),
    })),
  });
  return { path: `${OUT.bin}/vmsilo-usb`, mode: 0o755, content };
}
