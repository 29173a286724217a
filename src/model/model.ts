import { defaultShare, GPU_DEFAULTS, type Config, type DiskConfig, type ForwardPortConfig, type GpuConfig, type ShareConfig, type VmConfig } from "../config/schema.js";
import { closest, describe, pathKey, type Issue } from "../config/types.js";
import { durationMs, sizeBytes, HOST_IFNAME, KERNEL_CMDLINE_MAX_BYTES, KERNEL_CMDLINE_VMM_RESERVE, PCI_BDF, RESERVED_VM_NAMES } from "../config/grammar.js";
import { derivedId, derivedMac, derivedTapName, vmmUserName, ipKey, MAX_INTERFACES, netPciAddress, normalizeBdf, prefixToNetmask } from "./derive.js";
import { type VmPaths, unitNames, vmPaths } from "./paths.js";
import { CLIENT_IFNAME, linkHolds, linkInterfaces, netvmLinks, NETVM_IFNAME_PREFIX, type NetvmLink } from "./netvm.js";
import { driverFor } from "../hypervisors/index.js";
import { VM_EXEC } from "../render/vm-exec.js";
import { CSS_COLORS, resolveColor } from "./css-colors.js";
import { type DisposableModel, expandDisposables, patternIssue, type SlotInfo } from "./disposable.js";


/** The resolved model: everything the renderers need, computed once from a valid config. */
export interface InterfaceModel {
  readonly name: string;
  readonly mac: string;
  readonly tap: string;
  readonly bridge: string | null;
  /** The unit creating `bridge` when it is a netvm link's (else the host declares the bridge). */
  readonly link: string | null;
  /** The host's address on the tap. */
  readonly hostAddress: string | null;
  readonly pciAddress: string;
}

/** A qemu user-mode (SLiRP) interface: no host side to set up, only forwards (docs/qemu.md). */
export interface UserInterfaceModel {
  readonly name: string;
  readonly mac: string;
  readonly restrictNetwork: boolean;
  readonly forwardPorts: readonly ForwardPortConfig[];
}

/** An image the VM service creates at start when it is missing (`additionalDisks[].createSize`). */
export interface CreatedDiskModel {
  readonly path: string;
  readonly format: DiskConfig["format"];
  readonly size: string;
}

export interface ShareModel extends ShareConfig {
  readonly tag: string;
  /** True for the implicit `home` share of `sharedHome`. */
  readonly isSharedHome: boolean;
  /** Where the guest mounts it: `mountPoint`, /mnt/<tag> by default, /home/user for the shared home. */
  readonly mountPoint: string;
}

/** A share the guest mounts: one `systemd.mount-extra=<tag>:<where>:<type>:<options>` (guest protocol). */
interface GuestMount {
  readonly tag: string;
  readonly where: string;
  readonly type: "virtiofs" | "9p";
  readonly options: readonly string[];
}

/** The shared home's mount point in the guest (the guest user's home). */
const SHARED_HOME_MOUNT_POINT = "/home/user";
/** The guest user's ids (nixos-module/guest/home.nix: uid 1000, primary group `users`). */
export const GUEST_USER_IDS = { uid: 1000, gid: 100 } as const;
/** The guest system's own mounts, which no share may cover or be mounted into. */
const RESERVED_MOUNT_ROOTS = ["/nix", "/proc", "/sys", "/dev", "/run"] as const;

export interface VmModel {
  readonly name: string;
  readonly config: VmConfig;
  readonly id: number;
  readonly paths: VmPaths;
  readonly units: ReturnType<typeof unitNames>;
  /** Tap interfaces, sorted by name. */
  readonly interfaces: readonly InterfaceModel[];
  /** User-mode interfaces (qemu), sorted by name. */
  readonly userInterfaces: readonly UserInterfaceModel[];
  /** Additional disks created at start when missing. */
  readonly createdDisks: readonly CreatedDiskModel[];
  /** Effective shares, sorted by tag, including `home`. */
  readonly shares: readonly ShareModel[];
  readonly sharedHomePath: string | null;
  readonly gpu: GpuConfig | null;
  /** `color` as `#rrggbb` (a CSS name resolved). */
  readonly color: string;
  /** vhost-device-sound `--streams` value, or null without sound. */
  readonly soundStreams: string | null;
  /** Disks in crosvm order: root, additional, ephemeral overlay. */
  readonly disks: readonly DiskConfig[];
  readonly kernelParams: readonly string[];
  /** PCI devices as sysfs paths, in config order. */
  readonly pciSysfsPaths: readonly string[];
  /** The system user (and group) the VMM runs as, or null when it runs as root (crosvm and
   * cloud-hypervisor, which jail themselves). */
  readonly vmmUser: string | null;
  /** Set when the VM is a slot of a disposable VM (disposable.ts). */
  readonly slot: SlotInfo | null;
  /** The balloon's floor in MiB (the least memory vmsilo-balloond leaves the guest), or null without a balloon. */
  readonly balloonFloor: number | null;
  /** USB passthrough: the socket the broker attaches devices through, or null (no USB controller). */
  readonly usb: { readonly socket: string } | null;
  /** `usbDevices` with the ids in lower case (as sysfs writes them). */
  readonly usbDevices: readonly UsbDeviceModel[];
}

export interface UsbDeviceModel {
  readonly vid: string;
  readonly pid: string;
  readonly serial: string | null;
}

