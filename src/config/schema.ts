import * as g from "./grammar.js";
import { bool, describe, either, int, list, nullable, object, oneOf, record, str, type Infer, type Node } from "./types.js";

/** vmsilo.json, schema version 1. Field names follow the NixOS options of `programs.vmsilo`. */
export const SCHEMA_VERSION = 1;

const path = (doc: string, produces?: string) => str(g.ABS_PATH, g.ABS_PATH_TEXT, { doc, produces });
const optPath = (doc: string, produces?: string) => nullable(str(g.ABS_PATH, g.ABS_PATH_TEXT, { doc }), { doc, default: null, produces });
const args = (doc: string, produces: string) => list(str(g.ANY_ARG, g.ANY_ARG_TEXT, { doc: "" }), { doc, default: [], produces });
const logLevel = (doc: string, def: string | null, produces: string) =>
  def === null ? nullable(str(g.LOG_LEVEL, g.LOG_LEVEL_TEXT, { doc }), { doc, default: null, produces }) : str(g.LOG_LEVEL, g.LOG_LEVEL_TEXT, { doc, default: def, produces });
const kvValue: Node<string | number | boolean> = {
  type: "string, integer or boolean",
  doc: "",
  check(value, p, ctx) {
    if (typeof value === "boolean" || (typeof value === "number" && Number.isInteger(value) && value >= 0)) return value;
    if (typeof value === "string" && g.ANY_ARG.test(value) && value.length > 0) return value;
    ctx.issues.push({ path: p, message: `must be a non-empty string, a non-negative integer or a boolean, got ${describe(value)}` });
    return undefined;
  },
};
const kvOptions = (doc: string, produces: string) => record(g.KV_KEY, g.KV_KEY_TEXT, kvValue, { doc, default: {}, produces });

const user = object(
  {
    name: str(g.USER_NAME, g.USER_NAME_TEXT, { doc: "The desktop user who owns the VMs.", produces: "polkit rule subject, `SocketUser=`, `User=` of user-side helpers" }),
    uid: int(1, 4294967294, { doc: "Numeric uid of the user (the NixOS module asserts it is set).", produces: "owner of user-side runtime directories, console PTY owner" }),
    gid: int(0, 4294967294, { doc: "Numeric gid of the user's primary group.", produces: "group of user-side runtime directories" }),
    group: str(g.USER_NAME, g.USER_NAME_TEXT, { doc: "Name of the user's primary group.", produces: "tmpfiles group column" }),
    home: path("The user's home directory."),
    runtimeDir: path("The user's runtime directory, normally /run/user/<uid>.", "`XDG_RUNTIME_DIR` of user-side helpers, Wayland socket path"),
  },
  { doc: "The host user, resolved by Nix from `users.users.<user>`." },
);

const programs = object(
  {
    bash: path("Store path of bash.", "interpreter (`#!<bash>/bin/bash`) of every generated script"),
    coreutils: path("Store path of coreutils.", "`install`, `rm`, `truncate`, `cp`, `timeout`, `tail`, `readlink` in units and scripts"),
    systemd: path("Store path of systemd.", "`systemctl` in vm-start, vm-stop and session binding"),
    socat: path("Store path of socat.", "console relay, vm-shell console, vsock proxy"),
    crosvm: optPath("Store path of crosvm; required when a VM uses crosvm.", "`crosvm run`, `crosvm device gpu`, `crosvm powerbtn`/`stop`"),
    virtiofsd: optPath("Store path of virtiofsd (the Rust one); required when a VM has a share.", "one virtiofsd unit per share"),
    openssh: optPath("Store path of OpenSSH; vm-shell --ssh is refused without it.", "`ssh` in vm-shell --ssh"),
    iproute2: optPath("Store path of iproute2; required when a VM has a network interface.", "`ip tuntap`/`ip link` creating and removing taps"),
    vhostDeviceSound: optPath("Store path of vhost-device-sound; required when a VM has sound.", "the sound backend unit"),
    waylandSeccontext: optPath("Store path of vmsilo-wayland-seccontext; required when a VM has a GPU.", "the Wayland security-context unit"),
    vulkanLoader: optPath("Store path of vulkan-loader; required when a VM has a GPU.", "`LD_LIBRARY_PATH` of the GPU backend"),
  },
  { doc: "Every program the generated artifacts call, as store paths (no `PATH` lookups)." },
);

