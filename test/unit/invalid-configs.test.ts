/**
 * Bad input is refused (DESIGN "Errors", SPEC D16): every row mutates a copy of an example, runs the real
 * CLI (`vmsilo-gen render`) and checks the exact stderr, exit status 2, empty stdout, and that nothing
 * was written — neither the --out tree nor a temporary sibling of it.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { example, runCli, tempDir } from "../support/harness.js";
import { derivedSlot, intToIp, ipToInt, linkBridge } from "../../src/model/netvm.js";

// The configurations are JSON; rows reach into them freely.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Json = any;

interface Row {
  readonly what: string;
  readonly base?: "minimal" | "desktop";
  /** Mutates the copy in place, or returns a replacement document. */
  readonly mutate?: (c: Json) => unknown;
  /** Written to the config file verbatim instead of a mutated example. */
  readonly raw?: string;
  /** Applied to the mutated example's JSON text (for what JSON.stringify cannot write: lone surrogates, 1e400). */
  readonly edit?: (text: string) => string;
  /** The issue lines (without the header and indentation), or the whole stderr given the config file. */
  readonly expected: readonly string[] | ((file: string) => string);
}

/** The option lists the "unknown option" messages print, spelled out so a change to them is seen. */
/** The desktop example with its VMs on host bridges instead of behind network VMs, for the cases
 * about interfaces of two VMs that collide. */
const BRIDGED: Record<string, unknown> = {"work": {"interfaces": {"eth0": {"tap": {"bridge": "br-work"}, "addresses": ["10.20.0.2/24"], "routes": {"0.0.0.0/0": {"via": "10.20.0.1"}}, "v6Addresses": ["fd00:20::2/64"], "v6Routes": {"::/0": {"via": "fd00:20::1"}}}}, "nameservers": ["10.20.0.1", "fd00:20::1"]}, "banking": {"interfaces": {"eth0": {"dhcp": true, "macAddress": "02:42:ac:11:00:02", "tap": {"bridge": "br-lan"}}}}, "dev": {"interfaces": {"eth0": {"tap": {"bridge": "br-work"}, "addresses": ["10.20.0.3/24"], "routes": {"0.0.0.0/0": {"via": "10.20.0.1"}}}}, "nameservers": ["10.20.0.1"]}};
const withBridged =
  (mutate: (c: Json) => void) =>
  (c: Json): void => {
    for (const [vm, network] of Object.entries(BRIDGED)) c.nixosVms[vm].network = structuredClone(network);
    mutate(c);
  };

const TOP_KEYS = "schemaVersion, user, programs, schedulerIsolation, startTimeout, stopTimeout, crosvm, cloudHypervisor, qemu, vmExec, gpu, balloond, tray, netvmRange, isolatedPciDevices, nixosVms";
const USER_KEYS = "name, uid, gid, group, home, runtimeDir";
const PROGRAM_KEYS = "bash, coreutils, systemd, vmsiloTools, socat, crosvm, cloudHypervisor, qemu, virtiofsd, openssh, wlClipboard, jq, iproute2, nftables, vhostDeviceSound, waylandSeccontext, vulkanLoader, vmsiloTray";
const VM_KEYS =
  "hypervisor, id, memory, cpus, autoStart, dependsOn, color, autoShutdown, disposable, balloon, kernel, initramfs, init, rootDisk, additionalDisks, rootOverlay, kernelParams, sharedDirectories, sharedHome, gpu, tray, sound, usbDevices, pciDevices, vhostUser, network, crosvm, cloudHypervisor, qemu";
const SHARE_KEYS =
  "path, mountPoint, threadPoolSize, inodeFileHandles, cache, logLevel, xattr, posixAcl, readonly, allowMmap, enableReaddirplus, writeback, allowDirectIo, killprivV2, preserveNoatime, uidMap, gidMap, translateUid, translateGid";
const IFACE_KEYS = "type, forwardPorts, restrictNetwork, macAddress, tap, dhcp, addresses, routes, v6Addresses, v6Routes";
const BLOCK_KEYS = "sparse, direct, lock, block-size, multiple-workers, async-executor, packed-queue, bootindex, pci-address, dontcache";

const VM_NAME_TEXT = "a VM name: a lower-case letter, then lower-case letters, digits or '-', not ending in '-', at most 32 characters";
const SHARE_TAG_TEXT = "a share tag: a letter or digit, then letters, digits, '_' or '-', at most 36 characters";
const IFNAME_TEXT = "an interface name: a letter, then letters, digits, '_' or '-', at most 15 characters";
const PATH_TEXT = 'a normalised absolute path (no "." or ".." components, no "//", no trailing "/", no space at a name\'s start or end, no control characters)';
const ABSOLUTE = 'an absolute path (starting with "/")';
const NO_CONTROL = "a path without control characters";
const KPARAM_TEXT = "one kernel parameter: no spaces, '\"' or control characters, not starting with '-'";
const MOUNT_TEXT = "an absolute path of letters, digits and . _ + @ - / (no spaces, ':' or '\\')";
const NORMALISED = 'a normalised path (no empty, "." or ".." components, no trailing "/")';
const RESERVED_MOUNTS = "the guest system's own mounts: /nix, /proc, /sys, /dev, /run";
const LOG_TEXT = 'a log level or filter like "info" or "info,devices=debug"';
const PCI_TEXT = 'a PCI address like "0000:01:00.0" or "01:00.0", or an absolute sysfs path';
const RESERVED = "session, usb, usb-attach, usb-detach, balloond, gen, host, target, wait-for-socket, qmp, check-disks, create-disk, vfio-bind";
const KV_VALUE = "must be a non-empty string, a non-negative integer or a boolean";
const NOT_DOTS = 'a normalised path (no "." or ".." components)';
const EDGE_SPACE = "a path whose names neither start nor end with a space";
const SURROGATE = "valid Unicode text (a lone UTF-16 surrogate would be written as U+FFFD)";
const HUGE = "a size below 1 EiB (1048576T), which no file system here holds";
const HOST_LIKE = "is named like a host interface (loopback, a network card, a VPN, container or libvirt interface), which its start would delete; set another tap.name";

const ROOTFS = "/nix/store/5h2q8h3b9b3f0w7ryf2l0fqb6c4q5zpx-vmsilo-rootfs-work";
const IPROUTE2 = "/nix/store/9p4r2z7x0q8t1k3a5bm4d6y8s0f2h3i5-iproute2-6.17.0";
const VIRTIOFSD = "/nix/store/7m2p0x5v8n6r9h1y3zk2b4w6q8d0f1g3-virtiofsd-1.13.2";
const QEMU = "/nix/store/7q3ma1k6lq7w0b4j5b5n7m5ax9w5q2yz-qemu-10.1.2";
const NFTABLES = "/nix/store/3s9q6w1x4y7z0a2b5c8d1e4f7g0h3i6j-nftables-1.1.5";

/** A second VM for minimal.json, valid on its own. */
function addVm(c: Json, name: string, extra: Json = {}): Json {
  c.nixosVms[name] = { kernel: `${ROOTFS}/bzImage`, initramfs: `${ROOTFS}/initrd`, init: null, rootDisk: { path: `${ROOTFS}/nixos.erofs` }, ...extra };
  return c.nixosVms[name];
}
/** minimal's VM `work` with one interface `eth0` (and iproute2 so the interface is allowed). */
function eth0(c: Json, settings: Json = {}): Json {
  c.programs.iproute2 = IPROUTE2;
  c.nixosVms.work.network = { interfaces: { eth0: settings } };
  return c.nixosVms.work.network.interfaces.eth0;
}
const work = (c: Json): Json => c.nixosVms.work;
/** minimal's `work` behind netvm `to` (a VM `net` added when it is not "host"), nftables set. */
function netvm(c: Json, to: string): Json {
  c.programs.iproute2 = IPROUTE2;
  c.programs.nftables = NFTABLES;
  if (!c.nixosVms.net) addVm(c, "net");
  work(c).network = { netvm: to };
  return work(c).network;
}
/** A derived link's client address, computed as the generator does (from the default pool). */
const derivedLink = (netvmName: string, client: string) => intToIp(ipToInt("10.200.0.0") + 2 * derivedSlot(netvmName, client, 32768));


