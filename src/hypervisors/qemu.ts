import type { HypervisorDriver } from "./driver.js";
import type { Config, QemuVmConfig, VmConfig } from "../config/schema.js";
import { QEMU_MACHINES } from "../config/schema.js";
import type { Issue } from "../config/types.js";
import type { Model, VmModel } from "../model/model.js";
import { required, type Tools } from "../render/context.js";
import { type ArgvLines, qemuOpts, shellJoin } from "../shell/quote.js";

/**
 * qemu (SPEC D13, docs/qemu.md): the x86_64 `microvm` machine by default (no firmware, no PCI,
 * virtio-mmio), direct kernel boot with the guest protocol's kernel command line, the same disks,
 * shares, vsock and taps as crosvm, plus what nixpkgs' qemu-vm.nix offers that suits a desktop VM:
 * 9p shares, user-mode networking with port forwards, extra options, a firmware image. The stop
 * goes through QMP (`system_powerdown`, then `quit`); the console is a chardev that *connects* to
 * the console relay's listener, as crosvm does, so nobody else listens on a socket qemu binds (D10).
 */

export type QemuMachine = (typeof QEMU_MACHINES)[number];

/** The qemu binary vmsilo runs (the host is x86_64; so is every guest). */
export const QEMU_SYSTEM = "qemu-system-x86_64";

/** virtio-mmio transports of the microvm machine (with its second IOAPIC, qemu's default). */
export const MICROVM_TRANSPORTS = 24;
/** The balloon device's id, under /machine/peripheral/ in QMP. */
export const QEMU_BALLOON_ID = "balloon0";
/** 9p mount tags hold at most 31 bytes (hw/9pfs: MAX_TAG_LEN 32, with the NUL). */
export const NINEP_TAG_MAX = 31;

/** The effective qemu settings of one VM: its own, else the global ones. */
export function qemuSettings(vm: VmConfig | { qemu: QemuVmConfig }, config: Config) {
  const machine: QemuMachine = vm.qemu.machine ?? config.qemu.machine;
  const accel = vm.qemu.accel ?? config.qemu.accel;
  return {
    machine,
    accel,
    // Under TCG, `max` offers AVX/AVX2, which guests then use and TCG emulates expensively; the
    // baseline qemu64 keeps them on SSE2 paths (docs/qemu.md).
    cpu: vm.qemu.cpu ?? (accel === "kvm" ? "host" : "qemu64"),
    /** virtio devices: `-device` suffix, `virtio-blk-device` on microvm, `virtio-blk-pci` on a PC. */
    bus: machine === "microvm" ? ("device" as const) : ("pci" as const),
  };
}

const bin = (model: Model) => `${required(model.config.programs.qemu, "programs.qemu")}/bin/${QEMU_SYSTEM}`;
const qmp = (vm: VmModel, t: Tools | undefined, command: string) => [required(t ?? null, "tools").qmp, vm.paths.qmpSocket, command];

/** Chardev and device ids: qemu ids start with a letter; tags and interface names are [A-Za-z0-9_-]. */
const fsId = (tag: string) => `fs-${tag}`;
const ninepId = (tag: string) => `p9-${tag}`;
const netId = (ifname: string) => `net-${ifname}`;