export interface Model {
  readonly config: Config;
  /** VMs sorted by name. */
  readonly vms: readonly VmModel[];
  /** Netvm links, sorted by client. */
  readonly links: readonly NetvmLink[];
  /** Disposable VMs (patterns), sorted by name; their slots are in `vms`. */
  readonly disposables: readonly DisposableModel[];
}

/** Keys of crosvm's key=value structs that `options` may set (contract-tested against upstream). */
export const KV_OPTION_KEYS = {
  block: ["sparse", "direct", "lock", "block-size", "multiple-workers", "async-executor", "packed-queue", "bootindex", "pci-address", "dontcache"],
  vfio: ["iommu", "guest-address", "dt-symbol"],
  vhostUser: ["max-queue-size", "pci-address"],
} as const;

/** What each key's value must be: crosvm's serde type for it (devices/src/virtio/block/mod.rs DiskOption,
 * src/crosvm/sys/linux/config.rs VfioOption, VhostUserFrontendOption), or the names of an enum. A value
 * of the wrong type would make crosvm refuse the whole command line at start. */
type KvType = "bool" | "u16" | "u32" | "usize" | "pci-address" | "string" | readonly string[];
export const KV_OPTION_TYPES: { readonly [W in keyof typeof KV_OPTION_KEYS]: Readonly<Record<(typeof KV_OPTION_KEYS)[W][number], KvType>> } = {
  block: {
    sparse: "bool",
    direct: "bool",
    lock: "bool",
    "block-size": "u32",
    "multiple-workers": "bool",
    "async-executor": ["epoll", "uring"],
    "packed-queue": "bool",
    bootindex: "usize",
    "pci-address": "pci-address",
    dontcache: "bool",
  },
  vfio: { iommu: ["off", "viommu", "coiommu", "pkvm-iommu"], "guest-address": "pci-address", "dt-symbol": "string" },
  vhostUser: { "max-queue-size": "u16", "pci-address": "pci-address" },
};

/** crosvm's `--vhost-user` device types (devices/src/virtio/mod.rs DeviceType, kebab-case). */
export const VHOST_USER_TYPES = [
  "net", "block", "console", "rng", "balloon", "scsi", "9p", "gpu", "input", "vsock", "iommu", "sound", "fs", "pmem",
  "mac80211-hwsim", "video-encoder", "video-decoder", "scmi", "wl", "tpm", "pvclock", "media",
] as const;

export const DEFAULT_BLOCK_OPTIONS = { "packed-queue": true, direct: true } as const;
export const EPHEMERAL_DISK_ID = "ephemeral";

export function buildModel(given: Config): { model?: Model; issues: Issue[] } {
  const issues: Issue[] = [];
  // Disposable VMs' slots are ordinary VMs from here on (disposable.ts).
  const { config, slots, disposables } = expandDisposables(given, issues);
  const names = Object.keys(config.nixosVms).sort();
  const links = netvmLinks(config, issues);
  const added = linkInterfaces(links);
  const linkUnits = new Map(links.flatMap((l) => (l.bridge === null ? [] : [[l.bridge, l.unit!] as const])));
  // A client of a network VM without nameservers of its own asks its network VM (which forwards DNS).
  const dns = new Map(links.flatMap((l) => (l.bridge === null ? [] : [[l.client, l.gatewayAddress] as const])));
  const vms = names.map((name) => ({ ...buildVm(name, withLinks(name, config.nixosVms[name]!, added.get(name), dns.get(name), issues), linkUnits, issues), slot: slots.get(name) ?? null }));
  checkAcrossVms(vms, links, issues);
  checkPrograms(config, vms, links, issues);
  checkVmExec(config, issues);
  checkBalloond(config, issues);
  const said = issues.map((i) => patternIssue(i, slots));
  return said.length ? { issues: said } : { model: { config, vms, links, disposables }, issues: said };
}

/** vmsilo-balloond's settings that depend on one another. */
function checkBalloond(config: Config, issues: Issue[]): void {
  const b = config.balloond;
  if (durationMs(b.minPollInterval) > durationMs(b.pollInterval)) {
    issues.push({ path: "balloond.minPollInterval", message: `must be at most balloond.pollInterval (${b.pollInterval}), got ${JSON.stringify(b.minPollInterval)}` });
  }
  if (sizeBytes(b.guestAvailableBias) < sizeBytes(b.criticalGuestAvailable)) {
    issues.push({ path: "balloond.guestAvailableBias", message: `must be at least balloond.criticalGuestAvailable (${b.criticalGuestAvailable}), got ${JSON.stringify(b.guestAvailableBias)}` });
  }
}

/** The VM's configuration with the interfaces its netvm links add (`upstream`, `vc-…`), whose names no
 * interface of the user's may take. */
function withLinks(name: string, vm: VmConfig, added: ReadonlyMap<string, VmConfig["network"]["interfaces"][string]> | undefined, netvmDns: string | undefined, issues: Issue[]): VmConfig {
  const at = `nixosVms.${name}.network`;
  for (const ifName of Object.keys(vm.network.interfaces)) {
    if (ifName.startsWith(NETVM_IFNAME_PREFIX)) {
      issues.push({ path: `${at}.interfaces.${pathKey(ifName)}`, message: `names an interface with the prefix "${NETVM_IFNAME_PREFIX}", which is for the interfaces a network VM gets towards its clients (network.netvm); rename it` });
    } else if (ifName === CLIENT_IFNAME && vm.network.netvm !== null) {
      issues.push({ path: `${at}.interfaces.${ifName}`, message: `is the interface network.netvm (${JSON.stringify(vm.network.netvm)}) gives this VM; rename it` });
    }
  }
  if (added === undefined) return vm;
  const interfaces = { ...vm.network.interfaces };
  for (const [ifName, c] of added) interfaces[ifName] = c;
  const nameservers = vm.network.nameservers.length || netvmDns === undefined ? vm.network.nameservers : [netvmDns];
  return { ...vm, network: { ...vm.network, interfaces, nameservers } };
}

