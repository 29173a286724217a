import type { Model, VmModel } from "../../model/model.js";
import { OUT, RUN_ROOT, USB_UNITS } from "../../model/paths.js";
import { systemdExec } from "../../shell/quote.js";
import { add, exec, raw, unitFile, type UnitFile } from "../../systemd/unit.js";
import type { Tools } from "../context.js";
import { vmSource } from "../files.js";
import { baseHardening, confineProcess } from "./common.js";

/**
 * USB passthrough (docs/usb.md): the broker's two templates, which the user may start through polkit
 * with the instance `<vm>:<bus path>`, and per VM with `usbDevices` the unit that attaches them at
 * VM start and on hot-plug (udev's SYSTEMD_WANTS, see ../usb.ts). Present when some VM has USB.
 */
export function usbUnits(model: Model, t: Tools): UnitFile[] {
  if (!model.vms.some((v) => v.usb !== null)) return [];
  const units = (["attach", "detach"] as const).map((op) => {
    const u = unitFile(USB_UNITS[op], "programs.vmsilo.nixosVms (the VMs with USB)");
    add(u, "Unit", "Description", raw(`vmsilo USB ${op} %i`));
    // The instance goes to the broker raw (%i): it checks it against the configuration and sysfs.
    brokerService(u, raw(`${systemdExec([t.usbBroker, t.installed(OUT.usbConfig), op])} %i`));
    return u;
  });
  for (const vm of model.vms) if (vm.usb !== null && vm.usbDevices.length) units.push(persistUnit(vm, t));
  return units;
}

/** Attaches the VM's `usbDevices` that are plugged in; started with the VM and by udev on plug-in,
 * it never starts the VM itself (Requisite=). */
function persistUnit(vm: VmModel, t: Tools): UnitFile {
  const u = unitFile(vm.units.usb, vmSource(vm.name, "usbDevices"));
  add(u, "Unit", "Description", `vmsilo USB devices of VM ${vm.name}`);
  add(u, "Unit", "Requisite", vm.units.vm);
  add(u, "Unit", "After", vm.units.vm);
  brokerService(u, exec([t.usbBroker, t.installed(OUT.usbConfig), "persist", vm.name]));
  return u;
}

/** The broker's service: root, one shot, only /run/vmsilo writable, only unix sockets. */
function brokerService(u: UnitFile, command: ReturnType<typeof raw>): void {
  const s = "Service";
  add(u, s, "Type", "oneshot");
  add(u, s, "ExecStart", command);
  baseHardening(u);
  confineProcess(u);
  add(u, s, "ReadWritePaths", RUN_ROOT);
  add(u, s, "ProtectHome", "yes");
  add(u, s, "PrivateNetwork", true);
  add(u, s, "RestrictAddressFamilies", "AF_UNIX");
  add(u, s, "RestrictNamespaces", true);
  // Reads sysfs and device nodes; hands a qemu VM's node to its user; connects to VMM sockets in
  // directories of the VMs' own users.
  add(u, s, "CapabilityBoundingSet", "CAP_CHOWN CAP_DAC_OVERRIDE CAP_FOWNER");
  add(u, s, "SystemCallFilter", "@system-service");
  add(u, s, "SystemCallErrorNumber", "EPERM");
  add(u, s, "UMask", "0022");
}

/** The VM service's clean-up: the broker forgets the VM's devices (every exit path, crashes too). */
export function usbCleanup(vm: VmModel, t: Tools): ReturnType<typeof exec> | null {
  return vm.usb === null ? null : exec([t.usbBroker, t.installed(OUT.usbConfig), "cleanup", vm.name], "+");
}
