import type { Model, VmModel } from "../model/model.js";
import { HOME_TEMPLATE, RUN_ROOT, SESSION_TARGET, SYSTEM_TARGET } from "../model/paths.js";
import { driverFor } from "../hypervisors/index.js";
import { agentTransportOf, consoleBackendOf, launchPlanOf, type AgentTransport } from "../hypervisors/driver.js";
import { add, exec, raw, unitFile, type UnitFile } from "../systemd/unit.js";
import { type Tools, required } from "./context.js";
import { vmSource } from "./files.js";
import { GPU_SYSCALLS } from "./gpu-syscalls.js";

/** The vsock port of the guest command agent (SPEC §2). */
export const AGENT_VSOCK_PORT = 5000;
/** The vsock port of the guest sshd (SPEC §2). */
export const SSH_VSOCK_PORT = 22;

export interface Units {
  readonly system: UnitFile[];
  readonly user: UnitFile[];
}

/**
 * One word of a whitespace-separated setting (`Environment=`, `ReadWritePaths=`): systemd splits
 * those at spaces and unquotes them (no `$` expansion), so a word with anything unusual is
 * double-quoted with `\` and `"` escaped. `%` is left to the serialiser, which doubles it.
 */
const settingWord = (w: string): string => (/^[A-Za-z0-9_@%+=:,./-]+$/.test(w) ? w : `"${w.replace(/[\\"]/g, "\\$&")}"`);