function buildVm(name: string, vm: VmConfig, linkUnits: ReadonlyMap<string, string>, issues: Issue[]): Omit<VmModel, "slot"> {
  const at = `nixosVms.${name}`;
  if ((RESERVED_VM_NAMES as readonly string[]).includes(name)) {
    issues.push({ path: at, message: `VM name ${JSON.stringify(name)} is reserved (reserved: ${RESERVED_VM_NAMES.join(", ")})` });
  }
  const paths = vmPaths(name);

  // Every interface, sorted by name: the guest names each by its MAC (kernel parameters).
  const allInterfaces = Object.keys(vm.network.interfaces)
    .sort()
    .map((ifName) => {
      const i = vm.network.interfaces[ifName]!;
      const mac = i.macAddress ?? derivedMac(name, ifName);
      if (parseInt(mac.slice(0, 2), 16) & 1) {
        issues.push({ path: `${at}.network.interfaces.${ifName}.macAddress`, message: `must be a unicast MAC (first octet even), got ${JSON.stringify(mac)}` });
      }
      checkInterfaceKind(`${at}.network.interfaces.${pathKey(ifName)}`, i, issues);
      return { name: ifName, mac, config: i };
    });
  const interfaces = allInterfaces
    .filter((i) => i.config.type === "tap")
    .map(({ name: ifName, mac, config: i }, index) => ({
      name: ifName,
      mac,
      tap: i.tap.name ?? derivedTapName(name, ifName),
      bridge: i.tap.bridge,
      link: i.tap.bridge === null ? null : (linkUnits.get(i.tap.bridge) ?? null),
      hostAddress: i.tap.hostAddress,
      pciAddress: netPciAddress(index),
    }));
  if (interfaces.length > MAX_INTERFACES) {
    issues.push({ path: `${at}.network.interfaces`, message: `gives VM ${JSON.stringify(name)} ${interfaces.length} tap interfaces with those of its netvm links (network.netvm of its clients), more than the ${MAX_INTERFACES} it may have` });
  }
  const userInterfaces = allInterfaces
    .filter((i) => i.config.type === "user")
    .map(({ name: ifName, mac, config: i }) => ({ name: ifName, mac, restrictNetwork: i.restrictNetwork, forwardPorts: i.forwardPorts }));

  const sharedHomePath = vm.sharedHome === false ? null : vm.sharedHome === true ? paths.defaultSharedHome : vm.sharedHome;
  const shares: ShareModel[] = Object.keys(vm.sharedDirectories).map((tag) => {
    const s = vm.sharedDirectories[tag]!;
    return { ...s, tag, isSharedHome: false, mountPoint: s.mountPoint ?? `/mnt/${tag}` };
  });
  if (sharedHomePath !== null) {
    if (Object.hasOwn(vm.sharedDirectories, "home")) {
      issues.push({ path: `${at}.sharedDirectories.home`, message: "conflicts with sharedHome, which defines the share \"home\"; remove one of them" });
    }
    shares.push({ ...defaultShare(sharedHomePath), tag: "home", isSharedHome: true, mountPoint: SHARED_HOME_MOUNT_POINT });
  }
  shares.sort((a, b) => (a.tag < b.tag ? -1 : a.tag > b.tag ? 1 : 0));
  const mounts = guestMounts(at, vm, shares, issues);

  const disks: DiskConfig[] = [vm.rootDisk, ...vm.additionalDisks];
  if (vm.rootOverlay.type === "raw") disks.push({ path: paths.ephemeralDisk, ro: false, id: EPHEMERAL_DISK_ID, options: {}, format: "raw", createSize: null });
  checkDisks(at, vm, disks, issues);
  if (vm.rootDisk.createSize !== null) {
    issues.push({ path: `${at}.rootDisk.createSize`, message: `must be null: the root image is built by Nix, never created empty (createSize is for additionalDisks), got ${JSON.stringify(vm.rootDisk.createSize)}` });
  }
  const createdDisks = vm.additionalDisks.flatMap((d) => (d.createSize === null ? [] : [{ path: d.path, format: d.format, size: d.createSize }]));
  vm.additionalDisks.forEach((d, i) => {
    if (d.createSize !== null && d.ro) issues.push({ path: `${at}.additionalDisks[${i}].createSize`, message: "must be null for a read-only disk (ro = true): an empty image it cannot write is of no use" });
  });
  checkKvKeys(`${at}.pciDevices`, "--vfio", vm.pciDevices.map((d) => d.options), KV_OPTION_TYPES.vfio, issues);
  checkKvKeys(`${at}.vhostUser`, "--vhost-user", vm.vhostUser.map((d) => d.options), KV_OPTION_TYPES.vhostUser, issues);
  vm.vhostUser.forEach((d, i) => {
    if (!(VHOST_USER_TYPES as readonly string[]).includes(d.type)) {
      issues.push({ path: `${at}.vhostUser[${i}].type`, message: `must be a crosvm vhost-user device type (${VHOST_USER_TYPES.join(", ")}), got ${JSON.stringify(d.type)}` });
    }
  });

  const gpu = vm.gpu === false ? null : vm.gpu === true ? { ...GPU_DEFAULTS } : vm.gpu;
  const color = resolveColor(vm.color);
  if (color === null) {
    const near = closest(vm.color, Object.keys(CSS_COLORS));
    issues.push({ path: `${at}.color`, message: `must be a CSS colour name or #RRGGBB, got ${JSON.stringify(vm.color)}, which CSS does not name${near === null ? "" : `; did you mean "${near}"?`}` });
  }
  if (gpu && !gpu.wayland && !gpu.opengl && !gpu.vulkan) {
    issues.push({ path: `${at}.gpu`, message: "must enable at least one context type (wayland, opengl or vulkan), got none; or set gpu to false" });
  }
  const { playback, capture } = vm.sound;
  const soundStreams = playback && capture ? "input,output" : playback ? "output" : capture ? "input" : null;

  const pciSysfsPaths = vm.pciDevices.map((d) => (d.path.startsWith("/") ? d.path : `/sys/bus/pci/devices/${normalizeBdf(d.path)}`));
  pciSysfsPaths.forEach((p, i) => {
    const first = pciSysfsPaths.indexOf(p);
    if (first !== i) issues.push({ path: `${at}.pciDevices[${i}].path`, message: `is the device ${p} again, already passed by ${at}.pciDevices[${first}]` });
  });

  vm.dependsOn.forEach((d, i) => {
    if (d === name) issues.push({ path: `${at}.dependsOn[${i}]`, message: `must name another VM, got the VM itself ${JSON.stringify(d)}` });
  });

  if (vm.balloon.minMemory !== null && vm.balloon.minMemory > vm.memory) {
    issues.push({ path: `${at}.balloon.minMemory`, message: `must be at most memory (${vm.memory} MiB), got ${vm.balloon.minMemory}` });
  }

  const params = kernelParams(name, vm, allInterfaces, mounts);
  const cmdline = Buffer.byteLength(params.join(" "), "utf8");
  const cmdlineMax = KERNEL_CMDLINE_MAX_BYTES - KERNEL_CMDLINE_VMM_RESERVE;
  if (cmdline > cmdlineMax) {
    issues.push({
      path: `${at}.kernelParams`,
      message: `make the kernel command line of VM ${JSON.stringify(name)} ${cmdline} bytes long, more than the ${cmdlineMax} it may have (the kernel reads ${KERNEL_CMDLINE_MAX_BYTES}, ${KERNEL_CMDLINE_VMM_RESERVE} are left for the VMM's own); shorten kernelParams, init or the network settings`,
    });
  }

  return {
    name,
    config: vm,
    id: vm.id ?? derivedId(name),
    paths,
    units: unitNames(name),
    interfaces,
    userInterfaces,
    createdDisks,
    shares,
    sharedHomePath,
    gpu,
    color: color ?? vm.color,
    soundStreams,
    disks,
    kernelParams: params,
    pciSysfsPaths,
    vmmUser: driverFor(vm.hypervisor).unprivileged ? vmmUserName(name) : null,
    balloonFloor: vm.balloon.enable ? balloonFloor(vm) : null,
    usb: usbOf(vm, paths),
    usbDevices: vm.usbDevices.map((d) => ({ vid: d.vendorId.toLowerCase(), pid: d.productId.toLowerCase(), serial: d.serial })),
  };
}