const share = object(
  {
    path: path("Host directory to share.", "virtiofsd `--shared-dir`"),
    threadPoolSize: int(0, 1024, { doc: "Worker threads.", default: 0, produces: "virtiofsd `--thread-pool-size`" }),
    inodeFileHandles: oneOf(["never", "prefer", "mandatory"] as const, { doc: "File-handle use for inodes.", default: "never", produces: "virtiofsd `--inode-file-handles=`" }),
    cache: oneOf(["auto", "always", "never", "metadata"] as const, { doc: "Guest cache policy.", default: "auto", produces: "virtiofsd `--cache`" }),
    logLevel: oneOf(["error", "warn", "info", "debug", "trace", "off"] as const, { doc: "virtiofsd log level.", default: "info", produces: "virtiofsd `--log-level`" }),
    xattr: bool({ doc: "Enable extended attributes.", default: false, produces: "virtiofsd `--xattr`" }),
    posixAcl: bool({ doc: "Enable POSIX ACLs.", default: false, produces: "virtiofsd `--posix-acl`" }),
    readonly: bool({ doc: "Share read-only.", default: false, produces: "virtiofsd `--readonly`" }),
    allowMmap: bool({ doc: "Allow mmap with cache=never.", default: false, produces: "virtiofsd `--allow-mmap`" }),
    enableReaddirplus: bool({ doc: "Use READDIRPLUS.", default: true, produces: "virtiofsd `--no-readdirplus` when false" }),
    writeback: bool({ doc: "Writeback caching.", default: false, produces: "virtiofsd `--writeback`" }),
    allowDirectIo: bool({ doc: "Honour O_DIRECT from the guest.", default: false, produces: "virtiofsd `--allow-direct-io`" }),
    killprivV2: bool({ doc: "FUSE_HANDLE_KILLPRIV_V2.", default: false, produces: "virtiofsd `--killpriv-v2`" }),
    preserveNoatime: bool({ doc: "Keep O_NOATIME.", default: false, produces: "virtiofsd `--preserve-noatime`" }),
    uidMap: nullable(str(g.ID_MAP, g.ID_MAP_TEXT, { doc: "" }), { doc: "uid mapping.", default: null, produces: "virtiofsd `--uid-map`" }),
    gidMap: nullable(str(g.ID_MAP, g.ID_MAP_TEXT, { doc: "" }), { doc: "gid mapping.", default: null, produces: "virtiofsd `--gid-map`" }),
    translateUid: nullable(str(g.ID_MAP, g.ID_MAP_TEXT, { doc: "" }), { doc: "uid translation.", default: null, produces: "virtiofsd `--translate-uid`" }),
    translateGid: nullable(str(g.ID_MAP, g.ID_MAP_TEXT, { doc: "" }), { doc: "gid translation.", default: null, produces: "virtiofsd `--translate-gid`" }),
  },
  { doc: "One virtio-fs share." },
);

const disk = (doc: string, roDefault: boolean) =>
  object(
    {
      path: path("Image file or block device.", "crosvm `--block path=`"),
      ro: bool({ doc: "Attach read-only.", default: roDefault, produces: "crosvm `--block ro=`" }),
      id: nullable(str(/^[A-Za-z0-9_-]{1,20}$/, "a disk id: 1–20 letters, digits, '_' or '-'", { doc: "" }), {
        doc: "Disk serial seen by the guest (/dev/disk/by-id/virtio-<id>).",
        default: null,
        produces: "crosvm `--block id=`",
      }),
      options: kvOptions("Further crosvm `--block` keys (for example `\"block-size\": 4096`), over the defaults `packed-queue=true`, `direct=true`.", "crosvm `--block <key>=<value>`"),
    },
    { doc },
  );