/** Hardening every helper can bear (D15); units add to or relax it where they must. */
function harden(u: UnitFile, extra: { network?: boolean; writable?: string[]; caps?: string[]; families?: string; namespaces?: boolean; devices?: boolean }): void {
  const s = "Service";
  add(u, s, "NoNewPrivileges", true);
  add(u, s, "ProtectSystem", "strict");
  add(u, s, "ProtectHome", "yes");
  add(u, s, "PrivateTmp", true);
  add(u, s, "PrivateMounts", true);
  if (!extra.devices) add(u, s, "PrivateDevices", true);
  add(u, s, "ProtectKernelTunables", true);
  add(u, s, "ProtectKernelModules", true);
  add(u, s, "ProtectKernelLogs", true);
  add(u, s, "ProtectControlGroups", true);
  add(u, s, "ProtectClock", true);
  add(u, s, "ProtectHostname", true);
  add(u, s, "ProtectProc", "invisible");
  add(u, s, "RestrictRealtime", true);
  add(u, s, "RestrictSUIDSGID", true);
  add(u, s, "LockPersonality", true);
  add(u, s, "MemoryDenyWriteExecute", true);
  add(u, s, "SystemCallArchitectures", "native");
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

/** A helper that runs for one VM: started by the VM service, stopped with it. */
function helper(u: UnitFile, vm: VmModel, description: string): void {
  add(u, "Unit", "Description", description);
  add(u, "Unit", "Requires", vm.units.prep);
  add(u, "Unit", "After", vm.units.prep);
  add(u, "Unit", "Before", vm.units.vm);
  add(u, "Unit", "PartOf", vm.units.vm);
}

/** Ready means its socket exists (D8): the VMM connects to it right after. */
function waitForSocket(u: UnitFile, t: Tools, socket: string, model: Model): void {
  add(u, "Service", "ExecStartPre", exec([t.rm, "-f", "--", socket]));
  add(u, "Service", "ExecStartPost", exec([t.waitForSocket, socket, String(model.config.startTimeout)]));
  add(u, "Service", "ExecStopPost", exec([t.rm, "-f", "--", socket]));
}

export function renderUnits(model: Model, t: Tools): Units {
  const system: UnitFile[] = [];
  const user: UnitFile[] = [];
  for (const vm of model.vms) {
    system.push(socketUnit(model, vm), proxyUnit(model, vm, t), prepUnit(model, vm, t), vmUnit(model, vm, t), consoleRelayUnit(model, vm, t));
    for (const share of vm.shares) system.push(virtiofsdUnit(model, vm, t, share.tag));
    if (vm.sharedHomePath !== null) system.push(sharedHomeUnit(model, vm, t, vm.sharedHomePath));
    if (vm.soundStreams !== null) system.push(soundUnit(model, vm, t, vm.soundStreams));
    if (vm.gpu) system.push(seccontextUnit(model, vm, t), gpuUnit(model, vm, t));
    if (vm.gpu) user.push(sessionBindUnit(model, vm, t));
  }
  system.push(systemTarget(model));
  user.push(sessionTarget(model));
  return { system, user };
}

function socketUnit(model: Model, vm: VmModel): UnitFile {
  const u = unitFile(vm.units.socket, vmSource(vm.name));
  add(u, "Unit", "Description", `vmsilo command socket of VM ${vm.name}`);
  add(u, "Socket", "ListenStream", vm.paths.commandSocket);
  add(u, "Socket", "Accept", true);
  add(u, "Socket", "SocketUser", model.config.user.name);
  add(u, "Socket", "SocketGroup", "root");
  add(u, "Socket", "SocketMode", "0600");
  add(u, "Socket", "DirectoryMode", "0755");
  return u;
}

function proxyUnit(model: Model, vm: VmModel, t: Tools): UnitFile {
  const u = unitFile(vm.units.proxy, vmSource(vm.name));
  add(u, "Unit", "Description", raw(`vmsilo command channel to VM ${vm.name} (connection %i)`));
  add(u, "Unit", "Requires", vm.units.vm);
  add(u, "Unit", "After", vm.units.vm);
  add(u, "Unit", "CollectMode", "inactive-or-failed");
  const s = "Service";
  add(u, s, "User", model.config.user.name);
  add(u, s, "StandardInput", "socket");
  add(u, s, "StandardOutput", "socket");
  add(u, s, "StandardError", "journal");
  const transport = agentTransportOf(driverFor(vm.config.hypervisor), vm);
  add(u, s, "ExecStart", exec(vsockConnectArgv(transport, AGENT_VSOCK_PORT, model, t)));
  // AF_VSOCK needs the host's network namespace; a hybrid vsock is a unix socket on the filesystem.
  harden(u, transport.kind === "vsock" ? { network: true, families: "AF_VSOCK AF_UNIX" } : {});
  add(u, s, "PrivateUsers", true);
  return u;
}

/** The command that joins stdin/stdout to the guest agent over the VM's transport (the driver's). */
/**
 * The argv that joins stdin/stdout to a guest vsock port over the VM's transport (the driver's):
 * vmsilo-vsock-proxy retries only failed connects, until the startTimeout deadline (D12), and never
 * re-sends a started session (docs/protocol.md).
 */
export function vsockConnectArgv(transport: AgentTransport, port: number, model: Model, t: Tools): string[] {
  const target = transport.kind === "vsock" ? ["--vsock", `${transport.cid}:${port}`] : ["--hybrid", `${transport.socket}:${port}`];
  return [t.vsockProxy, "--timeout", String(model.config.startTimeout), ...target];
}

function prepUnit(model: Model, vm: VmModel, t: Tools): UnitFile {
  const u = unitFile(vm.units.prep, vmSource(vm.name));
  const { uid, gid } = model.config.user;
  add(u, "Unit", "Description", `Runtime directories of VM ${vm.name}`);
  add(u, "Unit", "StopWhenUnneeded", true);
  add(u, "Service", "Type", "oneshot");
  add(u, "Service", "RemainAfterExit", true);
  // Root owns the VM's directory (D4); only directories of backends that run as the user are theirs.
  add(u, "Service", "ExecStart", exec([t.install, "-d", "-m", "0755", "-o", "0", "-g", "0", "--", vm.paths.run, vm.paths.virtiofsDir]));
  const userDirs = [...(vm.gpu ? [vm.paths.gpuDir, vm.paths.shaderCache, vm.paths.seccontextDir] : []), ...(vm.soundStreams ? [vm.paths.soundDir] : [])];
  if (userDirs.length) add(u, "Service", "ExecStart", exec([t.install, "-d", "-m", "0750", "-o", String(uid), "-g", String(gid), "--", ...userDirs]));
  harden(u, { writable: [RUN_ROOT], caps: ["CAP_CHOWN", "CAP_FOWNER", "CAP_DAC_OVERRIDE"] });
  return u;
}

function vmUnit(model: Model, vm: VmModel, t: Tools): UnitFile {
  const u = unitFile(vm.units.vm, vmSource(vm.name));
  const driver = driverFor(vm.config.hypervisor);
  // D10: a relay that connects to the VMM's console socket can only start once the VMM is up.
  const relayAfterVmm = consoleBackendOf(driver) === "listens";
  const plan = launchPlanOf(driver, vm, model);
  add(u, "Unit", "Description", `vmsilo VM ${vm.name}`);
  if (relayAfterVmm) add(u, "Unit", "Wants", vm.units.consoleRelay);
  const backends = [
    vm.units.prep,
    ...(relayAfterVmm ? [] : [vm.units.consoleRelay]),
    ...vm.shares.map((s) => vm.units.virtiofsd(s.tag)),
    ...(vm.soundStreams ? [vm.units.sound] : []),
    ...(vm.gpu ? [vm.units.gpu] : []),
  ];
  for (const b of backends) {
    add(u, "Unit", "Requires", b);
    add(u, "Unit", "After", b);
  }
  for (const d of vm.config.dependsOn) {
    add(u, "Unit", "Wants", `vmsilo-${d}-vm.service`);
    add(u, "Unit", "After", `vmsilo-${d}-vm.service`);
  }
  for (const bridge of [...new Set(vm.interfaces.flatMap((i) => (i.bridge ? [i.bridge] : [])))].sort()) {
    add(u, "Unit", "BindsTo", netDeviceUnit(bridge));
    add(u, "Unit", "After", netDeviceUnit(bridge));
  }
  const s = "Service";
  if (plan.kind === "api") {
    // Ready once booted (the launcher's systemd-notify), so what is ordered after it finds the
    // VMM's sockets: the console relay, the command proxy.
    add(u, s, "Type", "notify");
    add(u, s, "NotifyAccess", "all");
    add(u, s, "TimeoutStartSec", model.config.startTimeout + 15);
  } else add(u, s, "Type", "simple");
  add(u, s, "UMask", "0077");
  if (vm.config.rootOverlay.type === "raw") {
    // A fresh, private overlay disk at every start (D4, fixes E.2.3).
    add(u, s, "ExecStartPre", exec([t.rm, "-f", "--", vm.paths.ephemeralDisk]));
    add(u, s, "ExecStartPre", exec([t.truncate, "-s", vm.config.rootOverlay.size, "--", vm.paths.ephemeralDisk]));
  }
  // Extra disks with `createSize`: made on first start, kept afterwards (qemu-vm.nix emptyDiskImages).
  for (const d of vm.createdDisks) add(u, s, "ExecStartPre", exec([t.createDisk, d.format, d.path, d.size]));
  const ip = vm.interfaces.length ? required(t.ip, "programs.iproute2") : "";
  for (const i of vm.interfaces) {
    add(u, s, "ExecStartPre", exec([ip, "link", "delete", "dev", i.tap], "-"));
    add(u, s, "ExecStartPre", exec([ip, "tuntap", "add", "dev", i.tap, "mode", "tap", "vnet_hdr"]));
    if (i.bridge) add(u, s, "ExecStartPre", exec([ip, "link", "set", "dev", i.tap, "master", i.bridge]));
    add(u, s, "ExecStartPre", exec([ip, "link", "set", "dev", i.tap, "up"]));
  }
  add(u, s, "ExecStart", exec([t.vmScript(vm, "launch")]));
  add(u, s, "ExecStop", exec([t.vmScript(vm, "stop")]));
  add(u, s, "ExecStopPost", exec([t.rm, "-f", "--", ...driver.ownSockets(vm), ...(vm.config.rootOverlay.type === "raw" ? [vm.paths.ephemeralDisk] : [])]));
  for (const i of vm.interfaces) add(u, s, "ExecStopPost", exec([ip, "link", "delete", "dev", i.tap], "-"));
  add(u, s, "KillMode", "mixed");
  add(u, s, "TimeoutStopSec", model.config.stopTimeout + 15);
  add(u, s, "ProtectClock", true);
  add(u, s, "ProtectHostname", true);
  add(u, s, "ProtectKernelLogs", true);
  add(u, s, "ProtectControlGroups", true);
  add(u, s, "LockPersonality", true);
  add(u, s, "RestrictSUIDSGID", true);
  add(u, s, "SystemCallArchitectures", "native");
  return u;
}

/** systemd's device unit for a network interface (systemd.device(5)); `-` escapes to \x2d. */
export function netDeviceUnit(ifname: string): string {
  return `sys-subsystem-net-devices-${ifname.replace(/-/g, "\\x2d")}.device`;
}

function consoleRelayUnit(model: Model, vm: VmModel, t: Tools): UnitFile {
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

function virtiofsdUnit(model: Model, vm: VmModel, t: Tools, tag: string): UnitFile {
  const share = vm.shares.find((s) => s.tag === tag)!;
  const u = unitFile(vm.units.virtiofsd(tag), vmSource(vm.name, share.isSharedHome ? "sharedHome" : `sharedDirectories.${tag}`));
  const socket = vm.paths.virtiofsSocket(tag);
  helper(u, vm, `virtiofsd for share ${tag} of VM ${vm.name}`);
  if (share.isSharedHome) {
    add(u, "Unit", "Requires", vm.units.sharedHome);
    add(u, "Unit", "After", vm.units.sharedHome);
  }
  const argv = [
    required(t.virtiofsd, "programs.virtiofsd"),
    "--shared-dir",
    share.path,
    "--tag",
    tag,
    "--socket-path",
    socket,
    "--thread-pool-size",
    String(share.threadPoolSize),
    `--inode-file-handles=${share.inodeFileHandles}`,
    "--cache",
    share.cache,
    "--log-level",
    share.logLevel,
  ];
  const flags: Array<[boolean, string]> = [
    [share.xattr, "--xattr"],
    [share.posixAcl, "--posix-acl"],
    [share.readonly, "--readonly"],
    [share.allowMmap, "--allow-mmap"],
    [!share.enableReaddirplus, "--no-readdirplus"],
    [share.writeback, "--writeback"],
    [share.allowDirectIo, "--allow-direct-io"],
    [share.killprivV2, "--killpriv-v2"],
    [share.preserveNoatime, "--preserve-noatime"],
  ];
  for (const [on, flag] of flags) if (on) argv.push(flag);
  const maps: Array<[string | null, string]> = [
    [share.uidMap, "--uid-map"],
    [share.gidMap, "--gid-map"],
    [share.translateUid, "--translate-uid"],
    [share.translateGid, "--translate-gid"],
  ];
  for (const [v, flag] of maps) if (v !== null) argv.push(flag, v);
  add(u, "Service", "ExecStart", exec(argv));
  waitForSocket(u, t, socket, model);
  // virtiofsd sandboxes itself in new namespaces and must act as any uid on the shared files.
  harden(u, {
    writable: [vm.paths.virtiofsDir, ...(share.readonly ? [] : [share.path])],
    namespaces: true,
    caps: ["CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID", "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_MKNOD", "CAP_SETFCAP", "CAP_SYS_ADMIN", "CAP_SYS_CHROOT"],
  });
  add(u, "Service", "ProtectHome", "read-only");
  add(u, "Service", "MemoryDenyWriteExecute", true);
  return u;
}

function sharedHomeUnit(model: Model, vm: VmModel, t: Tools, home: string): UnitFile {
  const u = unitFile(vm.units.sharedHome, vmSource(vm.name, "sharedHome"));
  helper(u, vm, `Create the shared home of VM ${vm.name} from the template`);
  // Runs as the user, who owns the directory: root never writes in a user-owned tree (E.2.2).
  add(u, "Unit", "ConditionPathExists", `!${home}`);
  add(u, "Service", "Type", "oneshot");
  add(u, "Service", "RemainAfterExit", true);
  add(u, "Service", "User", model.config.user.name);
  add(u, "Service", "ExecStart", exec([t.cp, "-a", "-T", "--", HOME_TEMPLATE, home]));
  harden(u, { writable: [parentDir(home)] });
  add(u, "Service", "ProtectHome", "read-only");
  add(u, "Service", "UMask", "0022");
  return u;
}

const parentDir = (p: string) => p.replace(/\/[^/]*\/?$/, "") || "/";

function soundUnit(model: Model, vm: VmModel, t: Tools, streams: string): UnitFile {
  const u = unitFile(vm.units.sound, vmSource(vm.name, "sound"));
  helper(u, vm, `Sound backend (vhost-device-sound) of VM ${vm.name}`);
  const s = "Service";
  add(u, s, "User", model.config.user.name);
  add(u, s, "Environment", settingWord(`XDG_RUNTIME_DIR=${model.config.user.runtimeDir}`));
  add(u, s, "ExecStart", exec([`${required(model.config.programs.vhostDeviceSound, "programs.vhostDeviceSound")}/bin/vhost-device-sound`, "--socket", vm.paths.soundSocket, "--backend", "pipewire", "--streams", streams]));
  waitForSocket(u, t, vm.paths.soundSocket, model);
  harden(u, { writable: [vm.paths.soundDir] });
  add(u, s, "ProtectHome", "read-only");
  add(u, s, "UMask", "0007");
  return u;
}

function seccontextUnit(model: Model, vm: VmModel, t: Tools): UnitFile {
  const u = unitFile(vm.units.seccontext, vmSource(vm.name, "gpu"));
  const { user } = model.config;
  helper(u, vm, `Wayland security context of VM ${vm.name}`);
  add(u, "Unit", "Before", vm.units.gpu);
  const s = "Service";
  add(u, s, "User", user.name);
  add(u, s, "Environment", settingWord(`XDG_RUNTIME_DIR=${user.runtimeDir}`));
  add(u, s, "ExecStart", exec([
    `${required(model.config.programs.waylandSeccontext, "programs.waylandSeccontext")}/bin/vmsilo-wayland-seccontext`,
    "--wayland-socket",
    `${user.runtimeDir}/wayland-0`,
    "--app-id",
    `vmsilo:${vm.name}:${vm.config.color}`,
    "--socket-path",
    vm.paths.seccontextSocket,
  ]));
  waitForSocket(u, t, vm.paths.seccontextSocket, model);
  add(u, s, "Restart", "on-failure");
  add(u, s, "RestartSec", "1s");
  harden(u, { writable: [vm.paths.seccontextDir] });
  add(u, s, "ProtectHome", "read-only");
  add(u, s, "UMask", "0007");
  return u;
}

function gpuUnit(model: Model, vm: VmModel, t: Tools): UnitFile {
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

function sessionBindUnit(model: Model, vm: VmModel, t: Tools): UnitFile {
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

function systemTarget(model: Model): UnitFile {
  const u = unitFile(SYSTEM_TARGET, "programs.vmsilo.nixosVms.*.autoStart");
  add(u, "Unit", "Description", "vmsilo VMs and their command sockets");
  for (const vm of model.vms) add(u, "Unit", "Wants", vm.units.socket);
  for (const vm of model.vms) if (vm.config.autoStart && !vm.gpu) add(u, "Unit", "Wants", vm.units.vm);
  return u;
}

function sessionTarget(model: Model): UnitFile {
  const u = unitFile(SESSION_TARGET, "programs.vmsilo.nixosVms.*.gpu");
  add(u, "Unit", "Description", "vmsilo VMs bound to the graphical session");
  add(u, "Unit", "ConditionUser", model.config.user.name);
  // Wanted by graphical-session.target (wiring.nix): without this, that target would be ordered
  // after this one, this one after its bind units, and those after the session: a cycle (D8).
  add(u, "Unit", "After", "graphical-session.target");
  for (const vm of model.vms) if (vm.gpu) add(u, "Unit", "Wants", vm.units.sessionBind);
  return u;
}