/** The default floor: a quarter of the memory, at least 64 MiB, never more than the memory. */
export const balloonFloor = (vm: VmConfig): number => vm.balloon.minMemory ?? Math.min(vm.memory, Math.max(64, Math.floor(vm.memory / 4)));

function usbOf(vm: VmConfig, paths: VmPaths): VmModel["usb"] {
  const socket = driverFor(vm.hypervisor).usbSocket?.(vm, paths) ?? null;
  return socket === null ? null : { socket };
}

/**
 * What the guest mounts: every virtio-fs share (the shared home on /home/user), then, for qemu, every
 * 9p share, each by tag; their mount points checked, so the guest's systemd can mount them all.
 */
function guestMounts(at: string, vm: VmConfig, shares: readonly ShareModel[], issues: Issue[]): GuestMount[] {
  const mounts: Array<GuestMount & { readonly at: string; readonly set: boolean; readonly home: boolean }> = shares.map((s) => ({
    tag: s.tag,
    where: s.mountPoint,
    type: "virtiofs",
    options: s.readonly ? ["ro"] : [],
    at: s.isSharedHome ? `${at}.sharedHome` : `${at}.sharedDirectories.${s.tag}`,
    set: !s.isSharedHome && s.mountPoint !== `/mnt/${s.tag}`,
    home: s.isSharedHome,
  }));
  if (vm.hypervisor === "qemu") {
    for (const tag of Object.keys(vm.qemu.shares9p).sort()) {
      const s = vm.qemu.shares9p[tag]!;
      const where = s.mountPoint ?? `/mnt/${tag}`;
      mounts.push({ tag, where, type: "9p", options: ["trans=virtio", "version=9p2000.L", ...(s.readonly ? ["ro"] : [])], at: `${at}.qemu.shares9p.${tag}`, set: s.mountPoint !== null, home: false });
    }
  }
  const seen = new Map<string, string>();
  // The shared home first: a share on /home/user is the one to move.
  for (const m of [...mounts.filter((m) => m.home), ...mounts.filter((m) => !m.home)]) {
    const path = `${m.at}.mountPoint`;
    const got = `got ${JSON.stringify(m.where)}`;
    const root = RESERVED_MOUNT_ROOTS.find((r) => m.where === r || m.where.startsWith(`${r}/`));
    if (m.where === "/") {
      issues.push({ path, message: `must not be "/" (the guest's root file system), ${got}` });
    } else if (m.where.split("/").slice(1).some((c) => c === "" || c === "." || c === "..")) {
      issues.push({ path, message: `must be a normalised path (no empty, "." or ".." components, no trailing "/"), ${got}` });
    } else if (root !== undefined) {
      issues.push({ path, message: `must not be ${root} or under it (the guest system's own mounts: ${RESERVED_MOUNT_ROOTS.join(", ")}), ${got}` });
    }
    const other = seen.get(m.where);
    if (other !== undefined) issues.push({ path, message: `is ${JSON.stringify(m.where)} again, already the mount point of ${other}; every share needs its own` });
    else seen.set(m.where, m.set ? `${m.at}.mountPoint` : m.at);
  }
  return mounts;
}