const route = object({ via: str(g.IP, g.IP_TEXT, { doc: "Gateway." }) }, { doc: "A route." });

const iface = object(
  {
    type: oneOf(["tap"] as const, { doc: "Interface kind.", default: "tap" }),
    macAddress: nullable(str(g.MAC, g.MAC_TEXT, { doc: "" }), { doc: "Guest MAC; derived from the VM and interface names when null.", default: null, produces: "crosvm `--net mac=`, `vmsilo.ifname=<if>,<mac>`" }),
    tap: object(
      {
        name: nullable(str(g.IFNAME, g.IFNAME_TEXT, { doc: "" }), { doc: "Host tap name; derived when null (see docs/model.md).", default: null, produces: "crosvm `--net tap-name=`, `ip tuntap add`" }),
        bridge: nullable(str(g.IFNAME, g.IFNAME_TEXT, { doc: "" }), { doc: "Host bridge the tap joins.", default: null, produces: "`ip link set <tap> master <bridge>`, `BindsTo=`/`After=` the bridge's device unit" }),
      },
      { doc: "Host side of the interface." },
    ),
    dhcp: bool({ doc: "Configure by DHCP (static settings are then ignored).", default: false, produces: "kernel `ip=:::::<if>:dhcp`" }),
    addresses: list(str(g.CIDR4, g.CIDR4_TEXT, { doc: "" }), { doc: "Static IPv4 addresses.", default: [], unique: true, produces: "kernel `ip=<ip>:::<netmask>::<if>:none`" }),
    routes: record(g.ROUTE4_DEST, "an IPv4 destination like \"0.0.0.0/0\"", route, { doc: "IPv4 routes by destination.", default: {}, produces: "kernel `rd.route=<dest>:<via>:<if>`" }),
    v6Addresses: list(str(g.CIDR6, g.CIDR6_TEXT, { doc: "" }), { doc: "Static IPv6 addresses.", default: [], unique: true, produces: "kernel `ip=[<addr>]:::<prefix>::<if>:none`" }),
    v6Routes: record(g.ROUTE6_DEST, "an IPv6 destination like \"::/0\"", route, { doc: "IPv6 routes by destination.", default: {}, produces: "kernel `rd.route=[<dest>]:[<via>]:<if>`" }),
  },
  { doc: "One guest network interface, named by its attribute name inside the guest." },
);

const gpu = object(
  {
    wayland: bool({ doc: "Wayland cross-domain context.", default: true, produces: "GPU context type `cross-domain`" }),
    opengl: bool({ doc: "OpenGL through virgl.", default: true, produces: "GPU context type `virgl2`" }),
    vulkan: bool({ doc: "Vulkan through venus.", default: false, produces: "GPU context type `venus`" }),
    allowWX: nullable(bool({ doc: "" }), { doc: "Allow W^X memory in the GPU backend; null takes `gpu.allowWX`.", default: null, produces: "`MemoryDenyWriteExecute=`" }),
    logLevel: logLevel("GPU backend log level; null takes `crosvm.logLevel`.", null, "crosvm `--log-level` of `device gpu`"),
    seccompPolicy: oneOf(["enforcing", "log"] as const, { doc: "Syscall filter of the GPU backend.", default: "enforcing", produces: "`SystemCallFilter=` or `SystemCallLog=`" }),
  },
  { doc: "GPU settings." },
);