function launchCommand(vm: VmModel, model: Model): ArgvLines {
  const c = vm.config;
  const p = vm.paths;
  const q = qemuSettings(c, model.config);
  const lines: string[][] = [[bin(model)]];
  const add = (...words: string[]) => lines.push(words);
  // vhost-user backends (virtiofsd) map the guest's memory: it must be shared memory.
  const sharedMemory = vm.shares.length > 0;

  add("-name", qemuOpts(null, [["guest", vm.name], ["debug-threads", true]]));
  add("-machine", qemuOpts(q.machine, sharedMemory ? [["memory-backend", "mem"]] : []));
  add("-accel", q.accel);
  add("-cpu", q.cpu);
  add("-m", `${c.memory}M`);
  add("-smp", String(c.cpus));
  // Only the devices below: no default NIC, VGA, monitor or serial; no config file; no display.
  add("-nodefaults");
  add("-no-user-config");
  add("-display", "none");
  // A guest reboot ends the VMM, as with crosvm: the service then stops (or restarts, if so configured).
  add("-no-reboot");
  // qemu's own seccomp filter: no obsolete syscalls, no setuid or new privileges, no spawning
  // helpers (taps come ready-made, script=no), no changes to scheduling or resource limits.
  add("-sandbox", qemuOpts("on", [["obsolete", "deny"], ["elevateprivileges", "deny"], ["spawn", "deny"], ["resourcecontrol", "deny"]]));
  if (sharedMemory) add("-object", qemuOpts("memory-backend-memfd", [["id", "mem"], ["size", `${c.memory}M`], ["share", true]]));
  // Modern virtio-mmio (virtio 1.x): vhost-user-fs needs it, and it is faster.
  if (q.machine === "microvm") add("-global", "virtio-mmio.force-legacy=false");
  if (c.qemu.bios !== null) add("-bios", c.qemu.bios);
  add("-kernel", c.kernel);
  add("-initrd", c.initramfs);
  add("-append", vm.kernelParams.join(" "));

  // The console connects to the relay's listener (D10); it reconnects if the relay restarts.
  add("-chardev", qemuOpts("socket", [["id", "console"], ["path", p.consoleBackend], ["server", false], ["reconnect", 1]]));
  if (c.qemu.console === "virtio") {
    add("-device", `virtio-serial-${q.bus}`);
    add("-device", qemuOpts("virtconsole", [["chardev", "console"]]));
  } else add("-serial", "chardev:console");

  vm.disks.forEach((d, i) => {
    const id = `disk${i}`;
    add(
      "-drive",
      qemuOpts(null, [
        ["file", d.path],
        ["format", d.format],
        ["if", "none"],
        ["id", id],
        ["readonly", d.ro],
        ...(d.ro ? [] : ([["discard", "unmap"]] as const)),
      ]),
    );
    add("-device", qemuOpts(`virtio-blk-${q.bus}`, [["drive", id], ...(d.id !== null ? ([["serial", d.id]] as const) : [])]));
  });

  for (const s of vm.shares) {
    add("-chardev", qemuOpts("socket", [["id", fsId(s.tag)], ["path", p.virtiofsSocket(s.tag)]]));
    add("-device", qemuOpts(`vhost-user-fs-${q.bus}`, [["chardev", fsId(s.tag)], ["tag", s.tag]]));
  }
  for (const tag of Object.keys(c.qemu.shares9p).sort()) {
    const s = c.qemu.shares9p[tag]!;
    add("-fsdev", qemuOpts("local", [["id", ninepId(tag)], ["path", s.path], ["security_model", s.securityModel], ...(s.readonly ? ([["readonly", true]] as const) : [])]));
    add("-device", qemuOpts(`virtio-9p-${q.bus}`, [["fsdev", ninepId(tag)], ["mount_tag", tag]]));
  }

  if (c.qemu.vsock) add("-device", qemuOpts(`vhost-vsock-${q.bus}`, [["guest-cid", vm.id]]));
  // vmsilo-balloond finds it by its id (QMP `qom-get /machine/peripheral/balloon0 guest-stats`).
  if (c.balloon.enable) add("-device", qemuOpts(`virtio-balloon-${q.bus}`, [["id", QEMU_BALLOON_ID], ["free-page-reporting", true], ["deflate-on-oom", true]]));
  // QMP: qemu binds it, only the stop script's client connects.
  add("-chardev", qemuOpts("socket", [["id", "qmp"], ["path", p.qmpSocket], ["server", true], ["wait", false]]));
  add("-mon", qemuOpts(null, [["chardev", "qmp"], ["mode", "control"]]));

  // The controller the USB broker's `device_add usb-host` plugs into (its bus is vmsilo-xhci.0).
  if (vm.usb !== null) add("-device", qemuOpts("qemu-xhci", [["id", "vmsilo-xhci"]]));
  if (q.bus === "pci") for (const sysfs of vm.pciSysfsPaths) add("-device", qemuOpts("vfio-pci", [["sysfsdev", sysfs]]));

  for (const i of vm.interfaces) {
    // vhost-net under KVM (in-kernel virtio-net); TCG is emulation anyway.
    add("-netdev", qemuOpts("tap", [["id", netId(i.name)], ["ifname", i.tap], ["script", "no"], ["downscript", "no"], ...(q.accel === "kvm" ? ([["vhost", true]] as const) : [])]));
    add("-device", qemuOpts(`virtio-net-${q.bus}`, [["netdev", netId(i.name)], ["mac", i.mac], ...(q.bus === "pci" ? ([["addr", i.pciAddress.slice(3)]] as const) : [])]));
  }
  for (const i of vm.userInterfaces) {
    const forwards = i.forwardPorts.map((f): readonly [string, string] =>
      f.from === "host"
        ? ["hostfwd", `${f.proto}:${f.host.address}:${f.host.port}-${f.guest.address}:${f.guest.port}`]
        : // libslirp splits the command like a shell (g_shell_parse_argv), so shell quoting holds.
          ["guestfwd", `tcp:${f.guest.address}:${f.guest.port}-cmd:${shellJoin([`${model.config.programs.socat}/bin/socat`, "-", `TCP:${f.host.address}:${f.host.port}`])}`],
    );
    add("-netdev", qemuOpts("user", [["id", netId(i.name)], ...(i.restrictNetwork ? ([["restrict", true]] as const) : []), ...forwards]));
    add("-device", qemuOpts(`virtio-net-${q.bus}`, [["netdev", netId(i.name)], ["mac", i.mac]]));
  }

  for (const a of [...model.config.qemu.extraArgs, ...c.qemu.extraArgs]) add(a);
  return lines;
}

