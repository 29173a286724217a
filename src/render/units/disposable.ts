import type { Model, VmModel } from "../../model/model.js";
import { add, exec, unitFile, type UnitFile } from "../../systemd/unit.js";
import type { Tools } from "../context.js";
import { vmSource } from "../files.js";
import { harden, settingWord } from "./common.js";

/**
 * A disposable slot's use pair (docs/disposables.md). vm-run --disposable connects to the slot's
 * use socket, which only the user may; with Accept=no systemd starts the one use service, which
 * takes that connection (vmsilo-slot-use), starts the slot's VM and holds the slot until the
 * connection closes. The kernel closes it whenever vm-run ends, however it ends (an exit, a signal,
 * kill -9), and the service's ExecStopPost= then stops the VM, which wipes it: a tmpfs overlay and
 * no disk, nothing of the instance survives its VMM. The service is active from the taking until
 * the wipe is done, so systemd never hands the slot to the next connection before: one waiting
 * connection is started only once the service is inactive again.
 */
/** The start limit of a disposable slot's units, which start once per command: systemd's default
 * (5 in 10 s) would refuse a loop of short disposable commands; this one still stops a crash loop. */
export const SLOT_START_LIMIT = { StartLimitIntervalSec: "10s", StartLimitBurst: 100 } as const;

export function useSocketUnit(model: Model, vm: VmModel): UnitFile {
  const u = unitFile(vm.units.useSocket, vmSource(vm.name));
  add(u, "Unit", "Description", `vmsilo use socket of disposable slot ${vm.name}`);
  add(u, "Socket", "ListenStream", vm.paths.useSocket);
  add(u, "Socket", "Accept", false);
  add(u, "Socket", "Service", vm.units.use);
  add(u, "Socket", "SocketUser", model.config.user.name);
  add(u, "Socket", "SocketGroup", "root");
  add(u, "Socket", "SocketMode", "0600");
  add(u, "Socket", "DirectoryMode", "0755");
  return u;
}

export function useUnit(model: Model, vm: VmModel, t: Tools): UnitFile {
  const u = unitFile(vm.units.use, vmSource(vm.name));
  const slot = vm.slot!;
  add(u, "Unit", "Description", `vmsilo disposable slot ${vm.name} in use (slot ${slot.index} of ${slot.pattern})`);
  add(u, "Unit", "Requires", vm.units.useSocket);
  add(u, "Unit", "After", vm.units.useSocket);
  add(u, "Unit", "CollectMode", "inactive-or-failed");
  for (const [k, v] of Object.entries(SLOT_START_LIMIT)) add(u, "Unit", k, v);
  const s = "Service";
  add(u, s, "Type", "simple");
  // The use directory (vm-run reads the slot's state from it): there from the taking until the wipe is done.
  add(u, s, "RuntimeDirectory", settingWord(vm.paths.useDir.slice("/run/".length)));
  add(u, s, "RuntimeDirectoryMode", "0755");
  add(u, s, "ExecStart", exec([t.slotUse, "--systemctl", t.systemctl, "--unit", vm.units.vm, "--marker", vm.paths.useMarker]));
  // On every way out of the service: the instance is stopped, and with it wiped.
  add(u, s, "ExecStopPost", exec([t.systemctl, "stop", "--", vm.units.vm]));
  // A preloaded slot boots afresh for the next command.
  // (`-`: refused while the system shuts down, which is no failure of the use.)
  if (slot.preloaded) add(u, s, "ExecStopPost", exec([t.systemctl, "start", "--no-block", "--", vm.units.vm], "-"));
  add(u, s, "TimeoutStopSec", model.config.stopTimeout + 30);
  harden(u, {});
  return u;
}
