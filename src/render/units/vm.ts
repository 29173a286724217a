import type { Model, VmModel } from "../../model/model.js";
import { driverFor } from "../../hypervisors/index.js";
import { consoleBackendOf, launchPlanOf } from "../../hypervisors/driver.js";
import { add, exec, unitFile, type UnitFile } from "../../systemd/unit.js";
import { type Tools, required } from "../context.js";
import { vmSource } from "../files.js";
import { OUT } from "../../model/paths.js";
import { checkedDisks, handedOver } from "../disks.js";
import { baseHardening, confineProcess, settingWord } from "./common.js";
import { HOST_NETVM } from "../../model/netvm.js";
import { FIREWALL_UNIT, unitNames, VFIO_BIND_UNIT } from "../../model/paths.js";
import { isolatedSysfsPaths } from "./network.js";
import { usbCleanup } from "./usb.js";

export function vmUnit(model: Model, vm: VmModel, t: Tools): UnitFile {
  const u = unitFile(vm.units.vm, vmSource(vm.name));
  const driver = driverFor(vm.config.hypervisor);
  // D10: a relay that connects to the VMM's console socket can only start once the VMM is up.
  const relayAfterVmm = consoleBackendOf(driver) === "listens";
  const plan = launchPlanOf(driver, vm, model);
  add(u, "Unit", "Description", `vmsilo VM ${vm.name}`);
  if (relayAfterVmm) add(u, "Unit", "Wants", vm.units.consoleRelay);
  // The tray follows the VM (it is After= and BindsTo= it): a failing tray never holds the VM back.
  if (vm.config.tray.enable) add(u, "Unit", "Wants", vm.units.tray);
  // The persistent USB devices, attached once the VMM is up (the unit is ordered after this one).
  if (vm.usb !== null && vm.usbDevices.length) add(u, "Unit", "Wants", vm.units.usb);
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
  // The network VM first (D8); without it the VM has no network, never another route (D18).
  const netvm = vm.config.network.netvm;
  if (netvm !== null && netvm !== HOST_NETVM) {
    add(u, "Unit", "Wants", unitNames(netvm).vm);
    add(u, "Unit", "After", unitNames(netvm).vm);
  }
  // A bridge the host declares is a device to wait for; a netvm link's is made by its link unit,
  // and the host's firewall is loaded before any tap of a link or of a host-gateway VM exists.
  for (const bridge of [...new Set(vm.interfaces.flatMap((i) => (i.bridge && !i.link ? [i.bridge] : [])))].sort()) {
    add(u, "Unit", "BindsTo", netDeviceUnit(bridge));
    add(u, "Unit", "After", netDeviceUnit(bridge));
  }
  const needed = [...new Set(vm.interfaces.flatMap((i) => (i.link ? [i.link] : [])))].sort();
  if (netvm === HOST_NETVM) needed.unshift(FIREWALL_UNIT);
  if (vm.pciSysfsPaths.some((p) => isolatedSysfsPaths(model).includes(p))) needed.unshift(VFIO_BIND_UNIT);
  for (const n of needed) {
    add(u, "Unit", "Requires", n);
    add(u, "Unit", "After", n);
  }
  const s = "Service";
  // A preparation or clean-up step: with `+`, it keeps root's privileges when the VMM itself runs without them.
  const step = (argv: string[], prefix = "") => exec(argv, prefix + (vm.vmmUser !== null ? "+" : ""));
  if (plan.kind === "api") {
    // Ready once booted (the launcher's systemd-notify), so what is ordered after it finds the
    // VMM's sockets: the console relay, the command proxy.
    add(u, s, "Type", "notify");
    add(u, s, "NotifyAccess", "all");
    add(u, s, "TimeoutStartSec", model.config.startTimeout + 15);
  } else add(u, s, "Type", "simple");
  add(u, s, "UMask", "0077");
  if (vm.config.rootOverlay.type === "raw") {
    // The overlay disk's directory, root's alone; systemd makes it writable inside the unit's
    // read-only file system, where a VMM confined to it sees no other VM's disks.
    add(u, s, "StateDirectory", `vmsilo/${vm.name}`);
    add(u, s, "StateDirectoryMode", "0700");
    // A fresh, private overlay disk at every start (D4, fixes E.2.3), made by the VMM's own user
    // where there is one (the directory is then that user's): root never writes into it.
    add(u, s, "ExecStartPre", exec([t.rm, "-f", "--", vm.paths.ephemeralDisk]));
    add(u, s, "ExecStartPre", exec([t.truncate, "-s", vm.config.rootOverlay.size, "--", vm.paths.ephemeralDisk]));
  }
  // Disk images only root can swap, before any is created or opened (check-disks).
  const disks = checkedDisks(vm);
  if (disks.length) add(u, s, "ExecStartPre", step([t.checkDisks, vm.name, ...disks]));
  // Extra disks with `createSize`: made on first start, kept afterwards (qemu-vm.nix emptyDiskImages).
  for (const d of vm.createdDisks) add(u, s, "ExecStartPre", step([t.createDisk, d.format, d.path, d.size]));
  // What an unprivileged VMM opens that root owns: handed to its user, once the disks are checked and made.
  if (handedOver(vm)) add(u, s, "ExecStartPre", step([t.vmScript(vm, "hand-over")]));
  const ip = vm.interfaces.length ? required(t.ip, "programs.iproute2") : "";
  for (const i of vm.interfaces) {
    add(u, s, "ExecStartPre", step([ip, "link", "delete", "dev", i.tap], "-"));
    // Owned by the VMM's user, an unprivileged VMM may attach to the tap without CAP_NET_ADMIN.
    add(u, s, "ExecStartPre", step([ip, "tuntap", "add", "dev", i.tap, "mode", "tap", "vnet_hdr", ...(vm.vmmUser !== null ? ["user", vm.vmmUser] : [])]));
    if (i.bridge) add(u, s, "ExecStartPre", step([ip, "link", "set", "dev", i.tap, "master", i.bridge]));
    if (i.hostAddress) add(u, s, "ExecStartPre", step([ip, "address", "add", i.hostAddress, "dev", i.tap]));
    add(u, s, "ExecStartPre", step([ip, "link", "set", "dev", i.tap, "up"]));
  }
  // What the VM was started from, readable by vm-list (restart pending after a switch).
  add(u, s, "ExecStartPre", step([t.install, "-m", "0644", "--", t.installed(OUT.definition(vm.name)), vm.paths.definition]));
  add(u, s, "ExecStart", exec([t.vmScript(vm, "launch")]));
  add(u, s, "ExecStop", exec([t.vmScript(vm, "stop")]));
  // The VMM's own files, removed by its user where it has one (they are in that user's directories).
  add(u, s, "ExecStopPost", exec([t.rm, "-f", "--", ...driver.ownSockets(vm), ...(vm.config.rootOverlay.type === "raw" ? [vm.paths.ephemeralDisk] : [])]));
  // The recorded definition is root's, in the VM's own directory.
  add(u, s, "ExecStopPost", step([t.rm, "-f", "--", vm.paths.definition]));
  for (const i of vm.interfaces) add(u, s, "ExecStopPost", step([ip, "link", "delete", "dev", i.tap], "-"));
  // Whatever way the VMM ended, its USB devices are no longer in it.
  add(u, s, "ExecStopPost", usbCleanup(vm, t) ?? undefined);
  add(u, s, "KillMode", "mixed");
  add(u, s, "TimeoutStopSec", model.config.stopTimeout + 15);
  baseHardening(u);
  if (vm.vmmUser !== null) confineVmm(u, vm, vm.vmmUser);
  return u;
}