/** The guest protocol's kernel command line (SPEC §2), in its fixed order; user params last. */
function kernelParams(name: string, vm: VmConfig, interfaces: ReadonlyArray<{ readonly name: string; readonly mac: string }>, mounts: readonly GuestMount[]): string[] {
  const p: string[] = [];
  if (vm.init !== null) p.push(`init=${vm.init}`);
  p.push(`vmsilo.hostname=${name}`);
  for (const i of interfaces) p.push(`vmsilo.ifname=${i.name},${i.mac}`);
  for (const i of interfaces) {
    const c = vm.network.interfaces[i.name]!;
    if (c.dhcp) {
      p.push(`ip=:::::${i.name}:dhcp`);
      continue;
    }
    for (const a of c.addresses) {
      const [ip, prefix] = a.split("/");
      p.push(`ip=${ip}:::${prefixToNetmask(Number(prefix))}::${i.name}:none`);
    }
    // systemd-network-generator: an IPv6 address in brackets, its prefix length in the netmask field.
    for (const a of c.v6Addresses) {
      const [ip, prefix] = a.split("/");
      p.push(`ip=[${ip}]:::${prefix}::${i.name}:none`);
    }
    for (const dest of Object.keys(c.routes)) p.push(`rd.route=${dest}:${c.routes[dest]!.via}:${i.name}`);
    for (const dest of Object.keys(c.v6Routes)) p.push(`rd.route=[${dest}]:[${c.v6Routes[dest]!.via}]:${i.name}`);
  }
  for (const ns of vm.network.nameservers) p.push(`nameserver=${ns}`);
  if (vm.autoShutdown.enable) p.push("autoShutdown.enable=1", `autoShutdown.after=${vm.autoShutdown.after}`);
  p.push(vm.rootOverlay.type === "raw" ? `vmsilo.rootOverlay=raw,${EPHEMERAL_DISK_ID}` : "vmsilo.rootOverlay=tmpfs");
  for (const m of mounts) p.push(`systemd.mount-extra=${m.tag}:${m.where}:${m.type}:${m.options.join(",")}`);
  p.push(...vm.kernelParams);
  return p;
}

/** Tap settings belong to taps, user-mode settings to user-mode interfaces. */
function checkInterfaceKind(at: string, i: VmConfig["network"]["interfaces"][string], issues: Issue[]): void {
  if (i.type === "tap") {
    if (i.tap.hostAddress !== null && i.tap.bridge !== null) {
      issues.push({ path: `${at}.tap.hostAddress`, message: `must be null for a tap on a bridge (tap.bridge = ${JSON.stringify(i.tap.bridge)}): the host's address belongs on the bridge, got ${JSON.stringify(i.tap.hostAddress)}` });
    }
    if (i.forwardPorts.length) issues.push({ path: `${at}.forwardPorts`, message: 'applies to user-mode interfaces only (type = "user"); a tap interface forwards nothing, got ' + `${i.forwardPorts.length} forward${i.forwardPorts.length === 1 ? "" : "s"}` });
    if (i.restrictNetwork) issues.push({ path: `${at}.restrictNetwork`, message: 'applies to user-mode interfaces only (type = "user"), got true' });
    return;
  }
  if (i.tap.name !== null) issues.push({ path: `${at}.tap.name`, message: `must be null for a user-mode interface (type = "user" has no host tap), got ${JSON.stringify(i.tap.name)}` });
  if (i.tap.bridge !== null) issues.push({ path: `${at}.tap.bridge`, message: `must be null for a user-mode interface (type = "user" has no host tap), got ${JSON.stringify(i.tap.bridge)}` });
  if (i.tap.hostAddress !== null) issues.push({ path: `${at}.tap.hostAddress`, message: `must be null for a user-mode interface (type = "user" has no host tap), got ${JSON.stringify(i.tap.hostAddress)}` });
  i.forwardPorts.forEach((f, n) => {
    const fat = `${at}.forwardPorts[${n}]`;
    if (f.from === "guest") {
      // qemu-vm.nix's assertions: guestfwd is TCP only, and the guest address is inside SLiRP's 10.0.2.0/24.
      if (f.proto !== "tcp") issues.push({ path: `${fat}.proto`, message: `must be "tcp" for a forward from the guest (qemu's guestfwd), got ${JSON.stringify(f.proto)}` });
      if (!/^10\.0\.2\.[0-9]+$/.test(f.guest.address)) issues.push({ path: `${fat}.guest.address`, message: `must be an address of the user-mode network 10.0.2.0/24 for a forward from the guest, got ${JSON.stringify(f.guest.address)}` });
      if (f.host.address === "") issues.push({ path: `${fat}.host.address`, message: 'must be set for a forward from the guest (the host address the guest\'s connections go to), got ""' });
    }
  });
}

