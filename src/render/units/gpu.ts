import type { Model, VmModel } from "../../model/model.js";
import { add, exec, unitFile, type UnitFile } from "../../systemd/unit.js";
import { type Tools, required } from "../context.js";
import { vmSource } from "../files.js";
import { GPU_SYSCALLS } from "../gpu-syscalls.js";
import { harden, helper, settingWord, userRuntimeDir, waitForSocket } from "./common.js";

export function seccontextUnit(model: Model, vm: VmModel, t: Tools): UnitFile {
  const u = unitFile(vm.units.seccontext, vmSource(vm.name, "gpu"));
  const { user } = model.config;
  helper(u, vm, `Wayland security context of VM ${vm.name}`);
  add(u, "Unit", "Before", vm.units.gpu);
  const s = "Service";
  add(u, s, "User", user.name);
  add(u, s, "Environment", settingWord(`XDG_RUNTIME_DIR=${user.runtimeDir}`));
  // Ready (sd_notify) once the compositor has committed the context; 3 means the compositor lacks
  // the protocol, which a restart does not fix.
  add(u, s, "Type", "notify");
  add(u, s, "NotifyAccess", "main");
  add(u, s, "ExecStartPre", exec([t.rm, "-f", "--", vm.paths.seccontextSocket]));
  add(u, s, "ExecStart", exec([
    `${required(model.config.programs.waylandSeccontext, "programs.waylandSeccontext")}/bin/vmsilo-wayland-seccontext`,
    "--wayland-socket",
    `${user.runtimeDir}/wayland-0`,
    "--app-id",
    `vmsilo:${vm.name}:${vm.color}`,
    "--instance-id",
    vm.name,
    "--socket-path",
    vm.paths.seccontextSocket,
  ]));
  add(u, s, "ExecStopPost", exec([t.rm, "-f", "--", vm.paths.seccontextSocket]));
  add(u, s, "RestartPreventExitStatus", "3");
  add(u, s, "Restart", "on-failure");
  add(u, s, "RestartSec", "1s");
  // Kept across the helper's restarts: the GPU backend has this directory bound (E.2.5).
  userRuntimeDir(u, [vm.paths.seccontextDir], true);
  harden(u, {});
  add(u, s, "ProtectHome", "read-only");
  add(u, s, "UMask", "0007");
  return u;
}

export function gpuUnit(model: Model, vm: VmModel, t: Tools): UnitFile {
  const gpu = vm.gpu!;
  const u = unitFile(vm.units.gpu, vmSource(vm.name, "gpu"));
  helper(u, vm, `GPU backend of VM ${vm.name}`);
  add(u, "Unit", "Requires", vm.units.seccontext);
  add(u, "Unit", "After", vm.units.seccontext);
  const contextTypes = [gpu.wayland && "cross-domain", gpu.opengl && "virgl2", gpu.vulkan && "venus"].filter(Boolean).join(":");
  const s = "Service";
  add(u, s, "User", model.config.user.name);
  add(u, s, "Environment", settingWord(`LD_LIBRARY_PATH=${required(model.config.programs.vulkanLoader, "programs.vulkanLoader")}/lib`));
  add(u, s, "Environment", `MESA_SHADER_CACHE_DIR=${vm.paths.shaderCache}`);
  add(u, s, "Environment", `__GL_SHADER_DISK_CACHE_PATH=${vm.paths.shaderCache}`);
  add(u, s, "ExecStart", exec([
    `${required(model.config.programs.crosvm, "programs.crosvm")}/bin/crosvm`,
    `--log-level=${gpu.logLevel ?? model.config.crosvm.logLevel}`,
    "--no-syslog",
    "device",
    "gpu",
    "--socket-path",
    vm.paths.gpuSocket,
    "--wayland-sock",
    vm.paths.seccontextSocket,
    "--params",
    JSON.stringify({ "context-types": contextTypes }),
  ]));
  waitForSocket(u, t, vm.paths.gpuSocket, model);
  userRuntimeDir(u, [vm.paths.gpuDir, vm.paths.shaderCache]);
  // The directories are bound, not the socket files, so a restarted seccontext is seen (E.2.5).
  add(u, s, "TemporaryFileSystem", "/");
  add(u, s, "BindReadOnlyPaths", "/nix/store");
  add(u, s, "BindReadOnlyPaths", "-/run/opengl-driver");
  add(u, s, "BindReadOnlyPaths", "/sys/dev/char");
  add(u, s, "BindReadOnlyPaths", "/sys/devices");
  add(u, s, "BindReadOnlyPaths", vm.paths.seccontextDir);
  add(u, s, "BindPaths", vm.paths.gpuDir);
  add(u, s, "BindPaths", "-/dev/dri");
  add(u, s, "BindPaths", "-/dev/udmabuf");
  add(u, s, "MountAPIVFS", true);
  add(u, s, "DevicePolicy", "closed");
  add(u, s, "DeviceAllow", "char-drm rw");
  add(u, s, "DeviceAllow", "/dev/udmabuf rw");
  harden(u, { devices: true });
  add(u, s, "ProtectSystem", "false");
  add(u, s, "ProtectHome", "false");
  add(u, s, "MemoryDenyWriteExecute", !(gpu.allowWX ?? model.config.gpu.allowWX));
  // The allowlist is the original's minus io_uring, whose operations bypass seccomp (E.2.5).
  if (gpu.seccompPolicy === "enforcing") {
    add(u, s, "SystemCallFilter", GPU_SYSCALLS.join(" "));
  } else {
    add(u, s, "SystemCallLog", `~${GPU_SYSCALLS.join(" ")}`);
  }
  add(u, s, "UMask", "0007");
  return u;
}

export function sessionBindUnit(model: Model, vm: VmModel, t: Tools): UnitFile {
  const u = unitFile(vm.units.sessionBind, vmSource(vm.name, "gpu"));
  const auto = vm.config.autoStart;
  add(u, "Unit", "Description", auto ? `Run VM ${vm.name} with the graphical session` : `Stop VM ${vm.name} when the graphical session ends`);
  add(u, "Unit", "ConditionUser", model.config.user.name);
  add(u, "Unit", "BindsTo", "graphical-session.target");
  add(u, "Unit", "After", "graphical-session.target");
  add(u, "Service", "Type", "oneshot");
  add(u, "Service", "RemainAfterExit", true);
  add(u, "Service", "ExecStart", exec(auto ? [t.systemctl, "start", "--", vm.units.vm] : [`${model.config.programs.coreutils}/bin/true`]));
  add(u, "Service", "ExecStop", exec([t.systemctl, "stop", "--", vm.units.vm]));
  // A user unit cannot drop privileges it lacks, and namespacing needs unprivileged user namespaces
  // there; these are seccomp and prctl settings, which the user manager applies as is (D15).
  const s = "Service";
  add(u, s, "NoNewPrivileges", true);
  add(u, s, "LockPersonality", true);
  add(u, s, "MemoryDenyWriteExecute", true);
  add(u, s, "RestrictRealtime", true);
  add(u, s, "RestrictSUIDSGID", true);
  add(u, s, "RestrictNamespaces", true);
  add(u, s, "SystemCallArchitectures", "native");
  add(u, s, "SystemCallFilter", "@system-service");
  add(u, s, "SystemCallFilter", "~@privileged @resources @obsolete");
  add(u, s, "SystemCallErrorNumber", "EPERM");
  add(u, s, "RestrictAddressFamilies", "AF_UNIX");
  add(u, s, "UMask", "0077");
  return u;
}