/** virtio-mmio transports a VM uses on microvm (each virtio device takes one). */
export function microvmTransports(vm: VmConfig, disks: number, shares: number): number {
  const ifaces = Object.keys(vm.network.interfaces).length;
  return (vm.qemu.console === "virtio" ? 1 : 0) + disks + shares + Object.keys(vm.qemu.shares9p).length + (vm.qemu.vsock ? 1 : 0) + (vm.balloon.enable ? 1 : 0) + ifaces;
}

/** What the qemu driver cannot do, each issue naming the VM's option. */
function refusals(name: string, vm: VmConfig, config: Config): Issue[] {
  const at = `nixosVms.${name}`;
  const issues: Issue[] = [];
  const refuse = (path: string, message: string) => issues.push({ path: `${at}.${path}`, message });
  const q = qemuSettings(vm, config);
  const why = "not supported by hypervisor qemu";
  if (vm.gpu !== false) refuse("gpu", `${why}: vmsilo's GPU is crosvm's vhost-user virtio-gpu backend, which qemu cannot attach (its vhost-user-gpu speaks another protocol); use crosvm or cloud-hypervisor, or set gpu = false`);
  if (vm.sound.playback || vm.sound.capture) refuse("sound", `${why}: vhost-device-sound needs a vhost-user sound device, which this qemu lacks; use crosvm or cloud-hypervisor`);
  if (vm.vhostUser.length) refuse("vhostUser", `${why}: these are crosvm \`--vhost-user\` devices; attach qemu devices with qemu.extraArgs instead`);
  const diskOptions = (where: string, o: Record<string, unknown>) => {
    if (Object.keys(o).length) refuse(`${where}.options`, `${why}: these are crosvm \`--block\` keys (${Object.keys(o).sort().join(", ")}); remove them`);
  };
  diskOptions("rootDisk", vm.rootDisk.options);
  vm.additionalDisks.forEach((d, i) => diskOptions(`additionalDisks[${i}]`, d.options));
  vm.pciDevices.forEach((d, i) => {
    if (Object.keys(d.options).length) refuse(`pciDevices[${i}].options`, `${why}: these are crosvm \`--vfio\` keys; remove them`);
  });
  if (vm.pciDevices.length && q.machine === "microvm") refuse("pciDevices", `${why} on the microvm machine (it has no PCI bus); set qemu.machine = "q35"`);
  const crosvmSet = [vm.crosvm.logLevel !== null && "logLevel", vm.crosvm.extraArgs.length > 0 && "extraArgs", vm.crosvm.extraRunArgs.length > 0 && "extraRunArgs"];
  for (const k of crosvmSet) if (k) refuse(`crosvm.${k}`, 'applies to crosvm only, but this VM\'s hypervisor is qemu; remove it or use qemu.extraArgs');
  const ch = vm.cloudHypervisor;
  const chSet = [ch.logLevel !== null && "logLevel", ch.extraArgs.length > 0 && "extraArgs", Object.keys(ch.extraConfig).length > 0 && "extraConfig"];
  for (const k of chSet) if (k) refuse(`cloudHypervisor.${k}`, 'applies to cloud-hypervisor only, but this VM\'s hypervisor is qemu; remove it or use qemu.extraArgs');
  if (q.accel === "tcg" && /^host(?:,|$)/.test(q.cpu)) refuse("qemu.cpu", `must not be "host" with accel "tcg" (qemu's host CPU model needs KVM); use "qemu64" or "max", or leave it null`);
  for (const tag of Object.keys(vm.qemu.shares9p)) {
    if (tag.length > NINEP_TAG_MAX) refuse(`qemu.shares9p.${tag}`, `tag must be at most ${NINEP_TAG_MAX} characters for 9p (qemu's mount_tag limit), got ${tag.length}`);
    if (Object.hasOwn(vm.sharedDirectories, tag) || (tag === "home" && vm.sharedHome !== false)) refuse(`qemu.shares9p.${tag}`, `tag ${JSON.stringify(tag)} is also a virtio-fs share of this VM; the guest could not tell them apart, rename one`);
  }
  if (vm.tray.enable && !vm.qemu.vsock) refuse("tray.enable", "needs qemu.vsock: the tray reaches the guest on vsock");
  if ((vm.qemu.usb || vm.usbDevices.length) && q.machine === "microvm") refuse(vm.usbDevices.length ? "usbDevices" : "qemu.usb", `${why} on the microvm machine (its USB controller, qemu-xhci, needs a PCI bus); set qemu.machine = "q35"`);
  if (q.machine === "microvm") {
    const disks = 1 + vm.additionalDisks.length + (vm.rootOverlay.type === "raw" ? 1 : 0);
    const shares = Object.keys(vm.sharedDirectories).length + (vm.sharedHome !== false ? 1 : 0);
    const n = microvmTransports(vm, disks, shares);
    if (n > MICROVM_TRANSPORTS) refuse("qemu.machine", `the microvm machine has ${MICROVM_TRANSPORTS} virtio-mmio slots, but this VM needs ${n} (console, disks, shares, vsock, balloon, interfaces); set qemu.machine = "q35"`);
  }
  return issues;
}