const rows: Row[] = [
  // ── wrong types and out-of-range values ──────────────────────────────────────────────────────
  { what: "memory as a string", mutate: (c) => void (work(c).memory = "4G"), expected: ['nixosVms.work.memory: must be an integer from 64 to 16777216 (MiB), got "4G"'] },
  { what: "a colour name CSS does not have", mutate: (c) => void (work(c).color = "grean"), expected: ['nixosVms.work.color: must be a CSS colour name or #RRGGBB, got "grean", which CSS does not name; did you mean "green"?'] },
  { what: "a colour name nothing like CSS's", mutate: (c) => void (work(c).color = "qqqqqqqq"), expected: ['nixosVms.work.color: must be a CSS colour name or #RRGGBB, got "qqqqqqqq", which CSS does not name'] },
  { what: "memory below the minimum", mutate: (c) => void (work(c).memory = 32), expected: ["nixosVms.work.memory: must be an integer from 64 to 16777216 (MiB), got 32"] },
  { what: "cpus above the maximum", mutate: (c) => void (work(c).cpus = 513), expected: ["nixosVms.work.cpus: must be an integer from 1 to 512, got 513"] },
  { what: "cpus not an integer", mutate: (c) => void (work(c).cpus = 1.5), expected: ["nixosVms.work.cpus: must be an integer from 1 to 512, got 1.5"] },
  { what: "boolean as a string", mutate: (c) => void (work(c).autoStart = "yes"), expected: ['nixosVms.work.autoStart: must be true or false, got "yes"'] },
  { what: "uid 0 (root)", mutate: (c) => void (c.user.uid = 0), expected: ["user.uid: must be an integer from 1 to 4294967294, got 0"] },
  { what: "startTimeout 0", mutate: (c) => void (c.startTimeout = 0), expected: ["startTimeout: must be an integer from 1 to 3600, got 0"] },
  { what: "explicit id in the reserved CID range", mutate: (c) => void (work(c).id = 2), expected: ["nixosVms.work.id: must be an integer from 3 to 4294967294, got 2"] },
  { what: "autoShutdown.after of a week and a second", mutate: (c) => void (work(c).autoShutdown = { enable: true, after: 604801 }), expected: ["nixosVms.work.autoShutdown.after: must be an integer from 1 to 604800, got 604801"] },
  { what: "bad enum: schedulerIsolation", mutate: (c) => void (c.schedulerIsolation = "partial"), expected: ['schedulerIsolation: must be one of "full", "vm", "off", got "partial"'] },
  { what: "bad enum: hypervisor", mutate: (c) => void (work(c).hypervisor = "kvmtool"), expected: ['nixosVms.work.hypervisor: must be one of "crosvm", "cloud-hypervisor", "qemu", got "kvmtool"'] },
  { what: "bad enum: rootOverlay.type", mutate: (c) => void (work(c).rootOverlay = { type: "disk" }), expected: ['nixosVms.work.rootOverlay.type: must be one of "tmpfs", "raw", got "disk"'] },
  { what: "bad enum: interface type", mutate: (c) => void (eth0(c).type = "macvtap"), expected: ['nixosVms.work.network.interfaces.eth0.type: must be one of "tap", "user", got "macvtap"'] },
  { what: "user is a string", mutate: (c) => void (c.user = "alice"), expected: ['user: must be an object, got "alice"'] },
  { what: "nixosVms is a list", mutate: (c) => void (c.nixosVms = [work(c)]), expected: ['nixosVms: must be an attribute set (JSON object), got [{"kernel":"/nix/store/5h2q8h3b9b3f0w7ryf2l0fqb6c4q5zpx-v...'] },
  { what: "kernelParams is a string", mutate: (c) => void (work(c).kernelParams = "quiet"), expected: ['nixosVms.work.kernelParams: must be a list, got "quiet"'] },
  { what: "sound is a boolean", mutate: (c) => void (work(c).sound = true), expected: ["nixosVms.work.sound: must be an object, got true"] },
  { what: "a required path is null", mutate: (c) => void (work(c).kernel = null), expected: [`nixosVms.work.kernel: must be ${PATH_TEXT}, got null`] },
  { what: "user name upper-case", mutate: (c) => void (c.user.name = "Alice"), expected: ['user.name: must be a POSIX user or group name, got "Alice"'] },

  // ── VM names (D1) ─────────────────────────────────────────────────────────────────────────────
  { what: "VM name with an upper-case letter", mutate: (c) => void ((c.nixosVms.Work = work(c)), delete c.nixosVms.work), expected: [`nixosVms.Work: name "Work" is not ${VM_NAME_TEXT}`] },
  { what: "VM name ending in '-'", mutate: (c) => void ((c.nixosVms["work-"] = work(c)), delete c.nixosVms.work), expected: [`nixosVms.work-: name "work-" is not ${VM_NAME_TEXT}`] },
  { what: "VM name starting with a digit", mutate: (c) => void ((c.nixosVms["1work"] = work(c)), delete c.nixosVms.work), expected: [`nixosVms."1work": name "1work" is not ${VM_NAME_TEXT}`] },
  { what: "VM name of 33 characters", mutate: (c) => void (c.nixosVms["a".repeat(33)] = work(c)), expected: [`nixosVms.${"a".repeat(33)}: name "${"a".repeat(33)}" is not ${VM_NAME_TEXT}`] },
  { what: "VM name with a dot (path quoted)", mutate: (c) => void (c.nixosVms["my.vm"] = work(c)), expected: [`nixosVms."my.vm": name "my.vm" is not ${VM_NAME_TEXT}`] },
  { what: "reserved VM name session", mutate: (c) => void ((c.nixosVms.session = work(c)), delete c.nixosVms.work), expected: [`nixosVms.session: VM name "session" is reserved (reserved: ${RESERVED})`] },
  {
    what: "two reserved VM names, both reported",
    mutate: (c) => void ((c.nixosVms.usb = work(c)), (c.nixosVms.target = structuredClone(work(c)))),
    expected: [`nixosVms.target: VM name "target" is reserved (reserved: ${RESERVED})`, `nixosVms.usb: VM name "usb" is reserved (reserved: ${RESERVED})`],
  },

  // ── share tags, interface names ──────────────────────────────────────────────────────────────
  {
    what: "share tag with a dot",
    mutate: (c) => void ((c.programs.virtiofsd = VIRTIOFSD), (work(c).sharedDirectories = { "my.share": { path: "/srv/share" } })),
    expected: [`nixosVms.work.sharedDirectories."my.share": name "my.share" is not ${SHARE_TAG_TEXT}`],
  },
  {
    what: "share tag of 37 characters",
    mutate: (c) => void ((c.programs.virtiofsd = VIRTIOFSD), (work(c).sharedDirectories = { ["s".repeat(37)]: { path: "/srv/share" } })),
    expected: [`nixosVms.work.sharedDirectories.${"s".repeat(37)}: name "${"s".repeat(37)}" is not ${SHARE_TAG_TEXT}`],
  },
  {
    what: "share tag starting with '_'",
    mutate: (c) => void ((c.programs.virtiofsd = VIRTIOFSD), (work(c).sharedDirectories = { _data: { path: "/srv/share" } })),
    expected: [`nixosVms.work.sharedDirectories._data: name "_data" is not ${SHARE_TAG_TEXT}`],
  },
  {
    what: "interface name of 16 characters",
    mutate: (c) => void ((c.programs.iproute2 = IPROUTE2), (work(c).network = { interfaces: { ["e".repeat(16)]: {} } })),
    expected: [`nixosVms.work.network.interfaces.${"e".repeat(16)}: name "${"e".repeat(16)}" is not ${IFNAME_TEXT}`],
  },
  { what: "tap name of 16 characters", mutate: (c) => void (eth0(c).tap = { name: "t".repeat(16) }), expected: [`nixosVms.work.network.interfaces.eth0.tap.name: must be ${IFNAME_TEXT}, got "${"t".repeat(16)}"`] },
  { what: "bridge name with a dot", mutate: (c) => void (eth0(c).tap = { bridge: "br.lan" }), expected: [`nixosVms.work.network.interfaces.eth0.tap.bridge: must be ${IFNAME_TEXT}, got "br.lan"`] },

  // ── paths ─────────────────────────────────────────────────────────────────────────────────────
  { what: "kernel path not absolute", mutate: (c) => void (work(c).kernel = "bzImage"), expected: [`nixosVms.work.kernel: must be ${ABSOLUTE}, got "bzImage"`] },
  { what: "program path not absolute", mutate: (c) => void (c.programs.bash = "bash"), expected: [`programs.bash: must be ${ABSOLUTE}, got "bash"`] },
  { what: "program path with a '..' component", mutate: (c) => void (c.programs.socat = "/nix/store/../socat"), expected: [`programs.socat: must be ${NOT_DOTS}, got "/nix/store/../socat"`] },
  { what: "program path with a trailing '/'", mutate: (c) => void (c.programs.coreutils = "/nix/store/x-coreutils/"), expected: ['programs.coreutils: must be a path without a trailing "/", got "/nix/store/x-coreutils/"'] },
  {
    what: "share path with a newline",
    mutate: (c) => void ((c.programs.virtiofsd = VIRTIOFSD), (work(c).sharedDirectories = { data: { path: "/srv/a\nb" } })),
    expected: [`nixosVms.work.sharedDirectories.data.path: must be ${NO_CONTROL}, got "/srv/a\\nb"`],
  },
  { what: "home with a carriage return", mutate: (c) => void (c.user.home = "/home/alice\r"), expected: [`user.home: must be ${NO_CONTROL}, got "/home/alice\\r"`] },

  // ── guest mount points of shares ─────────────────────────────────────────────────────────────
  ...(
    [
      ["relative", "mnt/data", `must be ${MOUNT_TEXT}, got "mnt/data"`],
      ["with a colon (the systemd.mount-extra= field separator)", "/mnt/a:b", `must be ${MOUNT_TEXT}, got "/mnt/a:b"`],
      ["with a space", "/mnt/my data", `must be ${MOUNT_TEXT}, got "/mnt/my data"`],
      ["with a backslash", "/mnt/a\\x20b", `must be ${MOUNT_TEXT}, got "/mnt/a\\\\x20b"`],
      ["the root", "/", 'must not be "/" (the guest\'s root file system), got "/"'],
      ["with a trailing slash", "/mnt/data/", `must be ${NORMALISED}, got "/mnt/data/"`],
      ["with an empty component", "/mnt//data", `must be ${NORMALISED}, got "/mnt//data"`],
      ["with a '..' component", "/mnt/../etc", `must be ${NORMALISED}, got "/mnt/../etc"`],
      ["with a '.' component", "/mnt/./data", `must be ${NORMALISED}, got "/mnt/./data"`],
      ["/nix itself", "/nix", `must not be /nix or under it (${RESERVED_MOUNTS}), got "/nix"`],
      ["under /nix", "/nix/store/x", `must not be /nix or under it (${RESERVED_MOUNTS}), got "/nix/store/x"`],
      ["under /proc", "/proc/data", `must not be /proc or under it (${RESERVED_MOUNTS}), got "/proc/data"`],
      ["/sys", "/sys", `must not be /sys or under it (${RESERVED_MOUNTS}), got "/sys"`],
      ["under /dev", "/dev/shm/x", `must not be /dev or under it (${RESERVED_MOUNTS}), got "/dev/shm/x"`],
      ["under /run", "/run/user/1000", `must not be /run or under it (${RESERVED_MOUNTS}), got "/run/user/1000"`],
    ] as const
  ).map(([what, mountPoint, message]) => ({
    what: `share mount point ${what}`,
    mutate: (c: Json) => void ((c.programs.virtiofsd = VIRTIOFSD), (work(c).sharedDirectories = { data: { path: "/srv/data", mountPoint } })),
    expected: [`nixosVms.work.sharedDirectories.data.mountPoint: ${message}`],
  })),
  { what: "share mount point not under /run merely by prefix: /runtime is accepted, /mnt//x refused", mutate: (c) => void ((c.programs.virtiofsd = VIRTIOFSD), (work(c).sharedDirectories = { a: { path: "/srv/a", mountPoint: "/runtime" }, b: { path: "/srv/b", mountPoint: "/mnt//x" } })), expected: [`nixosVms.work.sharedDirectories.b.mountPoint: must be ${NORMALISED}, got "/mnt//x"`] },
  {
    what: "two shares on one mount point",
    mutate: (c) => void ((c.programs.virtiofsd = VIRTIOFSD), (work(c).sharedDirectories = { a: { path: "/srv/a", mountPoint: "/srv" }, b: { path: "/srv/b", mountPoint: "/srv" } })),
    expected: ['nixosVms.work.sharedDirectories.b.mountPoint: is "/srv" again, already the mount point of nixosVms.work.sharedDirectories.a.mountPoint; every share needs its own'],
  },
  {
    what: "a share's mount point set to another share's default /mnt/<tag>",
    mutate: (c) => void ((c.programs.virtiofsd = VIRTIOFSD), (work(c).sharedDirectories = { data: { path: "/srv/data" }, other: { path: "/srv/other", mountPoint: "/mnt/data" } })),
    expected: ['nixosVms.work.sharedDirectories.other.mountPoint: is "/mnt/data" again, already the mount point of nixosVms.work.sharedDirectories.data; every share needs its own'],
  },
  {
    what: "a share on the shared home's mount point",
    mutate: (c) => void ((c.programs.virtiofsd = VIRTIOFSD), (work(c).sharedHome = true), (work(c).sharedDirectories = { docs: { path: "/srv/docs", mountPoint: "/home/user" } })),
    expected: ['nixosVms.work.sharedDirectories.docs.mountPoint: is "/home/user" again, already the mount point of nixosVms.work.sharedHome; every share needs its own'],
  },
  {
    what: "a 9p share on a virtio-fs share's mount point",
    mutate: (c) => void ((c.programs.virtiofsd = VIRTIOFSD), (c.programs.qemu = QEMU), (work(c).hypervisor = "qemu"), (work(c).sharedDirectories = { data: { path: "/srv/data" } }), (work(c).qemu = { shares9p: { media: { path: "/srv/media", mountPoint: "/mnt/data" } } })),
    expected: ['nixosVms.work.qemu.shares9p.media.mountPoint: is "/mnt/data" again, already the mount point of nixosVms.work.sharedDirectories.data; every share needs its own'],
  },
  {
    what: "a 9p share's mount point under /proc",
    mutate: (c) => void ((c.programs.qemu = QEMU), (work(c).hypervisor = "qemu"), (work(c).qemu = { shares9p: { media: { path: "/srv/media", mountPoint: "/proc/media" } } })),
    expected: [`nixosVms.work.qemu.shares9p.media.mountPoint: must not be /proc or under it (${RESERVED_MOUNTS}), got "/proc/media"`],
  },
  {
    what: "a 9p share's mount point with a colon",
    mutate: (c) => void ((c.programs.qemu = QEMU), (work(c).hypervisor = "qemu"), (work(c).qemu = { shares9p: { media: { path: "/srv/media", mountPoint: "/mnt/a:b" } } })),
    expected: [`nixosVms.work.qemu.shares9p.media.mountPoint: must be ${MOUNT_TEXT}, got "/mnt/a:b"`],
  },

  // ── sizes, MACs, addresses, routes ───────────────────────────────────────────────────────────
  { what: "size with a unit suffix B", mutate: (c) => void (work(c).rootOverlay = { type: "raw", size: "10GB" }), expected: ['nixosVms.work.rootOverlay.size: must be a size like "10G" (digits, then an optional K, M, G or T), got "10GB"'] },
  { what: "size zero", mutate: (c) => void (work(c).rootOverlay = { type: "raw", size: "0" }), expected: ['nixosVms.work.rootOverlay.size: must be a size like "10G" (digits, then an optional K, M, G or T), got "0"'] },
  { what: "MAC in upper case", mutate: (c) => void (eth0(c).macAddress = "02:AB:00:00:00:01"), expected: ['nixosVms.work.network.interfaces.eth0.macAddress: must be a lower-case MAC address like "02:00:00:00:00:01", got "02:AB:00:00:00:01"'] },
  { what: "MAC with five octets", mutate: (c) => void (eth0(c).macAddress = "02:00:00:00:01"), expected: ['nixosVms.work.network.interfaces.eth0.macAddress: must be a lower-case MAC address like "02:00:00:00:00:01", got "02:00:00:00:01"'] },
  { what: "multicast MAC", mutate: (c) => void (eth0(c).macAddress = "03:00:00:00:00:01"), expected: ['nixosVms.work.network.interfaces.eth0.macAddress: must be a unicast MAC (first octet even), got "03:00:00:00:00:01"'] },
  { what: "IPv4 address without a prefix", mutate: (c) => void (eth0(c).addresses = ["10.0.0.2"]), expected: ['nixosVms.work.network.interfaces.eth0.addresses[0]: must be an IPv4 address with prefix length, like "10.0.0.2/24", got "10.0.0.2"'] },
  { what: "IPv4 octet above 255", mutate: (c) => void (eth0(c).addresses = ["10.0.0.1/24", "10.0.0.256/24"]), expected: ['nixosVms.work.network.interfaces.eth0.addresses[1]: must be an IPv4 address with prefix length, like "10.0.0.2/24", got "10.0.0.256/24"'] },
  { what: "IPv4 prefix 33", mutate: (c) => void (eth0(c).addresses = ["10.0.0.2/33"]), expected: ['nixosVms.work.network.interfaces.eth0.addresses[0]: must be an IPv4 address with prefix length, like "10.0.0.2/24", got "10.0.0.2/33"'] },
  { what: "the same IPv4 address twice", mutate: (c) => void (eth0(c).addresses = ["10.0.0.2/24", "10.0.0.2/24"]), expected: ['nixosVms.work.network.interfaces.eth0.addresses[1]: duplicates an earlier entry "10.0.0.2/24"'] },
  { what: "IPv6 address with ':::'", mutate: (c) => void (eth0(c).v6Addresses = ["fd00:::2/64"]), expected: ['nixosVms.work.network.interfaces.eth0.v6Addresses[0]: must be an IPv6 address with prefix length, like "fd00::2/64", got "fd00:::2/64"'] },
  { what: "IPv6 address with nine groups", mutate: (c) => void (eth0(c).v6Addresses = ["1:2:3:4:5:6:7:8:9/64"]), expected: ['nixosVms.work.network.interfaces.eth0.v6Addresses[0]: must be an IPv6 address with prefix length, like "fd00::2/64", got "1:2:3:4:5:6:7:8:9/64"'] },
  { what: "IPv6 prefix 129", mutate: (c) => void (eth0(c).v6Addresses = ["fd00::2/129"]), expected: ['nixosVms.work.network.interfaces.eth0.v6Addresses[0]: must be an IPv6 address with prefix length, like "fd00::2/64", got "fd00::2/129"'] },
  { what: "IPv4 address among the IPv6 ones", mutate: (c) => void (eth0(c).v6Addresses = ["10.0.0.2/24"]), expected: ['nixosVms.work.network.interfaces.eth0.v6Addresses[0]: must be an IPv6 address with prefix length, like "fd00::2/64", got "10.0.0.2/24"'] },
  { what: "IPv4 route destination with prefix 33 (path quoted)", mutate: (c) => void (eth0(c).routes = { "0.0.0.0/33": { via: "10.0.0.1" } }), expected: ['nixosVms.work.network.interfaces.eth0.routes."0.0.0.0/33": name "0.0.0.0/33" is not an IPv4 destination like "0.0.0.0/0"'] },
  { what: "IPv6 route destination in the IPv4 routes", mutate: (c) => void (eth0(c).routes = { "::/0": { via: "10.0.0.1" } }), expected: ['nixosVms.work.network.interfaces.eth0.routes."::/0": name "::/0" is not an IPv4 destination like "0.0.0.0/0"'] },
  { what: "IPv6 route destination with ':::'", mutate: (c) => void (eth0(c).v6Routes = { "fd00:::/64": { via: "fd00::1" } }), expected: ['nixosVms.work.network.interfaces.eth0.v6Routes."fd00:::/64": name "fd00:::/64" is not an IPv6 destination like "::/0"'] },
  { what: "route gateway not an address", mutate: (c) => void (eth0(c).routes = { "0.0.0.0/0": { via: "gateway" } }), expected: ['nixosVms.work.network.interfaces.eth0.routes."0.0.0.0/0".via: must be an IPv4 or IPv6 address, got "gateway"'] },
  { what: "nameserver given as a host name", mutate: (c) => void (work(c).network = { nameservers: ["dns.example"] }), expected: ['nixosVms.work.network.nameservers[0]: must be an IPv4 or IPv6 address, got "dns.example"'] },

  // ── kernel parameters, log levels, PCI, id maps, colours, vhost-user ──────────────────────────
  { what: "kernel parameter with a space", mutate: (c) => void (work(c).kernelParams = ["quiet splash"]), expected: [`nixosVms.work.kernelParams[0]: must be ${KPARAM_TEXT}, got "quiet splash"`] },
  { what: "kernel parameter starting with '-'", mutate: (c) => void (work(c).kernelParams = ["quiet", "-s"]), expected: [`nixosVms.work.kernelParams[1]: must be ${KPARAM_TEXT}, got "-s"`] },
  { what: "a program path with a quote", mutate: (c) => void (c.programs.socat = "/nix/store/x'y-socat"), expected: [`programs.socat: must be a store path (letters, digits and + . _ ? = - /), got "/nix/store/x'y-socat"`] },
  { what: "a program path with a space", mutate: (c) => void (c.programs.bash = "/nix/store/x y-bash"), expected: ['programs.bash: must be a store path (letters, digits and + . _ ? = - /), got "/nix/store/x y-bash"'] },
  { what: "init path with a space (one kernel word)", mutate: (c) => void (work(c).init = "/nix/store/x y/init"), expected: [`nixosVms.work.init: must be an absolute path without spaces, '"' or control characters, got "/nix/store/x y/init"`] },
  { what: "empty kernel parameter", mutate: (c) => void (work(c).kernelParams = [""]), expected: [`nixosVms.work.kernelParams[0]: must be ${KPARAM_TEXT}, got ""`] },
  { what: "global log level with a space", mutate: (c) => void (c.crosvm = { logLevel: "info debug" }), expected: [`crosvm.logLevel: must be ${LOG_TEXT}, got "info debug"`] },
  { what: "per-VM log level empty", mutate: (c) => void (work(c).crosvm = { logLevel: "" }), expected: [`nixosVms.work.crosvm.logLevel: must be ${LOG_TEXT}, got ""`] },
  { what: "virtiofsd log level not an enum value", base: "desktop", mutate: (c) => void (c.nixosVms.work.sharedDirectories.projects.logLevel = "verbose"), expected: ['nixosVms.work.sharedDirectories.projects.logLevel: must be one of "error", "warn", "info", "debug", "trace", "off", got "verbose"'] },
  { what: "PCI address with a one-digit bus", base: "desktop", mutate: (c) => void (c.nixosVms.net.pciDevices = [{ path: "3:00.0" }]), expected: [`nixosVms.net.pciDevices[0].path: must be ${PCI_TEXT}, got "3:00.0"`] },
  { what: "PCI function 8", base: "desktop", mutate: (c) => void (c.nixosVms.net.pciDevices = [{ path: "0000:03:00.8" }]), expected: [`nixosVms.net.pciDevices[0].path: must be ${PCI_TEXT}, got "0000:03:00.8"`] },
  { what: "PCI address in upper case", base: "desktop", mutate: (c) => void (c.nixosVms.net.pciDevices = [{ path: "0000:0A:00.0" }]), expected: [`nixosVms.net.pciDevices[0].path: must be ${PCI_TEXT}, got "0000:0A:00.0"`] },
  { what: "PCI sysfs path not absolute", base: "desktop", mutate: (c) => void (c.nixosVms.net.pciDevices = [{ path: "sys/bus/pci/devices/0000:03:00.0" }]), expected: [`nixosVms.net.pciDevices[0].path: must be ${PCI_TEXT}, got "sys/bus/pci/devices/0000:03:00.0"`] },
  {
    what: "uid map with spaces",
    base: "desktop",
    mutate: (c) => void (c.nixosVms.work.sharedDirectories.projects.uidMap = ":0 1000 1:"),
    expected: ['nixosVms.work.sharedDirectories.projects.uidMap: must be a virtiofsd id mapping like ":0:1000:1:" or "guest:1000:1001", got ":0 1000 1:"'],
  },
  { what: "colour with three hex digits", mutate: (c) => void (work(c).color = "#fff"), expected: ['nixosVms.work.color: must be a CSS colour name or #RRGGBB, got "#fff"'] },
  { what: "colour name capitalised", mutate: (c) => void (work(c).color = "Red"), expected: ['nixosVms.work.color: must be a CSS colour name or #RRGGBB, got "Red"'] },
  {
    what: "vhost-user device with a bad type and a relative socket",
    mutate: (c) => void (work(c).vhostUser = [{ type: "Net", socket: "net.sock" }]),
    expected: ['nixosVms.work.vhostUser[0].type: must be a crosvm vhost-user device type like "net", got "Net"', `nixosVms.work.vhostUser[0].socket: must be ${ABSOLUTE}, got "net.sock"`],
  },
  { what: "disk id with a space", mutate: (c) => void (work(c).additionalDisks = [{ path: "/var/lib/d.img", id: "my disk" }]), expected: ["nixosVms.work.additionalDisks[0].id: must be a disk id: 1–20 letters, digits, '_' or '-', got \"my disk\""] },

  // ── unknown keys at every level ──────────────────────────────────────────────────────────────
  { what: "unknown top-level key", mutate: (c) => void (c.version = 1), expected: [`version: unknown option (known: ${TOP_KEYS})`] },
  { what: "unknown user key", mutate: (c) => void (c.user.shell = "/bin/sh"), expected: [`user.shell: unknown option (known: ${USER_KEYS})`] },
  { what: "unknown program", mutate: (c) => void (c.programs.kvmtool = "/nix/store/x-kvmtool"), expected: [`programs.kvmtool: unknown option (known: ${PROGRAM_KEYS})`] },
  { what: "unknown VM key (typo)", mutate: (c) => void (work(c).memroy = 1), expected: [`nixosVms.work.memroy: unknown option; did you mean \`memory\`? (known: ${VM_KEYS})`] },
  { what: "unknown VM key with a space (path quoted)", mutate: (c) => void (work(c)["max memory"] = 1), expected: [`nixosVms.work."max memory": unknown option (known: ${VM_KEYS})`] },
  { what: "unknown share key", base: "desktop", mutate: (c) => void (c.nixosVms.work.sharedDirectories.projects.readOnly = true), expected: [`nixosVms.work.sharedDirectories.projects.readOnly: unknown option; did you mean \`readonly\`? (known: ${SHARE_KEYS})`] },
  { what: "unknown interface key", mutate: (c) => void (eth0(c).mtu = 9000), expected: [`nixosVms.work.network.interfaces.eth0.mtu: unknown option (known: ${IFACE_KEYS})`] },
  { what: "unknown tap key", mutate: (c) => void (eth0(c).tap = { mac: "02:00:00:00:00:01" }), expected: ["nixosVms.work.network.interfaces.eth0.tap.mac: unknown option (known: name, bridge, hostAddress)"] },
  { what: "unknown route key", mutate: (c) => void (eth0(c).routes = { "0.0.0.0/0": { via: "10.0.0.1", metric: 10 } }), expected: ['nixosVms.work.network.interfaces.eth0.routes."0.0.0.0/0".metric: unknown option (known: via)'] },
  { what: "unknown GPU key", base: "desktop", mutate: (c) => void (c.nixosVms.work.gpu = { virgl: true }), expected: ["nixosVms.work.gpu.virgl: unknown option (known: wayland, opengl, vulkan, allowWX, logLevel, seccompPolicy)"] },
  { what: "unknown network key", mutate: (c) => void (work(c).network = { dns: [] }), expected: ["nixosVms.work.network.dns: unknown option (known: interfaces, nameservers, netvm, hostServices, netvmSubnet)"] },
  { what: "unknown rootDisk key", mutate: (c) => void (work(c).rootDisk.readonly = true), expected: ["nixosVms.work.rootDisk.readonly: unknown option (known: path, ro, id, options, format, createSize)"] },
  { what: "unknown autoShutdown key", mutate: (c) => void (work(c).autoShutdown = { enable: true, delay: 5 }), expected: ["nixosVms.work.autoShutdown.delay: unknown option (known: enable, after)"] },

  // ── missing required fields, schema version ──────────────────────────────────────────────────
  { what: "user missing", mutate: (c) => void delete c.user, expected: ["user: is required but missing"] },
  { what: "uid missing", mutate: (c) => void delete c.user.uid, expected: ["user.uid: is required but missing"] },
  { what: "program bash missing", mutate: (c) => void delete c.programs.bash, expected: ["programs.bash: is required but missing"] },
  { what: "kernel and initramfs missing", mutate: (c) => void (delete work(c).kernel, delete work(c).initramfs), expected: ["nixosVms.work.kernel: is required but missing", "nixosVms.work.initramfs: is required but missing"] },
  { what: "rootDisk.path missing", mutate: (c) => void (work(c).rootDisk = { ro: true }), expected: ["nixosVms.work.rootDisk.path: is required but missing"] },
  { what: "schemaVersion missing", mutate: (c) => void delete c.schemaVersion, expected: ["schemaVersion: is required but missing"] },
  {
    what: "schemaVersion 2 (other issues not reported: another format)",
    mutate: (c) => void ((c.schemaVersion = 2), (c.bogus = true)),
    expected: ["schemaVersion: must be 1 (this vmsilo-gen reads schema version 1), got 2"],
  },
  { what: "schemaVersion as a string", mutate: (c) => void (c.schemaVersion = "1"), expected: ['schemaVersion: must be 1 (this vmsilo-gen reads schema version 1), got "1"'] },

  // ── dependencies ──────────────────────────────────────────────────────────────────────────────
  { what: "dependsOn naming a missing VM", base: "desktop", mutate: (c) => void (c.nixosVms.work.dependsOn = ["net", "nett"]), expected: ['nixosVms.work.dependsOn[1]: must name a configured VM (banking, dev, net, work), got "nett"'] },
  { what: "dependsOn naming an invalid VM name", mutate: (c) => void (work(c).dependsOn = ["Net"]), expected: [`nixosVms.work.dependsOn[0]: must be ${VM_NAME_TEXT}, got "Net"`] },
  { what: "dependsOn listing a VM twice", base: "desktop", mutate: (c) => void (c.nixosVms.work.dependsOn = ["net", "net"]), expected: ['nixosVms.work.dependsOn[1]: duplicates an earlier entry "net"'] },
  { what: "a VM depending on itself", mutate: (c) => void (work(c).dependsOn = ["work"]), expected: ['nixosVms.work.dependsOn[0]: must name another VM, got the VM itself "work"'] },
  { what: "a dependsOn cycle of two", base: "desktop", mutate: (c) => void (c.nixosVms.net.dependsOn = ["work"]), expected: ["nixosVms.net.dependsOn: forms a cycle: net -> work -> net"] },
  {
    what: "a dependsOn cycle of three",
    base: "desktop",
    mutate: (c) => void ((c.nixosVms.net.dependsOn = ["banking"]), (c.nixosVms.banking.dependsOn = ["work"])),
    expected: ["nixosVms.banking.dependsOn: forms a cycle: banking -> work -> net -> banking"],
  },

  // ── ids, taps, MACs across VMs (D2) ──────────────────────────────────────────────────────────
  {
    what: "explicit id collision between two VMs",
    mutate: (c) => void ((work(c).id = 1000), addVm(c, "other", { id: 1000 })),
    expected: ['nixosVms.work.id: id 1000 is used by both VM "other" (set explicitly) and VM "work" (set explicitly); set a different nixosVms.<vm>.id on one of them'],
  },
  {
    what: "explicit id equal to another VM's derived id",
    mutate: (c) => void addVm(c, "other", { id: 1458968006 }),
    expected: ['nixosVms.work.id: id 1458968006 is used by both VM "other" (set explicitly) and VM "work" (derived from its name); set a different nixosVms.<vm>.id on one of them'],
  },
  {
    what: "the same explicit tap name in two VMs",
    mutate: (c) => void ((eth0(c).tap = { name: "tap0" }), addVm(c, "other", { network: { interfaces: { eth0: { tap: { name: "tap0" } } } } })),
    expected: ['nixosVms.work.network.interfaces.eth0.tap.name: tap "tap0" is also the tap of nixosVms.other.network.interfaces.eth0; set a different tap.name on one of them'],
  },
  {
    what: "derived tap names colliding (a-b + c, a + b-c)",
    mutate: (c) => {
      c.programs.iproute2 = IPROUTE2;
      addVm(c, "a", { network: { interfaces: { "b-c": {} } } });
      addVm(c, "a-b", { network: { interfaces: { c: {} } } });
    },
    expected: ['nixosVms.a-b.network.interfaces.c.tap.name: tap "a-b-c" (derived from the VM and interface names) is also the tap of nixosVms.a.network.interfaces.b-c; set a different tap.name on one of them'],
  },
  {
    what: "two interfaces of one VM given the same tap",
    mutate: (c) => void ((c.programs.iproute2 = IPROUTE2), (work(c).network = { interfaces: { eth0: { tap: { name: "t0" } }, eth1: { tap: { name: "t0" } } } })),
    expected: ['nixosVms.work.network.interfaces.eth1.tap.name: tap "t0" is also the tap of nixosVms.work.network.interfaces.eth0; set a different tap.name on one of them'],
  },
  {
    what: "the same MAC in two VMs",
    base: "desktop",
    mutate: withBridged((c) => void (c.nixosVms.work.network.interfaces.eth0.macAddress = "02:42:ac:11:00:02")),
    expected: ["nixosVms.work.network.interfaces.eth0.macAddress: MAC 02:42:ac:11:00:02 is also the MAC of nixosVms.banking.network.interfaces.eth0; every interface needs its own"],
  },
  {
    what: "more than 16 interfaces",
    mutate: (c) => void ((c.programs.iproute2 = IPROUTE2), (work(c).network = { interfaces: Object.fromEntries(Array.from({ length: 17 }, (_, i) => [`eth${i}`, {}])) })),
    expected: ["nixosVms.work.network.interfaces: must have at most 16 entries, got 17"],
  },

  // ── shares, GPU, disks, crosvm options ───────────────────────────────────────────────────────
  {
    what: "share tag home together with sharedHome",
    base: "desktop",
    mutate: (c) => void (c.nixosVms.work.sharedDirectories.home = { path: "/home/alice" }),
    expected: ['nixosVms.work.sharedDirectories.home: conflicts with sharedHome, which defines the share "home"; remove one of them'],
  },
  { what: "sharedHome as a relative path", mutate: (c) => void (work(c).sharedHome = "shared/work"), expected: [`nixosVms.work.sharedHome: must be ${ABSOLUTE}, got "shared/work"`] },
  { what: "sharedHome as a number", mutate: (c) => void (work(c).sharedHome = 1), expected: [`nixosVms.work.sharedHome: must be true, false or ${PATH_TEXT}, got 1`] },
  { what: "gpu as a string", mutate: (c) => void (work(c).gpu = "yes"), expected: ['nixosVms.work.gpu: must be true, false or an object of GPU settings, got "yes"'] },
  { what: "gpu seccompPolicy not an enum value", base: "desktop", mutate: (c) => void (c.nixosVms.work.gpu = { seccompPolicy: "off" }), expected: ['nixosVms.work.gpu.seccompPolicy: must be one of "enforcing", "log", got "off"'] },
  {
    what: "gpu with no context type",
    base: "desktop",
    mutate: (c) => void (c.nixosVms.work.gpu = { wayland: false, opengl: false, vulkan: false }),
    expected: ["nixosVms.work.gpu: must enable at least one context type (wayland, opengl or vulkan), got none; or set gpu to false"],
  },
  {
    what: "disk id 'ephemeral' with the raw overlay",
    base: "desktop",
    mutate: (c) => void (c.nixosVms.work.additionalDisks[0].id = "ephemeral"),
    expected: ['nixosVms.work.additionalDisks[0].id: must differ from "ephemeral", the id of the raw root overlay disk (rootOverlay.type = "raw"), got "ephemeral"'],
  },
  {
    what: "two disks with the same id",
    base: "desktop",
    mutate: (c) => void c.nixosVms.work.additionalDisks.push({ path: "/var/lib/vmsilo/work-data2.img", id: "data" }),
    expected: ['nixosVms.work.additionalDisks[1].id: must be unique, got "data", already the id of nixosVms.work.additionalDisks[0]'],
  },
  { what: "unknown crosvm key in rootDisk options", mutate: (c) => void (work(c).rootDisk.options = { cache: "none" }), expected: [`nixosVms.work.rootDisk.options.cache: unknown crosvm --block key (known: ${BLOCK_KEYS})`] },
  {
    what: "unknown crosvm key in additionalDisks options",
    base: "desktop",
    mutate: (c) => void (c.nixosVms.work.additionalDisks[0].options = { "block-size": 4096, "io-uring": true }),
    expected: [`nixosVms.work.additionalDisks[0].options.io-uring: unknown crosvm --block key (known: ${BLOCK_KEYS})`],
  },
  { what: "crosvm option key in upper case", mutate: (c) => void (work(c).rootDisk.options = { Direct: true }), expected: ['nixosVms.work.rootDisk.options.Direct: name "Direct" is not a crosvm option key like "packed-queue"'] },
  { what: "crosvm option value negative", mutate: (c) => void (work(c).rootDisk.options = { "block-size": -1 }), expected: [`nixosVms.work.rootDisk.options.block-size: ${KV_VALUE}, got -1`] },
  { what: "crosvm option value empty", mutate: (c) => void (work(c).rootDisk.options = { lock: "" }), expected: [`nixosVms.work.rootDisk.options.lock: ${KV_VALUE}, got ""`] },
  {
    what: "unknown crosvm key in pciDevices options",
    base: "desktop",
    mutate: (c) => void (c.nixosVms.net.pciDevices[0].options = { iommu: "viommu", rombar: false }),
    expected: ["nixosVms.net.pciDevices[0].options.rombar: unknown crosvm --vfio key (known: iommu, guest-address, dt-symbol)"],
  },
  {
    what: "unknown crosvm key in vhostUser options",
    mutate: (c) => void (work(c).vhostUser = [{ type: "net", socket: "/run/net.sock", options: { "queue-size": 256 } }]),
    expected: ["nixosVms.work.vhostUser[0].options.queue-size: unknown crosvm --vhost-user key (known: max-queue-size, pci-address)"],
  },
  { what: "crosvm --block value of the wrong type: block-size as a string", mutate: (c) => void (work(c).rootDisk.options = { "block-size": "4096" }), expected: ['nixosVms.work.rootDisk.options.block-size: must be an integer from 0 to 4294967295, got "4096"'] },
  { what: "crosvm --block value of the wrong type: sparse as a string", base: "desktop", mutate: (c) => void (c.nixosVms.work.additionalDisks[0].options = { sparse: "false" }), expected: ['nixosVms.work.additionalDisks[0].options.sparse: must be true or false, got "false"'] },
  {
    what: "crosvm --block values of the wrong type: bootindex, async-executor, pci-address",
    mutate: (c) => void (work(c).rootDisk.options = { bootindex: true, "async-executor": "threads", "pci-address": 5 }),
    expected: [
      'nixosVms.work.rootDisk.options.async-executor: must be one of "epoll", "uring", got "threads"',
      "nixosVms.work.rootDisk.options.bootindex: must be a non-negative integer, got true",
      'nixosVms.work.rootDisk.options.pci-address: must be a PCI address like "00:05.0" or "0000:00:05.0", got 5',
    ],
  },
  { what: "crosvm --vfio iommu not a type crosvm knows", base: "desktop", mutate: (c) => void (c.nixosVms.net.pciDevices[0].options = { iommu: "on" }), expected: ['nixosVms.net.pciDevices[0].options.iommu: must be one of "off", "viommu", "coiommu", "pkvm-iommu", got "on"'] },
  {
    what: "crosvm --vhost-user max-queue-size above u16",
    mutate: (c) => void (work(c).vhostUser = [{ type: "net", socket: "/run/net.sock", options: { "max-queue-size": 65536 } }]),
    expected: ["nixosVms.work.vhostUser[0].options.max-queue-size: must be an integer from 0 to 65535, got 65536"],
  },
  {
    what: "vhost-user device type crosvm does not know",
    mutate: (c) => void (work(c).vhostUser = [{ type: "snd", socket: "/run/snd.sock" }]),
    expected: [
      'nixosVms.work.vhostUser[0].type: must be a crosvm vhost-user device type (net, block, console, rng, balloon, scsi, 9p, gpu, input, vsock, iommu, sound, fs, pmem, mac80211-hwsim, video-encoder, video-decoder, scmi, wl, tpm, pvclock, media), got "snd"',
    ],
  },
  {
    what: "the same PCI device twice (BDF and sysfs path)",
    base: "desktop",
    mutate: (c) => void c.nixosVms.net.pciDevices.push({ path: "/sys/bus/pci/devices/0000:03:00.0" }),
    expected: ["nixosVms.net.pciDevices[1].path: is the device /sys/bus/pci/devices/0000:03:00.0 again, already passed by nixosVms.net.pciDevices[0]"],
  },
  {
    what: "the same PCI device twice (short and long BDF)",
    base: "desktop",
    mutate: (c) => void c.nixosVms.net.pciDevices.push({ path: "0000:03:00.0" }),
    expected: ["nixosVms.net.pciDevices[1].path: is the device /sys/bus/pci/devices/0000:03:00.0 again, already passed by nixosVms.net.pciDevices[0]"],
  },

  // ── hostile paths: every path option takes normalised absolute paths systemd keeps as given ─
  { what: "share path with a '..' component", mutate: (c) => void ((c.programs.virtiofsd = VIRTIOFSD), (work(c).sharedDirectories = { data: { path: "/srv/../etc" } })), expected: [`nixosVms.work.sharedDirectories.data.path: must be ${NOT_DOTS}, got "/srv/../etc"`] },
  { what: "sharedHome with a '..' component", mutate: (c) => void ((c.programs.virtiofsd = VIRTIOFSD), (work(c).sharedHome = "/shared/../shared/a")), expected: [`nixosVms.work.sharedHome: must be ${NOT_DOTS}, got "/shared/../shared/a"`] },
  { what: "sharedHome with a trailing space", mutate: (c) => void ((c.programs.virtiofsd = VIRTIOFSD), (work(c).sharedHome = "/shared/a ")), expected: [`nixosVms.work.sharedHome: must be ${EDGE_SPACE}, got "/shared/a "`] },
  { what: "share path with a name starting with a space", mutate: (c) => void ((c.programs.virtiofsd = VIRTIOFSD), (work(c).sharedDirectories = { data: { path: "/srv/ data" } })), expected: [`nixosVms.work.sharedDirectories.data.path: must be ${EDGE_SPACE}, got "/srv/ data"`] },
  { what: "kernel path with a '.' component", mutate: (c) => void (work(c).kernel = "/nix/store/./bzImage"), expected: [`nixosVms.work.kernel: must be ${NOT_DOTS}, got "/nix/store/./bzImage"`] },
  { what: "initramfs path with '//'", mutate: (c) => void (work(c).initramfs = "/nix/store//initrd"), expected: ['nixosVms.work.initramfs: must be a path without empty components ("//"), got "/nix/store//initrd"'] },
  { what: "rootDisk path with a trailing '/'", mutate: (c) => void (work(c).rootDisk.path = "/var/lib/vmsilo/"), expected: ['nixosVms.work.rootDisk.path: must be a path without a trailing "/", got "/var/lib/vmsilo/"'] },
  {
    what: "disk path longer than 4095 bytes",
    mutate: (c) => void (work(c).additionalDisks = [{ path: `/${Array.from({ length: 20 }, () => "d".repeat(250)).join("/")}` }]),
    expected: [`nixosVms.work.additionalDisks[0].path: must be a path of at most 4095 bytes, not 5020, got "/${"d".repeat(55)}...`],
  },
  {
    what: "path of 2142 characters but more than 4095 bytes (counted in UTF-8)",
    mutate: (c) => void (work(c).additionalDisks = [{ path: `/${Array.from({ length: 17 }, () => "é".repeat(125)).join("/")}` }]),
    expected: [`nixosVms.work.additionalDisks[0].path: must be a path of at most 4095 bytes, not 4267, got "/${"é".repeat(55)}...`],
  },
  { what: "path with a name longer than 255 bytes", mutate: (c) => void (c.user.home = `/home/${"a".repeat(256)}`), expected: [`user.home: must be a path whose names are at most 255 bytes, not 256, got "/home/${"a".repeat(50)}...`] },
  { what: "path with a lone UTF-16 surrogate", mutate: (c) => void (c.user.runtimeDir = "/run/user/LONE"), edit: (t) => t.replace("LONE", "\\ud800"), expected: [`user.runtimeDir: must be ${SURROGATE}, got "/run/user/\\ud800"`] },
  { what: "an argument with a lone UTF-16 surrogate", mutate: (c) => void (work(c).crosvm = { extraRunArgs: ["--x=LONE"] }), edit: (t) => t.replace("LONE", "\\udc00"), expected: [`nixosVms.work.crosvm.extraRunArgs[0]: must be ${SURROGATE}, got "--x=\\udc00"`] },
  { what: "vhost-user socket with a '..' component", mutate: (c) => void (work(c).vhostUser = [{ type: "net", socket: "/run/../etc/net.sock" }]), expected: [`nixosVms.work.vhostUser[0].socket: must be ${NOT_DOTS}, got "/run/../etc/net.sock"`] },
  { what: "PCI sysfs path with a '..' component", base: "desktop", mutate: (c) => void (c.nixosVms.net.pciDevices = [{ path: "/sys/bus/pci/devices/../../../etc" }]), expected: [`nixosVms.net.pciDevices[0].path: must be ${NOT_DOTS}, got "/sys/bus/pci/devices/../../../etc"`] },
  { what: "vmExec.storeDir with a trailing '/'", mutate: (c) => void (c.vmExec = { storeDir: "/nix/store/" }), expected: ['vmExec.storeDir: must be a path without a trailing "/", got "/nix/store/"'] },
  { what: "qemu bios with a '.' component", mutate: (c) => void ((c.programs.qemu = QEMU), (work(c).hypervisor = "qemu"), (work(c).qemu = { bios: "/nix/store/./bios.bin" })), expected: [`nixosVms.work.qemu.bios: must be ${NOT_DOTS}, got "/nix/store/./bios.bin"`] },
  { what: "9p share path with a '..' component", mutate: (c) => void ((c.programs.qemu = QEMU), (work(c).hypervisor = "qemu"), (work(c).qemu = { shares9p: { data: { path: "/srv/.." } } })), expected: [`nixosVms.work.qemu.shares9p.data.path: must be ${NOT_DOTS}, got "/srv/.."`] },

  // ── the kernel command line: one word per value, bounded ──────────────────────────────────────
  { what: "init with '\"' (the kernel would quote the rest of the line)", mutate: (c) => void (work(c).init = '/nix/store/x"y/init'), expected: [`nixosVms.work.init: must be an absolute path without spaces, '"' or control characters, got "/nix/store/x\\"y/init"`] },
  { what: "init with a '..' component", mutate: (c) => void (work(c).init = "/nix/store/x/../init"), expected: [`nixosVms.work.init: must be ${NOT_DOTS}, got "/nix/store/x/../init"`] },
  { what: "kernel parameter with '\"'", mutate: (c) => void (work(c).kernelParams = ['dyndbg="file']), expected: [`nixosVms.work.kernelParams[0]: must be ${KPARAM_TEXT}, got "dyndbg=\\"file"`] },
  { what: "vm-exec kernel parameter with '\"'", mutate: (c) => void (c.vmExec = { kernelParams: ['a="b"'] }), expected: [`vmExec.kernelParams[0]: must be ${KPARAM_TEXT}, got "a=\\"b\\""`] },
  {
    what: "kernel command line longer than the kernel reads",
    mutate: (c) => void (work(c).kernelParams = Array.from({ length: 20 }, (_, i) => `p${i}=${"x".repeat(100)}`)),
    expected: [
      'nixosVms.work.kernelParams: make the kernel command line of VM "work" 2213 bytes long, more than the 1919 it may have (the kernel reads 2047, 128 are left for the VMM\'s own); shorten kernelParams, init or the network settings',
    ],
  },

  // ── sizes and numbers ─────────────────────────────────────────────────────────────────────────
  { what: "raw overlay of 9999999999999T", mutate: (c) => void (work(c).rootOverlay = { type: "raw", size: "9999999999999T" }), expected: [`nixosVms.work.rootOverlay.size: must be ${HUGE}, got "9999999999999T"`] },
  { what: "createSize of exactly 1 EiB", mutate: (c) => void (work(c).additionalDisks = [{ path: "/var/lib/vmsilo/work-data.img", createSize: "1048576T" }]), expected: [`nixosVms.work.additionalDisks[0].createSize: must be ${HUGE}, got "1048576T"`] },
  { what: "memory above the maximum, in MiB", mutate: (c) => void (work(c).memory = 16777217), expected: ["nixosVms.work.memory: must be an integer from 64 to 16777216 (MiB), got 16777217"] },
  { what: "memory 1e400 (Infinity once parsed)", mutate: (c) => void (work(c).memory = 7777), edit: (t) => t.replace("7777", "1e400"), expected: ["nixosVms.work.memory: must be an integer from 64 to 16777216 (MiB), got Infinity"] },
  { what: "vm-exec memory above the maximum, in MiB", mutate: (c) => void (c.vmExec = { memory: 1e20 }), expected: ["vmExec.memory: must be an integer from 64 to 16777216 (MiB), got 100000000000000000000"] },

  // ── one device, one address, one interface name per host ─────────────────────────────────────
  {
    what: "the same PCI device on two VMs",
    base: "desktop",
    mutate: (c) => void (c.nixosVms.work.pciDevices = [{ path: "0000:03:00.0" }]),
    expected: ["nixosVms.work.pciDevices[0].path: is the device /sys/bus/pci/devices/0000:03:00.0, already passed to nixosVms.net.pciDevices[0]; a device can be given to one VM only"],
  },
  {
    what: "the same PCI device on two VMs, once as a sysfs path",
    base: "desktop",
    mutate: (c) => void (c.nixosVms.banking.pciDevices = [{ path: "/sys/bus/pci/devices/0000:03:00.0" }]),
    expected: ["nixosVms.net.pciDevices[0].path: is the device /sys/bus/pci/devices/0000:03:00.0, already passed to nixosVms.banking.pciDevices[0]; a device can be given to one VM only"],
  },
  {
    what: "the same IPv4 address on two VMs",
    base: "desktop",
    mutate: withBridged((c) => void (c.nixosVms.dev.network.interfaces.eth0.addresses = ["10.20.0.2/24"])),
    expected: ["nixosVms.work.network.interfaces.eth0.addresses[0]: address 10.20.0.2 is also given by nixosVms.dev.network.interfaces.eth0.addresses[0]; every address belongs to one interface"],
  },
  {
    what: "the same IPv4 address on two interfaces of one VM, with other prefixes",
    mutate: (c) => void ((c.programs.iproute2 = IPROUTE2), (work(c).network = { interfaces: { eth0: { addresses: ["10.0.0.2/24"] }, eth1: { addresses: ["10.0.0.2/16"] } } })),
    expected: ["nixosVms.work.network.interfaces.eth1.addresses[0]: address 10.0.0.2 is also given by nixosVms.work.network.interfaces.eth0.addresses[0]; every address belongs to one interface"],
  },
  {
    what: "the same IPv6 address on two VMs, spelt differently",
    base: "desktop",
    mutate: withBridged((c) => void (c.nixosVms.dev.network.interfaces.eth0.v6Addresses = ["FD00:20:0::0002/48"])),
    expected: ["nixosVms.work.network.interfaces.eth0.v6Addresses[0]: address fd00:20::2 is also given by nixosVms.dev.network.interfaces.eth0.v6Addresses[0]; every address belongs to one interface"],
  },
  { what: "tap named lo", mutate: (c) => void (eth0(c).tap = { name: "lo" }), expected: [`nixosVms.work.network.interfaces.eth0.tap.name: tap "lo" ${HOST_LIKE}`] },
  { what: "tap named eth0", mutate: (c) => void (eth0(c).tap = { name: "eth0" }), expected: [`nixosVms.work.network.interfaces.eth0.tap.name: tap "eth0" ${HOST_LIKE}`] },
  { what: "tap named like a predictable network card name", mutate: (c) => void (eth0(c).tap = { name: "enp3s0" }), expected: [`nixosVms.work.network.interfaces.eth0.tap.name: tap "enp3s0" ${HOST_LIKE}`] },
  { what: "tap named wg0", mutate: (c) => void (eth0(c).tap = { name: "wg0" }), expected: [`nixosVms.work.network.interfaces.eth0.tap.name: tap "wg0" ${HOST_LIKE}`] },
  { what: "tap named docker0", mutate: (c) => void (eth0(c).tap = { name: "docker0" }), expected: [`nixosVms.work.network.interfaces.eth0.tap.name: tap "docker0" ${HOST_LIKE}`] },
  { what: "tap named virbr0", mutate: (c) => void (eth0(c).tap = { name: "virbr0" }), expected: [`nixosVms.work.network.interfaces.eth0.tap.name: tap "virbr0" ${HOST_LIKE}`] },
  {
    what: "derived tap name like a host interface",
    mutate: (c) => void ((c.programs.iproute2 = IPROUTE2), addVm(c, "veth", { network: { interfaces: { x: {} } } })),
    expected: [`nixosVms.veth.network.interfaces.x.tap.name: tap "veth-x" (derived from the VM and interface names) ${HOST_LIKE}`],
  },
  {
    what: "tap named like its own bridge",
    mutate: (c) => void (eth0(c).tap = { name: "br0", bridge: "br0" }),
    expected: ['nixosVms.work.network.interfaces.eth0.tap.name: tap "br0" is the bridge of nixosVms.work.network.interfaces.eth0.tap.bridge, which its start would delete; set another tap.name'],
  },
  {
    what: "tap named like another VM's bridge",
    base: "desktop",
    mutate: withBridged((c) => void (c.nixosVms.banking.network.interfaces.eth0.tap.name = "br-work")),
    expected: ['nixosVms.banking.network.interfaces.eth0.tap.name: tap "br-work" is the bridge of nixosVms.dev.network.interfaces.eth0.tap.bridge, which its start would delete; set another tap.name'],
  },

  // ── VM names taken by the shared helpers in libexec/vmsilo/ ───────────────────────────────────
  { what: "VM named qmp", mutate: (c) => void ((c.nixosVms.qmp = work(c)), delete c.nixosVms.work), expected: [`nixosVms.qmp: VM name "qmp" is reserved (reserved: ${RESERVED})`] },
  { what: "VM named create-disk", mutate: (c) => void ((c.nixosVms["create-disk"] = work(c)), delete c.nixosVms.work), expected: [`nixosVms.create-disk: VM name "create-disk" is reserved (reserved: ${RESERVED})`] },
  { what: "VM named wait-for-socket", mutate: (c) => void ((c.nixosVms["wait-for-socket"] = work(c)), delete c.nixosVms.work), expected: [`nixosVms.wait-for-socket: VM name "wait-for-socket" is reserved (reserved: ${RESERVED})`] },
  { what: "VM named check-disks", mutate: (c) => void ((c.nixosVms["check-disks"] = work(c)), delete c.nixosVms.work), expected: [`nixosVms.check-disks: VM name "check-disks" is reserved (reserved: ${RESERVED})`] },

  // ── keys: suggestions, prototype names, every issue under a bad name ─────────────────────────
  { what: "unknown top-level key close to a known one", mutate: (c) => void (c.startTimout = 5), expected: [`startTimout: unknown option; did you mean \`startTimeout\`? (known: ${TOP_KEYS})`] },
  { what: "unknown crosvm --block key close to a known one", mutate: (c) => void (work(c).rootDisk.options = { "packed-queu": true }), expected: [`nixosVms.work.rootDisk.options.packed-queu: unknown crosvm --block key; did you mean \`packed-queue\`? (known: ${BLOCK_KEYS})`] },
  { what: "crosvm --block key constructor", mutate: (c) => void (work(c).rootDisk.options = { constructor: 1 }), expected: [`nixosVms.work.rootDisk.options.constructor: unknown crosvm --block key (known: ${BLOCK_KEYS})`] },
  { what: "crosvm --vfio key tostring", base: "desktop", mutate: (c) => void (c.nixosVms.net.pciDevices[0].options = { tostring: "x" }), expected: ["nixosVms.net.pciDevices[0].options.tostring: unknown crosvm --vfio key (known: iommu, guest-address, dt-symbol)"] },
  { what: "option named constructor", mutate: (c) => void (c.user.constructor = 1), expected: [`user.constructor: unknown option (known: ${USER_KEYS})`] },
  { what: "option named toString", mutate: (c) => void (c.programs.toString = "/nix/store/x"), expected: [`programs.toString: unknown option (known: ${PROGRAM_KEYS})`] },
  { what: "option named __proto__", mutate: (c) => void Object.defineProperty(work(c), "__proto__", { value: { memory: 1 }, enumerable: true }), expected: [`nixosVms.work.__proto__: unknown option (known: ${VM_KEYS})`] },
  { what: "VM named __proto__", mutate: (c) => void Object.defineProperty(c.nixosVms, "__proto__", { value: work(c), enumerable: true }), expected: [`nixosVms.__proto__: name "__proto__" is not ${VM_NAME_TEXT}`] },
  {
    what: "a VM with a bad name still has its other issues reported",
    mutate: (c) => void ((c.nixosVms.Work = { ...work(c), memory: "4G", memroy: 1 }), delete c.nixosVms.work),
    expected: [
      `nixosVms.Work: name "Work" is not ${VM_NAME_TEXT}`,
      `nixosVms.Work.memroy: unknown option; did you mean \`memory\`? (known: ${VM_KEYS})`,
      'nixosVms.Work.memory: must be an integer from 64 to 16777216 (MiB), got "4G"',
    ],
  },
  {
    what: "an interface with a bad name still has its other issues reported",
    mutate: (c) => void ((c.programs.iproute2 = IPROUTE2), (work(c).network = { interfaces: { "eth:0": { addresses: ["10.0.0.2"] } } })),
    expected: ['nixosVms.work.network.interfaces."eth:0": name "eth:0" is not ' + IFNAME_TEXT, 'nixosVms.work.network.interfaces."eth:0".addresses[0]: must be an IPv4 address with prefix length, like "10.0.0.2/24", got "10.0.0.2"'],
  },
  {
    what: "extraConfig nested deeper than 64 levels",
    mutate: (c) => {
      let deep: Json = 1;
      for (let i = 0; i < 70; i++) deep = { a: deep };
      work(c).cloudHypervisor = { extraConfig: deep };
    },
    expected: [`nixosVms.work.cloudHypervisor.extraConfig${".a".repeat(60)}: must be nested at most 64 levels deep, got more`],
  },
  { what: "a list nested 100000 deep", mutate: (c) => void (work(c).kernelParams = "DEEP"), edit: (t) => t.replace('"DEEP"', "[".repeat(100000) + "]".repeat(100000)), expected: [`nixosVms.work.kernelParams${"[0]".repeat(61)}: must be nested at most 64 levels deep, got more`] },

  // ── programs a feature needs ─────────────────────────────────────────────────────────────────
  { what: "crosvm null", mutate: (c) => void (c.programs.crosvm = null), expected: ['programs.crosvm: is required by hypervisor "crosvm" of VM "work", got null'] },
  { what: "crosvm left out (defaults to null)", mutate: (c) => void delete c.programs.crosvm, expected: ['programs.crosvm: is required by hypervisor "crosvm" of VM "work", got null'] },
  { what: "virtiofsd null with a share", base: "desktop", mutate: (c) => void (c.programs.virtiofsd = null), expected: ['programs.virtiofsd: is required by the shares of VM "banking", got null'] },
  { what: "virtiofsd missing with only sharedHome", mutate: (c) => void (work(c).sharedHome = true), expected: ['programs.virtiofsd: is required by the shares of VM "work", got null'] },
  { what: "iproute2 null with an interface", base: "desktop", mutate: (c) => void (c.programs.iproute2 = null), expected: ['programs.iproute2: is required by the network interfaces of VM "banking", got null'] },
  { what: "vhostDeviceSound null with sound", base: "desktop", mutate: (c) => void (c.programs.vhostDeviceSound = null), expected: ['programs.vhostDeviceSound: is required by sound of VM "dev", got null'] },
  {
    what: "GPU programs null with a GPU",
    base: "desktop",
    mutate: (c) => void ((c.programs.waylandSeccontext = null), (c.programs.vulkanLoader = null)),
    expected: ['programs.waylandSeccontext: is required by the GPU of VM "dev", got null', 'programs.vulkanLoader: is required by the GPU of VM "dev", got null'],
  },

  // ── generated names that collide ─────────────────────────────────────────────────────────────
  {
    what: "a share tag making the same unit as another VM's name",
    mutate: (c) => {
      c.programs.virtiofsd = VIRTIOFSD;
      addVm(c, "a", { sharedDirectories: { vm: { path: "/srv/a" } } });
      addVm(c, "a-virtiofsd");
    },
    expected: ["nixosVms.a-virtiofsd: generates lib/systemd/system/vmsilo-a-virtiofsd-vm.service, which nixosVms.a.sharedDirectories.vm generates too; rename one of them"],
  },

  // ── several issues at once: all reported, in a stable order ──────────────────────────────────
  {
    what: "schema issues at several levels together",
    base: "desktop",
    mutate: withBridged((c) => {
      c.zzz = 1;
      c.user.uid = -1;
      c.nixosVms.work.memory = "lots";
      c.nixosVms.work.extra = true;
      c.nixosVms.banking.network.interfaces.eth0.macAddress = "nope";
      c.nixosVms.net.pciDevices[0].path = "bogus";
      c.startTimeout = 0;
    }),
    expected: [
      `zzz: unknown option (known: ${TOP_KEYS})`,
      "user.uid: must be an integer from 1 to 4294967294, got -1",
      "startTimeout: must be an integer from 1 to 3600, got 0",
      'nixosVms.banking.network.interfaces.eth0.macAddress: must be a lower-case MAC address like "02:00:00:00:00:01", got "nope"',
      `nixosVms.net.pciDevices[0].path: must be ${PCI_TEXT}, got "bogus"`,
      `nixosVms.work.extra: unknown option (known: ${VM_KEYS})`,
      'nixosVms.work.memory: must be an integer from 64 to 16777216 (MiB), got "lots"',
    ],
  },
  {
    what: "model issues of several kinds together",
    base: "desktop",
    mutate: withBridged((c) => {
      c.nixosVms.host = structuredClone(c.nixosVms.banking);
      c.nixosVms.host.network.interfaces.eth0.macAddress = "02:42:ac:11:00:03";
      c.nixosVms.banking.dependsOn = ["net", "ghost"];
      c.nixosVms.work.gpu = { wayland: false, opengl: false };
      c.nixosVms.work.rootDisk.options = { turbo: true };
      c.nixosVms.net.id = 7;
      c.nixosVms.work.id = 7;
      c.programs.vhostDeviceSound = null;
    }),
    expected: [
      `nixosVms.host: VM name "host" is reserved (reserved: ${RESERVED})`,
      `nixosVms.work.rootDisk.options.turbo: unknown crosvm --block key (known: ${BLOCK_KEYS})`,
      "nixosVms.work.gpu: must enable at least one context type (wayland, opengl or vulkan), got none; or set gpu to false",
      'nixosVms.banking.dependsOn[1]: must name a configured VM (banking, dev, host, net, work), got "ghost"',
      'nixosVms.work.id: id 7 is used by both VM "net" (set explicitly) and VM "work" (set explicitly); set a different nixosVms.<vm>.id on one of them',
      'programs.vhostDeviceSound: is required by sound of VM "dev", got null',
    ],
  },

  // ── netvm links, host addresses, isolated PCI devices ─────────────────────────────────────────
  { what: "netvm naming no VM", mutate: (c) => void netvm(c, "nte"), expected: ['nixosVms.work.network.netvm: must name a configured VM (net, work) or "host", got "nte"'] },
  { what: "netvm naming the VM itself", mutate: (c) => void netvm(c, "work"), expected: ['nixosVms.work.network.netvm: must name another VM (or "host"), got the VM itself "work"'] },
  { what: "netvm not a VM name", mutate: (c) => void netvm(c, "Net"), expected: [`nixosVms.work.network.netvm: must be ${VM_NAME_TEXT}, or "host", got "Net"`] },
  { what: "netvm without nftables", mutate: (c) => void (netvm(c, "net"), (c.programs.nftables = null)), expected: ['programs.nftables: is required by the host firewall of network.netvm of VM "work", got null'] },
  { what: "netvmSubnet without netvm", mutate: (c) => void (work(c).network = { netvmSubnet: "10.200.0.2/31" }), expected: ['nixosVms.work.network.netvmSubnet: applies only to a VM with network.netvm set, got "10.200.0.2/31" and netvm null'] },
  { what: "netvmSubnet odd", mutate: (c) => void (netvm(c, "net").netvmSubnet = "10.200.0.3/31"), expected: ['nixosVms.work.network.netvmSubnet: must be the lower (even) address of a /31, like "10.200.7.2/31", got "10.200.0.3/31"'] },
  { what: "netvmSubnet not a /31", mutate: (c) => void (netvm(c, "net").netvmSubnet = "10.200.0.2/30"), expected: ['nixosVms.work.network.netvmSubnet: must be the lower (even) address of a /31, like "10.200.7.2/31", got "10.200.0.2/30"'] },
  {
    what: "two explicit netvmSubnets alike",
    mutate: (c) => void ((netvm(c, "net").netvmSubnet = "10.9.0.0/31"), addVm(c, "web", { network: { netvm: "host", netvmSubnet: "10.9.0.0/31" } })),
    expected: ["nixosVms.work.network.netvmSubnet: 10.9.0.0/31 of the link net → work (nixosVms.work.network.netvmSubnet) is also the /31 of the link host → web (nixosVms.web.network.netvmSubnet); set network.netvmSubnet of one of the two to a free /31"],
  },
  {
    what: "an explicit netvmSubnet on a derived link's /31",
    mutate: (c) => void (netvm(c, "net"), addVm(c, "web", { network: { netvm: "host", netvmSubnet: `${derivedLink("net", "work")}/31` } })),
    expected: [`nixosVms.work.network.netvm: ${derivedLink("net", "work")}/31 of the link net → work (derived from the two names) is also the /31 of the link host → web (nixosVms.web.network.netvmSubnet); set network.netvmSubnet of one of the two to a free /31`],
  },
  {
    what: "a static address inside a link",
    mutate: (c) => void (netvm(c, "net").netvmSubnet = "10.9.0.0/31", (c.nixosVms.net.network = { interfaces: { lan: { addresses: ["10.9.0.1/24"] } } })),
    expected: ["nixosVms.net.network.interfaces.lan.addresses[0]: address 10.9.0.1 is in 10.9.0.0/31, the link net → work (nixosVms.work.network.netvmSubnet); choose an address outside every netvm link"],
  },
  {
    what: "a host address inside a link",
    mutate: (c) => void (netvm(c, "host").netvmSubnet = "10.9.0.0/31", (c.nixosVms.net.network = { interfaces: { lan: { tap: { hostAddress: "10.9.0.0/24" } } } })),
    expected: ["nixosVms.net.network.interfaces.lan.tap.hostAddress: address 10.9.0.0 is in 10.9.0.0/31, the link host → work (nixosVms.work.network.netvmSubnet); choose an address outside every netvm link"],
  },
  { what: "a user interface named upstream beside a netvm", mutate: (c) => void (netvm(c, "net").interfaces = { upstream: {} }), expected: ['nixosVms.work.network.interfaces.upstream: is the interface network.netvm ("net") gives this VM; rename it'] },
  { what: "a user interface with the prefix vc-", mutate: (c) => void (eth0(c), (work(c).network.interfaces = { "vc-lan": {} })), expected: ['nixosVms.work.network.interfaces.vc-lan: names an interface with the prefix "vc-", which is for the interfaces a network VM gets towards its clients (network.netvm); rename it'] },
  { what: "hostAddress with a bridge", mutate: (c) => void (eth0(c).tap = { bridge: "br0", hostAddress: "10.1.0.1/24" }), expected: ['nixosVms.work.network.interfaces.eth0.tap.hostAddress: must be null for a tap on a bridge (tap.bridge = "br0"): the host\'s address belongs on the bridge, got "10.1.0.1/24"'] },
  { what: "hostAddress not a CIDR", mutate: (c) => void (eth0(c).tap = { hostAddress: "10.1.0.1" }), expected: ['nixosVms.work.network.interfaces.eth0.tap.hostAddress: must be an IPv4 address with prefix length, like "10.0.0.2/24", got "10.1.0.1"'] },
  { what: "netvmRange not a network address", mutate: (c) => void (netvm(c, "net"), (c.netvmRange = "10.200.0.1/16")), expected: ['netvmRange: must be a network address (its host bits zero, like "10.200.0.0/16"), got "10.200.0.1/16"'] },
  { what: "netvmRange too small", mutate: (c) => void (netvm(c, "net"), (c.netvmRange = "10.200.0.0/31")), expected: ['netvmRange: must have a prefix of at most /30 (room for two /31 links), got "10.200.0.0/31"'] },
  {
    what: "netvmRange exhausted",
    mutate: (c) => void (netvm(c, "net"), addVm(c, "a", { network: { netvm: "net" } }), addVm(c, "b", { network: { netvm: "host" } }), (c.netvmRange = "10.200.0.0/30")),
    expected: ["netvmRange: holds 2 /31 links, but 3 VMs need a derived one (a, b, work); choose a larger pool or set network.netvmSubnet on some"],
  },
  { what: "hostServices behind a network VM", mutate: (c) => void (netvm(c, "net").hostServices = { tcp: [22] }), expected: ['nixosVms.work.network.hostServices.tcp: applies only to a VM whose gateway is the host (network.netvm = "host"), got ports 22 and netvm "net"'] },
  { what: "hostServices without a netvm", mutate: (c) => void (work(c).network = { hostServices: { udp: [53, 5353] } }), expected: ['nixosVms.work.network.hostServices.udp: applies only to a VM whose gateway is the host (network.netvm = "host"), got ports 53, 5353 and netvm null'] },
  { what: "hostServices port out of range", mutate: (c) => void (netvm(c, "host").hostServices = { tcp: [0] }), expected: ["nixosVms.work.network.hostServices.tcp[0]: must be an integer from 1 to 65535, got 0"] },
  { what: "hostServices port twice", mutate: (c) => void (netvm(c, "host").hostServices = { tcp: [22, 22] }), expected: ["nixosVms.work.network.hostServices.tcp[1]: duplicates an earlier entry 22"] },
  { what: "a netvm cycle", mutate: (c) => void (netvm(c, "net"), (c.nixosVms.net.network = { netvm: "work" })), expected: ["nixosVms.net.network.netvm: forms a cycle: net -> work -> net"] },
  { what: "a netvm and dependsOn cycle", mutate: (c) => void (netvm(c, "net"), (c.nixosVms.net.dependsOn = ["work"])), expected: ["nixosVms.net.dependsOn: forms a cycle: net -> work -> net"] },
  { what: "a user bridge taking a link's bridge", mutate: (c) => void (netvm(c, "net"), addVm(c, "web", { network: { interfaces: { eth0: { tap: { bridge: linkBridge("net", "work") } } } } })), expected: [`nixosVms.web.network.interfaces.eth0.tap.bridge: bridge "${linkBridge("net", "work")}" is the bridge vmsilo creates for the link net → work (nixosVms.work.network.netvm); choose another bridge`] },
  {
    what: "a netvm with more than 16 interfaces",
    mutate: (c) => void (netvm(c, "net"), Array.from({ length: 16 }, (_, i) => addVm(c, `c${i}`, { network: { netvm: "net" } }))),
    expected: ['nixosVms.net.network.interfaces: gives VM "net" 17 tap interfaces with those of its netvm links (network.netvm of its clients), more than the 16 it may have'],
  },
  { what: "isolatedPciDevices not a BDF", mutate: (c) => void (c.isolatedPciDevices = ["/sys/bus/pci/devices/0000:03:00.0"]), expected: ['isolatedPciDevices[0]: must be a PCI address like "0000:01:00.0" or "01:00.0", got "/sys/bus/pci/devices/0000:03:00.0"'] },
  { what: "isolatedPciDevices twice", mutate: (c) => void (c.isolatedPciDevices = ["03:00.0", "03:00.0"]), expected: ['isolatedPciDevices[1]: duplicates an earlier entry "03:00.0"'] },

  // ── documents that are not a configuration at all ────────────────────────────────────────────
  { what: "a JSON array at the top level", mutate: () => [1, 2], expected: ["(document): must be an object, got [1,2]"] },
  { what: "JSON null", mutate: () => null, expected: ["(document): must be an object, got null"] },
  { what: "a JSON string", mutate: () => "vmsilo", expected: ['(document): must be an object, got "vmsilo"'] },
  { what: "an empty object", mutate: () => ({}), expected: ["schemaVersion: is required but missing", "user: is required but missing", "programs: is required but missing"] },
  { what: "a file that is not JSON", raw: "schemaVersion = 1\n", expected: (f) => `vmsilo-gen: ${f}: not valid JSON: Unexpected token 's', "schemaVersion = 1\n" is not valid JSON\n` },
  { what: "a truncated JSON file", raw: '{"schemaVersion": 1,', expected: (f) => `vmsilo-gen: ${f}: not valid JSON: Expected double-quoted property name in JSON at position 20\n` },
  { what: "an empty file", raw: "", expected: (f) => `vmsilo-gen: ${f}: not valid JSON: Unexpected end of JSON input\n` },
];