const vm = object(
  {
    hypervisor: oneOf(["crosvm"] as const, { doc: "The VMM.", default: "crosvm" }),
    id: nullable(int(3, 4294967294, { doc: "" }), { doc: "vsock CID and id; derived from the name when null (stable, see docs/model.md).", default: null, produces: "crosvm `--vsock cid=`, tap names" }),
    memory: int(64, 16777216, { doc: "Memory in MiB.", default: 1024, produces: "crosvm `--mem size=`" }),
    cpus: int(1, 512, { doc: "Virtual CPUs.", default: 2, produces: "crosvm `--cpus num-cores=`" }),
    autoStart: bool({ doc: "Start at boot (GPU VMs: at graphical login).", default: false, produces: "`Wants=` in vmsilo.target or vmsilo-session.target" }),
    dependsOn: list(str(g.VM_NAME, g.VM_NAME_TEXT, { doc: "" }), { doc: "VMs started before this one.", default: [], unique: true, produces: "`Wants=` and `After=` their VM services" }),
    color: str(g.COLOR, g.COLOR_TEXT, { doc: "Window colour.", default: "gray", produces: "Wayland security-context app id" }),
    autoShutdown: object(
      {
        enable: bool({ doc: "Power off when idle.", default: false, produces: "kernel `autoShutdown.enable=1`" }),
        after: int(1, 86400 * 7, { doc: "Idle seconds before power-off.", default: 300, produces: "kernel `autoShutdown.after=`" }),
      },
      { doc: "Idle shutdown, done by the guest." },
    ),
    kernel: path("Kernel image (bzImage).", "crosvm KERNEL positional"),
    initramfs: path("Initial ramdisk.", "crosvm `--initrd`"),
    init: nullable(str(g.KERNEL_PATH, g.KERNEL_PATH_TEXT, { doc: "" }), {
      doc: "Guest init (the system toplevel's init); null when the root disk brings its own.",
      default: null,
      produces: "kernel `init=`",
    }),
    rootDisk: disk("The root image (the guest's nixos.erofs unless overridden).", true),
    additionalDisks: list(disk("An extra disk.", false), { doc: "Extra disks.", default: [], produces: "crosvm `--block` each" }),
    rootOverlay: object(
      {
        type: oneOf(["tmpfs", "raw"] as const, { doc: "Where root writes go.", default: "tmpfs", produces: "kernel `vmsilo.rootOverlay=`" }),
        size: str(g.SIZE, g.SIZE_TEXT, { doc: "Size of the raw ephemeral disk.", default: "10G", produces: "`truncate -s` of /var/lib/vmsilo/<vm>-ephemeral.raw" }),
      },
      { doc: "The writable overlay over the read-only root." },
    ),
    kernelParams: list(str(g.KERNEL_PARAM, g.KERNEL_PARAM_TEXT, { doc: "" }), { doc: "Extra kernel parameters, last on the command line.", default: [], produces: "crosvm `-p` each" }),
    sharedDirectories: record(g.SHARE_TAG, g.SHARE_TAG_TEXT, share, { doc: "virtio-fs shares by tag.", default: {}, produces: "a virtiofsd unit and a crosvm `--vhost-user type=fs` each" }),
    sharedHome: either(bool({ doc: "" }), str(g.ABS_PATH, g.ABS_PATH_TEXT, { doc: "" }), {
      doc: "Share a per-VM home (true: /shared/<vm>; a path: that directory) as tag `home`, mounted on /home/user.",
      default: false,
      produces: "share `home`, kernel `systemd.mount-extra=home:/home/user:virtiofs:`",
      expected: `true, false or ${g.ABS_PATH_TEXT}`,
    }),
    gpu: either(bool({ doc: "" }), gpu, {
      doc: "GPU: false, true (defaults), or settings.",
      default: false,
      produces: "GPU backend units, crosvm `--vhost-user type=gpu`",
      expected: "true, false or an object of GPU settings",
    }),
    sound: object(
      {
        playback: bool({ doc: "Guest audio output.", default: false, produces: "vhost-device-sound `--streams output`" }),
        capture: bool({ doc: "Guest audio input.", default: false, produces: "vhost-device-sound `--streams input`" }),
      },
      { doc: "Sound through vhost-device-sound." },
    ),
    pciDevices: list(
      object(
        {
          path: str(g.PCI_DEVICE, g.PCI_DEVICE_TEXT, { doc: "Device to pass through.", produces: "crosvm `--vfio /sys/bus/pci/devices/<bdf>`" }),
          options: kvOptions("Further crosvm `--vfio` keys (`iommu`, `guest-address`, `dt-symbol`).", "crosvm `--vfio ...,<key>=<value>`"),
        },
        { doc: "A VFIO PCI device." },
      ),
      { doc: "PCI passthrough; the launcher checks IOMMU groups first.", default: [], produces: "crosvm `--vfio`, IOMMU group check" },
    ),
    vhostUser: list(
      object(
        {
          type: str(/^[a-z0-9][a-z0-9-]*$/, "a crosvm vhost-user device type like \"net\"", { doc: "Device type." }),
          socket: path("Backend socket."),
          options: kvOptions("Further keys (`max-queue-size`, `pci-address`).", "crosvm `--vhost-user ...,<key>=<value>`"),
        },
        { doc: "A vhost-user device whose backend you run." },
      ),
      { doc: "Extra vhost-user devices.", default: [], produces: "crosvm `--vhost-user` each" },
    ),
    network: object(
      {
        interfaces: record(g.IFNAME, g.IFNAME_TEXT, iface, { doc: "Guest interfaces by name.", default: {}, maxKeys: 16, produces: "crosvm `--net`, taps, kernel network parameters" }),
        nameservers: list(str(g.IP, g.IP_TEXT, { doc: "" }), { doc: "DNS servers.", default: [], unique: true, produces: "kernel `nameserver=`" }),
      },
      { doc: "Networking." },
    ),
    crosvm: object(
      {
        logLevel: logLevel("Log level; null takes the global `crosvm.logLevel`.", null, "crosvm `--log-level`"),
        extraArgs: args("Global crosvm options, before `run`.", "crosvm global options"),
        extraRunArgs: args("Extra `run` options, after vmsilo's.", "crosvm `run` options"),
      },
      { doc: "Per-VM crosvm tuning." },
    ),
  },
  { doc: "One VM, with its options resolved by the NixOS module." },
);