/**
 * The VMM and its stop script run as the VM's own system user, without a single capability (no
 * mknod, chown, raw network, other users' or other VMs' files), on a read-only system where only
 * its own sockets' directory, its disks and writable 9p shares can be written. /dev/kvm and the
 * vhost devices are the kvm group's.
 */
function confineVmm(u: UnitFile, vm: VmModel, user: string): void {
  const s = "Service";
  add(u, s, "User", user);
  add(u, s, "Group", user);
  add(u, s, "SupplementaryGroups", "kvm");
  // Its sockets' directory, made by systemd and owned by the user before the VMM starts, inside
  // the root-owned VM directory; systemd removes it when the VM stops.
  add(u, s, "RuntimeDirectory", settingWord(vm.paths.vmmDir.slice("/run/".length)));
  add(u, s, "RuntimeDirectoryMode", "0700");
  add(u, s, "CapabilityBoundingSet", "");
  confineProcess(u);
  add(u, s, "ProtectHome", "read-only");
  add(u, s, "RestrictNamespaces", true);
  // qemu's usb-host finds and watches host devices through libusb, whose udev monitor is a netlink socket.
  add(u, s, "RestrictAddressFamilies", `AF_UNIX AF_INET AF_INET6${vm.usb !== null ? " AF_NETLINK" : ""}`);
  const writable = [...vm.disks.filter((d) => !d.ro && d.path !== vm.paths.ephemeralDisk).map((d) => d.path), ...Object.values(vm.config.qemu.shares9p).filter((p) => !p.readonly).map((p) => p.path)];
  // `-`: a disk created at first start does not exist yet when the unit is loaded. (The overlay
  // disk is in the StateDirectory=: a file bound on its own could not be removed at stop.)
  for (const p of [...new Set(writable)].sort()) add(u, s, "ReadWritePaths", `-${settingWord(p)}`);
  // Without CAP_IPC_LOCK, passed-through PCI devices pin guest memory against this limit.
  if (vm.config.pciDevices.length) add(u, s, "LimitMEMLOCK", "infinity");
}

/** systemd's device unit for a network interface (systemd.device(5)); `-` escapes to \x2d. */
export function netDeviceUnit(ifname: string): string {
  return `sys-subsystem-net-devices-${ifname.replace(/-/g, "\\x2d")}.device`;
}