function checkDisks(at: string, vm: VmConfig, disks: readonly DiskConfig[], issues: Issue[]): void {
  const where = (i: number) => (i === 0 ? `${at}.rootDisk` : `${at}.additionalDisks[${i - 1}]`);
  checkKvKeys(at, "--block", disks.map((d) => d.options), KV_OPTION_TYPES.block, issues, where);
  const seen = new Map<string, number>();
  disks.forEach((d, i) => {
    if (d.id === null) return;
    const first = seen.get(d.id);
    if (first === undefined) seen.set(d.id, i);
    else if (vm.rootOverlay.type === "raw" && i === disks.length - 1) {
      // The overlay disk is added by vmsilo; the user's disk is the one to rename.
      issues.push({ path: `${where(first)}.id`, message: `must differ from ${JSON.stringify(EPHEMERAL_DISK_ID)}, the id of the raw root overlay disk (rootOverlay.type = "raw"), got ${JSON.stringify(d.id)}` });
    } else issues.push({ path: `${where(i)}.id`, message: `must be unique, got ${JSON.stringify(d.id)}, already the id of ${where(first)}` });
  });
}

/** Each option key must be one crosvm's struct has, and its value of that key's type. */
function checkKvKeys(
  at: string,
  flag: string,
  options: ReadonlyArray<Record<string, unknown>>,
  types: Readonly<Record<string, KvType>>,
  issues: Issue[],
  where: (i: number) => string = (i) => `${at}[${i}]`,
): void {
  const known = Object.keys(types);
  options.forEach((o, i) => {
    for (const k of Object.keys(o)) {
      const path = `${where(i)}.options.${k}`;
      if (!Object.hasOwn(types, k)) {
        const near = closest(k, known);
        issues.push({ path, message: `unknown crosvm ${flag} key${near === null ? "" : `; did you mean \`${near}\`?`} (known: ${known.join(", ")})` });
      } else {
        const expected = kvTypeMismatch(types[k]!, o[k]);
        if (expected) issues.push({ path, message: `must be ${expected}, got ${describe(o[k])}` });
      }
    }
  });
}

/** What `value` should have been when it is not of `type`, else null. */
function kvTypeMismatch(type: KvType, value: unknown): string | null {
  const intIn = (max: number) => (typeof value === "number" && Number.isSafeInteger(value) && value >= 0 && value <= max ? null : `an integer from 0 to ${max}`);
  if (typeof type !== "string") return typeof value === "string" && type.includes(value) ? null : `one of ${type.map((t) => JSON.stringify(t)).join(", ")}`;
  switch (type) {
    case "bool":
      return typeof value === "boolean" ? null : "true or false";
    case "u16":
      return intIn(0xffff);
    case "u32":
      return intIn(0xffffffff);
    case "usize":
      return intIn(Number.MAX_SAFE_INTEGER) && "a non-negative integer";
    case "pci-address":
      return typeof value === "string" && PCI_BDF.test(value) ? null : 'a PCI address like "00:05.0" or "0000:00:05.0"';
    case "string":
      return typeof value === "string" ? null : "a string";
  }
}

function checkAcrossVms(vms: readonly VmModel[], links: readonly NetvmLink[], issues: Issue[]): void {
  const names = new Set(vms.map((v) => v.name));
  for (const v of vms) {
    v.config.dependsOn.forEach((d, i) => {
      if (!names.has(d)) issues.push({ path: `nixosVms.${v.name}.dependsOn[${i}]`, message: `must name a configured VM (${[...names].join(", ")}), got ${JSON.stringify(d)}` });
    });
  }
  const cycle = findCycle(vms);
  if (cycle) {
    const first = vms.find((v) => v.name === cycle[0])!;
    const viaNetvm = !first.config.dependsOn.includes(cycle[1]!);
    issues.push({ path: `nixosVms.${cycle[0]}.${viaNetvm ? "network.netvm" : "dependsOn"}`, message: `forms a cycle: ${cycle.join(" -> ")}` });
  }

  const byId = new Map<number, VmModel>();
  for (const v of vms) {
    const other = byId.get(v.id);
    if (other) {
      const how = (x: VmModel) => `VM ${JSON.stringify(x.name)} (${x.config.id === null ? "derived from its name" : "set explicitly"})`;
      issues.push({
        path: `nixosVms.${v.name}.id`,
        message: `id ${v.id} is used by both ${how(other)} and ${how(v)}; set a different nixosVms.<vm>.id on one of them`,
      });
    } else byId.set(v.id, v);
  }

  // The interfaces a netvm link adds are the client's network.netvm (or netvmSubnet) option.
  const added = new Map<string, string>();
  for (const l of links) {
    const at = `nixosVms.${l.client}.network.${l.explicit ? "netvmSubnet" : "netvm"}`;
    added.set(`${l.client}\0${CLIENT_IFNAME}`, at);
    if (l.netvmIfname !== null) added.set(`${l.netvm}\0${l.netvmIfname}`, at);
  }
  const optionAt = (v: VmModel, ifName: string, field: string) => added.get(`${v.name}\0${ifName}`) ?? `${ifPath(v, ifName)}.${field}`;
  const ownerAt = (v: VmModel, ifName: string) => added.get(`${v.name}\0${ifName}`) ?? ifPath(v, ifName);

  // A netvm link's bridge joins its two VMs only: no other link's, no bridge of the host's.
  const linkBridges = new Map<string, string>();
  for (const l of links) {
    if (l.bridge === null) continue;
    const at = added.get(`${l.client}\0${CLIENT_IFNAME}`)!;
    const owner = linkBridges.get(l.bridge);
    if (owner !== undefined) issues.push({ path: at, message: `bridge ${JSON.stringify(l.bridge)} (derived from the two names) is also the bridge of ${owner}; set network.netvm of one to another VM` });
    else linkBridges.set(l.bridge, `the link ${l.netvm} → ${l.client} (${at})`);
  }
  // Bridges first: a tap of any VM named like one would be deleted and re-created as a tap at start.
  const bridges = new Map(linkBridges);
  for (const v of vms) {
    for (const i of v.interfaces) {
      if (i.bridge === null || added.has(`${v.name}\0${i.name}`)) continue;
      const at = `${ifPath(v, i.name)}.tap.bridge`;
      const link = linkBridges.get(i.bridge);
      if (link !== undefined) issues.push({ path: at, message: `bridge ${JSON.stringify(i.bridge)} is the bridge vmsilo creates for ${link}; choose another bridge` });
      else if (!bridges.has(i.bridge)) bridges.set(i.bridge, at);
    }
  }
  const taps = new Map<string, string>();
  const macs = new Map<string, string>();
  for (const v of vms) {
    for (const i of v.interfaces) {
      const at = optionAt(v, i.name, "tap.name");
      const how = v.config.network.interfaces[i.name]!.tap.name === null ? " (derived from the VM and interface names)" : "";
      const tapOwner = taps.get(i.tap);
      const bridge = bridges.get(i.tap);
      if (HOST_IFNAME.test(i.tap)) {
        issues.push({ path: at, message: `tap ${JSON.stringify(i.tap)}${how} is named like a host interface (loopback, a network card, a VPN, container or libvirt interface), which its start would delete; set another tap.name` });
      } else if (bridge !== undefined) {
        issues.push({ path: at, message: `tap ${JSON.stringify(i.tap)}${how} is the bridge of ${bridge}, which its start would delete; set another tap.name` });
      } else if (tapOwner) issues.push({ path: at, message: `tap ${JSON.stringify(i.tap)}${how} is also the tap of ${tapOwner}; set a different tap.name on one of them` });
      else taps.set(i.tap, ownerAt(v, i.name));
      const macOwner = macs.get(i.mac);
      if (macOwner) issues.push({ path: optionAt(v, i.name, "macAddress"), message: `MAC ${i.mac} is also the MAC of ${macOwner}; every interface needs its own` });
      else macs.set(i.mac, ownerAt(v, i.name));
    }
  }

  // One static address, one interface: the same address twice would answer for both at random. The
  // host's tap addresses count too, and no address of the user's may fall in a netvm link.
  const addresses = new Map<string, string>();
  for (const v of vms) {
    for (const ifName of Object.keys(v.config.network.interfaces).sort()) {
      if (added.has(`${v.name}\0${ifName}`)) continue;
      const c = v.config.network.interfaces[ifName]!;
      const given = [
        ...(c.dhcp ? [] : c.addresses.map((a, n) => [a, `addresses[${n}]`] as const)),
        ...(c.dhcp ? [] : c.v6Addresses.map((a, n) => [a, `v6Addresses[${n}]`] as const)),
        ...(c.tap.hostAddress === null ? [] : [[c.tap.hostAddress, "tap.hostAddress"] as const]),
      ];
      for (const [a, field] of given) {
        const at = `${ifPath(v, ifName)}.${field}`;
        const ip = a.split("/")[0]!;
        const link = ip.includes(":") ? undefined : links.find((l) => linkHolds(l, ip));
        const key = ipKey(ip);
        const owner = addresses.get(key);
        if (link) issues.push({ path: at, message: `address ${ip} is in ${link.clientAddress}/31, the link ${link.netvm} → ${link.client} (${link.explicit ? `nixosVms.${link.client}.network.netvmSubnet` : "derived from netvmRange"}); choose an address outside every netvm link` });
        else if (owner) issues.push({ path: at, message: `address ${ip} is also given by ${owner}; every address belongs to one interface` });
        else addresses.set(key, at);
      }
    }
  }

  // A PCI device can be passed to one VM only.
  const devices = new Map<string, string>();
  for (const v of vms) {
    v.pciSysfsPaths.forEach((p, i) => {
      const at = `nixosVms.${v.name}.pciDevices[${i}]`;
      const owner = devices.get(p);
      if (owner === undefined) devices.set(p, at);
      else if (!owner.startsWith(`nixosVms.${v.name}.`)) issues.push({ path: `${at}.path`, message: `is the device ${p}, already passed to ${owner}; a device can be given to one VM only` });
    });
  }
}

const ifPath = (v: VmModel, ifName: string) => `nixosVms.${v.name}.network.interfaces.${pathKey(ifName)}`;

/** The VMs a VM needs running: its `dependsOn` and its network VM (not the host). Cycles are
 * refused; vm-stop --wait stops a VM's dependents before it. */
export const vmDependencies = (vm: VmConfig): readonly string[] => [...new Set([...vm.dependsOn, ...(vm.network.netvm === null || vm.network.netvm === "host" ? [] : [vm.network.netvm])])];

/**
 * Each VM's place in the stop order: 0 when no VM depends on it, else one more than the highest
 * place of the VMs that depend on it, so stopping place by place never stops a VM before what needs it.
 */
export function stopWaves(vms: readonly VmModel[]): Map<string, number> {
  const dependents = new Map<string, string[]>(vms.map((v) => [v.name, []]));
  for (const v of vms) for (const d of vmDependencies(v.config)) dependents.get(d)?.push(v.name);
  const wave = new Map<string, number>();
  const place = (n: string): number => {
    const known = wave.get(n);
    if (known !== undefined) return known;
    const w = Math.max(-1, ...dependents.get(n)!.map(place)) + 1;
    wave.set(n, w);
    return w;
  };
  for (const v of vms) place(v.name);
  return wave;
}

function findCycle(vms: readonly VmModel[]): string[] | null {
  const deps = new Map(vms.map((v) => [v.name, vmDependencies(v.config).filter((d) => d !== v.name)]));
  const state = new Map<string, "active" | "done">();
  const stack: string[] = [];
  const visit = (n: string): string[] | null => {
    if (state.get(n) === "done") return null;
    if (state.get(n) === "active") return [...stack.slice(stack.indexOf(n)), n];
    state.set(n, "active");
    stack.push(n);
    for (const d of deps.get(n) ?? []) {
      const c = visit(d);
      if (c) return c;
    }
    stack.pop();
    state.set(n, "done");
    return null;
  };
  for (const v of vms) {
    const c = visit(v.name);
    if (c) return c;
  }
  return null;
}

/** vm-exec boots what vmExec names: both must be given when it is enabled. */
function checkVmExec(config: Config, issues: Issue[]): void {
  const x = config.vmExec;
  if (!x.enable) return;
  if (x.kernel === null) issues.push({ path: "vmExec.kernel", message: "is required when vmExec.enable is true, got null" });
  if (x.initramfs === null) issues.push({ path: "vmExec.initramfs", message: "is required when vmExec.enable is true, got null" });
  const fixed = Buffer.byteLength([...VM_EXEC.params, ...VM_EXEC.microvmParams, ...x.kernelParams].join(" "), "utf8") + VM_EXEC.runtimeParamsBytes;
  const max = KERNEL_CMDLINE_MAX_BYTES - KERNEL_CMDLINE_VMM_RESERVE;
  if (fixed > max) {
    issues.push({
      path: "vmExec.kernelParams",
      message: `make vm-exec's kernel command line ${fixed} bytes long (with ${VM_EXEC.runtimeParamsBytes} for what vm-exec adds at run time), more than the ${max} it may have; shorten vmExec.kernelParams`,
    });
  }
}

/** Each program is needed by some feature; a missing one names the feature that needs it. */
function checkPrograms(config: Config, vms: readonly VmModel[], links: readonly NetvmLink[], issues: Issue[]): void {
  const need = (program: keyof Config["programs"], why: string, vm: VmModel | undefined) => {
    if (vm && config.programs[program] === null) issues.push({ path: `programs.${program}`, message: `is required by ${why} of VM ${JSON.stringify(vm.name)}, got null` });
  };
  need("crosvm", "hypervisor \"crosvm\"", vms.find((v) => v.config.hypervisor === "crosvm"));
  // The GPU backend is crosvm's vhost-user GPU device, whatever the VMM.
  if (!vms.some((v) => v.config.hypervisor === "crosvm")) need("crosvm", "the GPU backend (crosvm device gpu)", vms.find((v) => v.gpu !== null));
  need("cloudHypervisor", "hypervisor \"cloud-hypervisor\"", vms.find((v) => v.config.hypervisor === "cloud-hypervisor"));
  need("qemu", "hypervisor \"qemu\"", vms.find((v) => v.config.hypervisor === "qemu"));
  need("qemu", "a qcow2 disk created at start (additionalDisks[].createSize)", vms.find((v) => v.createdDisks.some((d) => d.format === "qcow2")));
  if (config.vmExec.enable && config.programs.qemu === null) issues.push({ path: "programs.qemu", message: "is required by vmExec.enable, got null" });
  if (config.vmExec.enable && config.programs.virtiofsd === null) issues.push({ path: "programs.virtiofsd", message: "is required by vmExec.enable (the store is shared with virtiofs), got null" });
  need("virtiofsd", "the shares", vms.find((v) => v.shares.length > 0));
  need("iproute2", "the network interfaces", vms.find((v) => v.interfaces.length > 0));
  need("nftables", "the host firewall of network.netvm", links.length ? vms.find((v) => v.name === links[0]!.client) : undefined);
  need("vhostDeviceSound", "sound", vms.find((v) => v.soundStreams !== null));
  need("waylandSeccontext", "the GPU", vms.find((v) => v.gpu !== null));
  need("vulkanLoader", "the GPU", vms.find((v) => v.gpu !== null));
  need("vmsiloTray", "tray.enable", vms.find((v) => v.config.tray.enable));
}