export const configSchema = object(
  {
    schemaVersion: int(1, 1, { doc: "Version of this document's format." }),
    user,
    programs,
    schedulerIsolation: oneOf(["full", "vm", "off"] as const, {
      doc: "Core scheduling: full (per-vCPU), vm (per VM) or off.",
      default: "full",
      produces: "crosvm `--core-scheduling=true`, `--per-vm-core-scheduling` or `--core-scheduling=false`",
    }),
    startTimeout: int(1, 3600, { doc: "Seconds to wait for a backend socket or the guest to answer (the one wait constant, D12).", default: 30, produces: "`wait-for-socket` deadline, proxy connect retry" }),
    stopTimeout: int(1, 3600, { doc: "Seconds a graceful stop may take before the VMM is stopped hard (D9).", default: 30, produces: "stop script deadline, `TimeoutStopSec=`" }),
    crosvm: object(
      {
        logLevel: logLevel("Default crosvm log level.", "info", "crosvm `--log-level`"),
        extraArgs: args("Global crosvm options for every VM.", "crosvm global options"),
        extraRunArgs: args("Extra `run` options for every VM.", "crosvm `run` options"),
      },
      { doc: "crosvm settings for every VM." },
    ),
    gpu: object({ allowWX: bool({ doc: "Default for `gpu.allowWX`.", default: false, produces: "`MemoryDenyWriteExecute=` of GPU backends" }) }, { doc: "GPU defaults." }),
    nixosVms: record(g.VM_NAME, g.VM_NAME_TEXT, vm, { doc: "The VMs, by name.", default: {} }),
  },
  { doc: "vmsilo.json: everything the generator needs, produced by the NixOS module." },
);

export type Config = Infer<typeof configSchema>;
export type VmConfig = Infer<typeof vm>;
export type ShareConfig = Infer<typeof share>;
export type DiskConfig = Infer<ReturnType<typeof disk>>;
export type InterfaceConfig = Infer<typeof iface>;
export type GpuConfig = Infer<typeof gpu>;
export type Programs = Infer<typeof programs>;
