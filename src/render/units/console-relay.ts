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
  consoleLog(u, model, vm, t);
  // The PTY keeps the VMM connected while users attach and detach (vm-shell).
  add(
    u,
    "Service",
    "ExecStart",
    exec(loggedSocat(t, p.consoleLog, [`UNIX-LISTEN:${p.consoleBackend},fork,${backendAccess(vm)}`, `PTY,link=${p.console},raw,echo=0,user=${model.config.user.uid},mode=0600`])),
  );
  waitForSocket(u, t, p.consoleBackend, model);
  add(u, "Service", "ExecStopPost", exec([t.rm, "-f", "--", p.console]));
  add(u, "Service", "Restart", "on-failure");
  add(u, "Service", "RestartSec", "1s");
  ptyRelay(u, p.run);
  return u;
}

/** Who may connect to the console's listener: the VMM, root's or its own user's group's. */
const backendAccess = (vm: VmModel) => (vm.vmmUser === null ? "mode=0600" : `group=${vm.vmmUser},mode=0660`);

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
  consoleLog(u, model, vm, t);
  // The PTY keeps the VMM's output flowing while users attach and detach (vm-shell).
  add(u, "Service", "ExecStart", exec(loggedSocat(t, p.consoleLog, [`UNIX-CONNECT:${p.consoleBackend}`, `PTY,link=${p.console},raw,echo=0,user=${model.config.user.uid},mode=0600`])));
  add(u, "Service", "ExecStopPost", exec([t.rm, "-f", "--", p.console]));
  add(u, "Service", "Restart", "always");
  add(u, "Service", "RestartSec", "1s");
  ptyRelay(u, p.run);
  return u;
}

/**
 * The guest's console output also goes to console.log (socat -r: only what the VMM sends, never what
 * a user types), so a VM that failed while nobody was attached leaves its boot messages behind. It
 * starts empty at each start of the relay and is the user's to read; it stays after the VM stops.
 */
function consoleLog(u: UnitFile, model: Model, vm: VmModel, t: Tools): void {
  const { uid, gid } = model.config.user;
  add(u, "Service", "ExecStartPre", exec([t.install, "-m", "0600", "-o", String(uid), "-g", String(gid), "-T", "/dev/null", vm.paths.consoleLog]));
  // A disposable slot keeps nothing of an instance, not even what its guest printed.
  if (vm.slot !== null) add(u, "Service", "ExecStopPost", exec([t.rm, "-f", "--", vm.paths.consoleLog]));
}

/**
 * socat between `addrs`, its copy of the VMM's output written by vmsilo-console-log, which keeps
 * console.log bounded (a guest flooding its console must not fill /run). socat is the main process
 * (bash execs it); it writes its copy without blocking, so a logger that falls behind loses part
 * of the log, never of the console.
 */
function loggedSocat(t: Tools, log: string, addrs: string[]): string[] {
  return [t.bash, "-c", 'exec "$0" -r >(exec "$1" "$2") "${@:3}"', t.socat, t.consoleLog, log, ...addrs];
}

/**
 * What both relays need to hand the user a PTY: socat's `user=` gives the PTY to the user with
 * chown(2) on the devpts node (root's file system, no link of the user's on the way), which the
 * @privileged filter of harden() would refuse; and socat ends with 143 on the SIGTERM of a stop,
 * which is a clean stop, not a failure.
 */
function ptyRelay(u: UnitFile, runDir: string): void {
  // CAP_DAC_OVERRIDE: vmsilo-console-log (root) writes console.log, which is the user's (consoleLog above).
  harden(u, { writable: [runDir], caps: ["CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FOWNER"], devices: true });
  add(u, "Service", "SystemCallFilter", "@chown");
  add(u, "Service", "SuccessExitStatus", "143");
  add(u, "Service", "DevicePolicy", "closed");
  add(u, "Service", "DeviceAllow", "/dev/ptmx rw");
  add(u, "Service", "DeviceAllow", "char-pts rw");
}