function header(n: number): string {
  return `vmsilo-gen: invalid configuration (${n} issue${n === 1 ? "" : "s"}):\n`;
}

/** Runs `render` on `file` into `<dir>/out` and checks that it failed as bad input and wrote nothing. */
function renderFails(dir: string, file: string): string {
  const out = join(dir, "out");
  const r = runCli(["render", "--config", file, "--out", out]);
  assert.equal(r.status, 2, `exit status (stderr: ${r.stderr})`);
  assert.equal(r.stdout, "");
  assert.equal(existsSync(out), false, "--out must not exist after a failed render");
  assert.deepEqual(readdirSync(dir).filter((n) => n.startsWith(".out.tmp-")), [], "no temporary directory is left behind");
  return r.stderr;
}

test("the table has at least 190 invalid configurations with distinct descriptions", () => {
  assert.ok(rows.length >= 190, `${rows.length} rows`);
  assert.equal(new Set(rows.map((r) => r.what)).size, rows.length);
});

for (const row of rows) {
  test(`invalid: ${row.what}`, () => {
    const dir = tempDir("invalid");
    try {
      const file = join(dir, "vmsilo.json");
      let text = row.raw;
      if (text === undefined) {
        const config: Json = example(row.base ?? "minimal");
        const replaced = row.mutate?.(config);
        text = JSON.stringify(replaced === undefined ? config : replaced, null, 2);
        if (row.edit) text = row.edit(text);
      }
      writeFileSync(file, text);
      const stderr = renderFails(dir, file);
      assert.deepEqual(readdirSync(dir), ["vmsilo.json"], "only the config file is in the directory");
      const expected = typeof row.expected === "function" ? row.expected(file) : header(row.expected.length) + row.expected.map((l) => `  ${l}\n`).join("");
      assert.equal(stderr, expected);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
}

test("invalid: a missing config file is bad input, with the reason", () => {
  const dir = tempDir("invalid");
  try {
    const file = join(dir, "missing.json");
    const out = join(dir, "out");
    const r = runCli(["render", "--config", file, "--out", out]);
    assert.equal(r.status, 2);
    assert.equal(r.stdout, "");
    assert.equal(r.stderr, `vmsilo-gen: ${file}: cannot read: ENOENT: no such file or directory, open '${file}'\n`);
    assert.deepEqual(readdirSync(dir), []);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("invalid: a config file that is a directory is bad input", () => {
  const dir = tempDir("invalid");
  try {
    const r = runCli(["render", "--config", dir, "--out", join(dir, "out")]);
    assert.equal(r.status, 2);
    assert.equal(r.stdout, "");
    assert.equal(r.stderr, `vmsilo-gen: ${dir}: cannot read: EISDIR: illegal operation on a directory, read\n`);
    assert.deepEqual(readdirSync(dir), []);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("invalid: the header counts issues and says 'issue' for one", () => {
  const dir = tempDir("invalid");
  try {
    const file = join(dir, "vmsilo.json");
    const c: Json = example("minimal");
    c.nixosVms.work.memory = 1;
    writeFileSync(file, JSON.stringify(c));
    assert.equal(renderFails(dir, file), "vmsilo-gen: invalid configuration (1 issue):\n  nixosVms.work.memory: must be an integer from 64 to 16777216 (MiB), got 1\n");
    c.nixosVms.work.cpus = 0;
    writeFileSync(file, JSON.stringify(c));
    assert.equal(
      renderFails(dir, file),
      "vmsilo-gen: invalid configuration (2 issues):\n  nixosVms.work.memory: must be an integer from 64 to 16777216 (MiB), got 1\n  nixosVms.work.cpus: must be an integer from 1 to 512, got 0\n",
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("invalid: a failed render leaves an existing --out tree untouched", () => {
  const dir = tempDir("invalid");
  try {
    const good = join(dir, "good.json");
    const bad = join(dir, "bad.json");
    const out = join(dir, "out");
    writeFileSync(good, JSON.stringify(example("minimal")));
    const c: Json = example("minimal");
    c.nixosVms.work.memory = "4G";
    writeFileSync(bad, JSON.stringify(c));
    assert.equal(runCli(["render", "--config", good, "--out", out]).status, 0);
    const before = readdirSync(out, { recursive: true }).sort();
    const r = runCli(["render", "--config", bad, "--out", out]);
    assert.equal(r.status, 2);
    assert.deepEqual(readdirSync(out, { recursive: true }).sort(), before);
    assert.deepEqual(readdirSync(dir).sort(), ["bad.json", "good.json", "out"]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
