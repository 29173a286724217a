import type { Model, VmModel } from "../../model/model.js";
import { add, exec, unitFile, type UnitFile } from "../../systemd/unit.js";
import { required } from "../context.js";
import { vmSource } from "../files.js";
import { harden, settingWord } from "./common.js";

/** The vsock port of the guest's tray daemon (docs/protocol.md, "Guest ports"). */
export const TRAY_VSOCK_PORT = 5001;

/**
 * The host side of a VM's tray (docs/protocol.md, "The tray protocol"): vmsilo-tray-host, as the
 * user, re-exports the guest's tray items on the user's session bus while the VM runs. It waits for
 * that bus and for the guest's daemon itself, so it starts with the VM, whether or not the user is
 * logged in yet.
 */
export function trayUnit(model: Model, vm: VmModel): UnitFile {
  const u = unitFile(vm.units.tray, vmSource(vm.name, "tray.enable"));
  const { user } = model.config;
  add(u, "Unit", "Description", `Tray icons of VM ${vm.name}`);
  add(u, "Unit", "BindsTo", vm.units.vm);
  add(u, "Unit", "After", vm.units.vm);
  const s = "Service";
  add(u, s, "User", user.name);
  add(u, s, "Environment", settingWord(`DBUS_SESSION_BUS_ADDRESS=unix:path=${user.runtimeDir}/bus`));
  add(u, s, "ExecStart", exec([
    `${required(model.config.programs.vmsiloTray, "programs.vmsiloTray")}/bin/vmsilo-tray-host`,
    "--vm-name",
    vm.name,
    "--color",
    vm.color,
    "--vsock",
    `${vm.id}:${TRAY_VSOCK_PORT}`,
    "--log-level",
    model.config.tray.logLevel,
  ]));
  // A guest that breaks the protocol makes it exit 1; restarting slowly keeps such a guest from
  // spinning it (five starts in ten seconds would stop it for good).
  add(u, s, "Restart", "on-failure");
  add(u, s, "RestartSec", "5s");
  // AF_VSOCK needs the host's network namespace; the guest daemon accepts only peers on a
  // privileged port, which the one capability binds (ambient: it runs as the user).
  harden(u, { network: true, families: "AF_VSOCK AF_UNIX", caps: ["CAP_NET_BIND_SERVICE"] });
  add(u, s, "AmbientCapabilities", "CAP_NET_BIND_SERVICE");
  // The session bus's socket is in the user's runtime directory, under /run/user.
  add(u, s, "ProtectHome", "read-only");
  return u;
}
