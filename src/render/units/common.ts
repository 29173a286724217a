import type { Model, VmModel } from "../../model/model.js";
import { add, exec, type UnitFile } from "../../systemd/unit.js";
import { RUN_ROOT } from "../../model/paths.js";
import type { Tools } from "../context.js";

/**
 * One word of a whitespace-separated setting (`Environment=`, `ReadWritePaths=`): systemd splits
 * those at spaces and unquotes them (no `$` expansion), so a word with anything unusual is
 * double-quoted with `\` and `"` escaped. `%` is left to the serialiser, which doubles it.
 */
export const settingWord = (w: string): string => (/^[A-Za-z0-9_@%+=:,./-]+$/.test(w) ? w : `"${w.replace(/[\\"]/g, "\\$&")}"`);

/** What every vmsilo service bears, a VM's own included, whichever its hypervisor. */
export function baseHardening(u: UnitFile): void {
  const s = "Service";
  add(u, s, "ProtectClock", true);
  add(u, s, "ProtectHostname", true);
  add(u, s, "ProtectKernelLogs", true);
  add(u, s, "ProtectControlGroups", true);
  add(u, s, "LockPersonality", true);
  add(u, s, "RestrictSUIDSGID", true);
  add(u, s, "SystemCallArchitectures", "native");
}

/** What a service bears that sets up no sandbox of its own and gains no privilege: a read-only
 * system, a private /tmp, the kernel's tunables and modules out of reach. */
export function confineProcess(u: UnitFile): void {
  const s = "Service";
  add(u, s, "NoNewPrivileges", true);
  add(u, s, "ProtectSystem", "strict");
  add(u, s, "PrivateTmp", true);
  add(u, s, "ProtectKernelTunables", true);
  add(u, s, "ProtectKernelModules", true);
  add(u, s, "RestrictRealtime", true);
}

/** Hardening every helper can bear (D15); units add to or relax it where they must. */
export function harden(u: UnitFile, extra: { network?: boolean; writable?: string[]; caps?: string[]; families?: string; namespaces?: boolean; devices?: boolean }): void {
  const s = "Service";
  baseHardening(u);
  confineProcess(u);
  add(u, s, "ProtectHome", "yes");
  add(u, s, "PrivateMounts", true);
  if (!extra.devices) add(u, s, "PrivateDevices", true);
  add(u, s, "ProtectProc", "invisible");
  add(u, s, "MemoryDenyWriteExecute", true);
  add(u, s, "SystemCallFilter", "@system-service");
  add(u, s, "SystemCallFilter", extra.namespaces ? "~@resources @obsolete" : "~@privileged @resources @obsolete");
  add(u, s, "SystemCallErrorNumber", "EPERM");
  add(u, s, "CapabilityBoundingSet", (extra.caps ?? []).join(" "));
  add(u, s, "RestrictAddressFamilies", extra.families ?? "AF_UNIX");
  if (!extra.namespaces) add(u, s, "RestrictNamespaces", true);
  if (!extra.network) {
    add(u, s, "PrivateNetwork", true);
    add(u, s, "IPAddressDeny", "any");
  }
  add(u, s, "UMask", "0077");
  for (const w of extra.writable ?? []) add(u, s, "ReadWritePaths", settingWord(w));
}

/**
 * A helper that runs for one VM: started by the VM service, stopped with it. BindsTo= rather than
 * PartOf=: a VMM that dies (a crash, kill -9) takes its helpers with it, so no backend keeps
 * running, and no socket stays, for a VM that is gone.
 */
export function helper(u: UnitFile, vm: VmModel, description: string): void {
  add(u, "Unit", "Description", description);
  add(u, "Unit", "Requires", vm.units.prep);
  add(u, "Unit", "After", vm.units.prep);
  add(u, "Unit", "Before", vm.units.vm);
  add(u, "Unit", "BindsTo", vm.units.vm);
}

/** Ready means its socket exists (D8): the VMM connects to it right after. */
export function waitForSocket(u: UnitFile, t: Tools, socket: string, model: Model): void {
  add(u, "Service", "ExecStartPre", exec([t.rm, "-f", "--", socket]));
  add(u, "Service", "ExecStartPost", exec([t.waitForSocket, socket, String(model.config.startTimeout)]));
  add(u, "Service", "ExecStopPost", exec([t.rm, "-f", "--", socket]));
}

/**
 * A directory under /run/vmsilo that a backend running as the user owns: systemd creates it (and
 * its parents, root's) before the service starts, owned by the unit's User=, and removes it when the
 * service stops; `preserve` keeps it across a restart of the unit, for units whose directory others
 * have bound. The parent directory is root's, so the user can never put a link in its place.
 */
export function userRuntimeDir(u: UnitFile, dirs: string[], preserve = false): void {
  for (const d of dirs) {
    if (!d.startsWith(`${RUN_ROOT}/`)) throw new Error(`internal: ${d} is not under ${RUN_ROOT}`);
    add(u, "Service", "RuntimeDirectory", settingWord(d.slice("/run/".length)));
  }
  add(u, "Service", "RuntimeDirectoryMode", "0750");
  if (preserve) add(u, "Service", "RuntimeDirectoryPreserve", "restart");
}
