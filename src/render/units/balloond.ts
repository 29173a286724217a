import type { Model } from "../../model/model.js";
import { BALLOOND_UNIT, OUT } from "../../model/paths.js";
import { add, exec, unitFile, type UnitFile } from "../../systemd/unit.js";
import type { Tools } from "../context.js";
import { harden } from "./common.js";

/** Whether the tree has vmsilo-balloond: a VM with a balloon. */
export const hasBalloond = (model: Model): boolean => model.vms.some((vm) => vm.balloonFloor !== null);

/**
 * vmsilo-balloond (docs/balloon.md): one root daemon for the host, reading the manifest for the VMs'
 * control sockets. It connects to sockets only: no network, nothing writable, no capability but,
 * when a qemu VM has a balloon, CAP_DAC_OVERRIDE, to connect to the QMP socket in the directory
 * only that VM's own user may enter (root owns the other VMMs' sockets, so root reaches them as
 * their owner, without any capability).
 */
export function balloondUnit(model: Model, t: Tools): UnitFile {
  const b = model.config.balloond;
  const u = unitFile(BALLOOND_UNIT, "programs.vmsilo.vmsilo-balloond");
  add(u, "Unit", "Description", "vmsilo-balloond: memory between the host and the VMs");
  const s = "Service";
  add(u, s, "Type", "simple");
  add(
    u,
    s,
    "ExecStart",
    exec([
      `${model.config.programs.vmsiloTools}/bin/vmsilo-balloond`,
      "--manifest", t.installed(OUT.manifest),
      "--log-level", b.logLevel,
      "--poll-interval", b.pollInterval,
      "--critical-host-percent", String(b.criticalHostPercent),
      "--critical-guest-available", b.criticalGuestAvailable,
      "--guest-available-bias", b.guestAvailableBias,
      "--min-poll-interval", b.minPollInterval,
      "--psi-ceiling", String(b.psiCeiling),
      ...b.extraArgs,
    ]),
  );
  add(u, s, "Restart", "on-failure");
  add(u, s, "RestartSec", "5s");
  const qmp = model.vms.some((vm) => vm.balloonFloor !== null && vm.config.hypervisor === "qemu");
  harden(u, { caps: qmp ? ["CAP_DAC_OVERRIDE"] : [] });
  add(u, s, "PrivateUsers", !qmp);
  // ProtectSystem=strict leaves /run writable: the daemon writes nowhere, and connect() needs no write access to the mount.
  add(u, s, "ReadOnlyPaths", "/run");
  add(u, s, "MemoryMax", "64M");
  return u;
}