/** qemu-only settings on a VM of another hypervisor: refused, so nothing is silently ignored. */
export function qemuOnlyRefusals(name: string, vm: VmConfig): Issue[] {
  if (vm.hypervisor === "qemu") return [];
  const at = `nixosVms.${name}`;
  const issues: Issue[] = [];
  const msg = `applies to qemu only, but this VM's hypervisor is ${vm.hypervisor}; remove it or set hypervisor = "qemu"`;
  const q = vm.qemu;
  const set: Array<[boolean, string]> = [
    [q.machine !== null, "machine"],
    [q.accel !== null, "accel"],
    [q.cpu !== null, "cpu"],
    [q.console !== "virtio", "console"],
    [!q.vsock, "vsock"],
    [q.usb, "usb"],
    [q.bios !== null, "bios"],
    [Object.keys(q.shares9p).length > 0, "shares9p"],
    [q.extraArgs.length > 0, "extraArgs"],
  ];
  for (const [isSet, k] of set) if (isSet) issues.push({ path: `${at}.qemu.${k}`, message: msg });
  for (const ifname of Object.keys(vm.network.interfaces).sort()) {
    if (vm.network.interfaces[ifname]!.type === "user") {
      issues.push({ path: `${at}.network.interfaces.${ifname}.type`, message: `"user" (qemu's user-mode network) needs hypervisor qemu, but this VM's is ${vm.hypervisor}; use a tap` });
    }
  }
  return issues;
}

export const qemu: HypervisorDriver = {
  launchCommand,
  // D9: ACPI power button through QMP; the stop script waits, then `quit`s (systemd kills after that).
  gracefulStopArgv: (vm, _model, t) => qmp(vm, t, "system_powerdown"),
  forceStopArgv: (vm, _model, t) => qmp(vm, t, "quit"),
  ownSockets: (vm) => [vm.paths.qmpSocket],
  balloonControl: (vm) => ({ control: "qmp", socket: vm.paths.qmpSocket }),
  usbSocket: (vm, paths) => (vm.qemu.usb || vm.usbDevices.length ? paths.qmpSocket : null),
  unprivileged: true,
  refusals,
};
