import * as g from "./grammar.js";
import { bool, checkedStr, describe, either, int, list, nullable, object, oneOf, record, str, type Infer, type Node } from "./types.js";

/** vmsilo.json, schema version 1. Field names follow the NixOS options of `programs.vmsilo`. */
export const SCHEMA_VERSION = 1;

/** The default netvm pool: 32768 /31 links, in a range home and office networks rarely use. */
export const DEFAULT_NETVM_RANGE = "10.200.0.0/16";

/** Every absolute path option: the one path grammar (grammar.ts absPathProblem), its first broken rule said. */
const path = (doc: string, produces?: string, def?: string) => checkedStr(g.ABS_PATH_TEXT, g.ABS_PATH_TEXT, g.absPathProblem, { doc, produces, default: def });
const optPath = (doc: string, produces: string) => nullable(path(""), { doc, default: null, produces });
/** A size below SIZE_MAX_BYTES. */
const size = (meta: { doc: string; default?: string; produces?: string }) =>
  checkedStr(g.SIZE_TEXT, g.SIZE_TEXT, (s) => (!g.SIZE.test(s) ? g.SIZE_TEXT : g.sizeBytes(s) >= g.SIZE_MAX_BYTES ? "a size below 1 EiB (1048576T), which no file system here holds" : null), meta);
/** A package's store path: a store path's characters, and a path like every other. */
const storePath = (meta: { doc: string; produces?: string }) => checkedStr(g.STORE_PATH_TEXT, g.STORE_PATH_TEXT, g.storePathProblem, meta);
const program = (doc: string, produces?: string) => storePath({ doc, produces });
const optProgram = (doc: string, produces?: string) => nullable(storePath({ doc }), { doc, default: null, produces });
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
/** Any JSON object (cloud-hypervisor's `extraConfig`): checked for being JSON, not for its keys. */
const jsonObject = (meta: { doc: string; default: Record<string, unknown>; produces: string }): Node<Record<string, unknown>> => ({
  type: "JSON object",
  ...meta,
  check(value, p, ctx) {
    const bad = (v: unknown, at: string): string | null => {
      if (v === null || typeof v === "string" || typeof v === "boolean") return null;
      if (typeof v === "number") return Number.isFinite(v) ? null : at;
      if (Array.isArray(v)) return v.reduce<string | null>((r, x, i) => r ?? bad(x, `${at}[${i}]`), null);
      if (typeof v === "object" && Object.getPrototypeOf(v) === Object.prototype) return Object.keys(v).reduce<string | null>((r, k) => r ?? bad((v as Record<string, unknown>)[k], `${at}.${JSON.stringify(k)}`), null);
      return at;
    };
    if (typeof value !== "object" || value === null || Array.isArray(value)) {
      ctx.issues.push({ path: p, message: `must be a JSON object, got ${describe(value)}` });
      return undefined;
    }
    const where = bad(value, "");
    if (where !== null) {
      ctx.issues.push({ path: p, message: `must hold only JSON values, got something else at ${where || "(top)"}` });
      return undefined;
    }
    // A copy with keys sorted at every level, so the validated config does not depend on key order.
    const sorted = (v: unknown): unknown =>
      Array.isArray(v) ? v.map(sorted) : typeof v === "object" && v !== null ? Object.fromEntries(Object.keys(v).sort().map((k) => [k, sorted((v as Record<string, unknown>)[k])])) : v;
    return sorted(value) as Record<string, unknown>;
  },
});
/** vmsilo-balloond's `--log-level` values. */
export const BALLOOND_LOG_LEVELS = ["error", "warn", "info", "debug"] as const;
const CH_VERBOSITY = "cloud-hypervisor `-v` (warn: none, info: 1, debug: 2, trace: 3)";

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
    bash: program("Store path of bash.", "interpreter (`#!<bash>/bin/bash`) of every generated script"),
    coreutils: program("Store path of coreutils.", "`install`, `rm`, `truncate`, `cp`, `timeout`, `tail`, `readlink` in units and scripts"),
    systemd: program("Store path of systemd.", "`systemctl` in vm-start, vm-stop and session binding"),
    vmsiloTools: program("Store path of vmsilo-tools (bin/vmsilo-run, bin/vmsilo-vsock-proxy, bin/vmsilo-agent).", "vm-run's client and the per-connection vsock proxy"),
    socat: program("Store path of socat.", "console relay, vm-shell console, vsock proxy"),
    crosvm: optProgram("Store path of crosvm; required when a VM uses crosvm or has a GPU.", "`crosvm run`, `crosvm device gpu`, `crosvm powerbtn`/`stop`"),
    cloudHypervisor: optProgram(
      "Store path of cloud-hypervisor (its `bin/cloud-hypervisor` and `bin/ch-remote`); required when a VM uses cloud-hypervisor.",
      "`cloud-hypervisor --api-socket`, `ch-remote create`/`boot`/`power-button`/`shutdown-vmm`",
    ),
    qemu: optProgram(
      "Store path of QEMU (its `bin/qemu-system-x86_64` and `bin/qemu-img`); required when a VM uses qemu, when `vmExec.enable` is set, or a qcow2 disk is created.",
      "qemu VMs' launcher, `vm-exec`, `qemu-img create` of `createSize` disks",
    ),
    virtiofsd: optProgram("Store path of virtiofsd (the Rust one); required when a VM has a share.", "one virtiofsd unit per share"),
    openssh: optProgram("Store path of OpenSSH; vm-shell --ssh is refused without it.", "`ssh` in vm-shell --ssh"),
    wlClipboard: optProgram("Store path of wl-clipboard (its `bin/wl-copy` and `bin/wl-paste`); vm-clipboard is refused without it.", "`wl-copy`/`wl-paste` of vm-clipboard, on the host's side"),
    jq: optProgram("Store path of jq; vm-list and vm-status are refused without it.", "`jq` in vm-list (the manifest, the USB broker's state, the table and --json)"),
    iproute2: optProgram("Store path of iproute2; required when a VM has a network interface.", "`ip tuntap`/`ip link` creating and removing taps"),
    nftables: optProgram("Store path of nftables; required when a VM has `network.netvm` set.", "`nft -f` loading and `nft delete table` removing the host's `inet vmsilo` table"),
    vhostDeviceSound: optProgram("Store path of vhost-device-sound; required when a VM has sound.", "the sound backend unit"),
    waylandSeccontext: optProgram("Store path of vmsilo-wayland-seccontext; required when a VM has a GPU.", "the Wayland security-context unit"),
    vulkanLoader: optProgram("Store path of vulkan-loader; required when a VM has a GPU.", "`LD_LIBRARY_PATH` of the GPU backend"),
    vmsiloTray: optProgram("Store path of the tray daemons (vmsilo-tools' `tray` output: bin/vmsilo-tray-host); required when a VM has `tray.enable`.", "the tray unit `vmsilo-<vm>-tray.service`"),
  },
  { doc: "Every program the generated artifacts call, as store paths (no `PATH` lookups)." },
);

/** Where the guest mounts a share (the guest protocol's `systemd.mount-extra=`). */
const mountPoint = (fsType: "virtiofs" | "9p") =>
  nullable(str(g.MOUNT_POINT, g.MOUNT_POINT_TEXT, { doc: "" }), {
    doc: "Where the guest mounts the share (null: /mnt/<tag>); normalised, not /, not under /nix, /proc, /sys, /dev or /run, and no other share's.",
    default: null,
    produces: `kernel \`systemd.mount-extra=<tag>:<mountPoint>:${fsType}:…\``,
  });

const share = object(
  {
    path: path("Host directory to share.", "virtiofsd `--shared-dir`"),
    mountPoint: mountPoint("virtiofs"),
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
    translateUid: nullable(str(g.ID_MAP, g.ID_MAP_TEXT, { doc: "" }), { doc: "uid translation; null: the guest user's uid 1000 to the host user's and back, when they differ and uidMap is null.", default: null, produces: "virtiofsd `--translate-uid`" }),
    translateGid: nullable(str(g.ID_MAP, g.ID_MAP_TEXT, { doc: "" }), { doc: "gid translation; null: the guest user's gid 100 to the host user's and back, when they differ and gidMap is null.", default: null, produces: "virtiofsd `--translate-gid`" }),
  },
  { doc: "One virtio-fs share." },
);

/** qemu's machine types and accelerators vmsilo renders for (docs/qemu.md). */
export const QEMU_MACHINES = ["microvm", "q35", "pc"] as const;
export const QEMU_ACCELS = ["kvm", "tcg"] as const;

const share9p = object(
  {
    path: path("Host directory to share.", "qemu `-fsdev local,path=`"),
    mountPoint: mountPoint("9p"),
    securityModel: oneOf(["mapped-xattr", "mapped-file", "passthrough", "none"] as const, {
      doc: "How guest ownership and modes are stored (qemu-vm.nix `securityModel`).",
      default: "mapped-xattr",
      produces: "qemu `-fsdev security_model=`",
    }),
    readonly: bool({ doc: "Share read-only.", default: false, produces: "qemu `-fsdev readonly=on`" }),
  },
  { doc: "One 9p share." },
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
      format: oneOf(["raw", "qcow2"] as const, { doc: "Image format (crosvm detects it itself; qemu is told, so a raw image is never probed).", default: "raw", produces: "qemu `-drive format=`" }),
      createSize: nullable(size({ doc: "" }), {
        doc: "Additional disks only: create the image (sparse raw, or qcow2) of this size at VM start when it does not exist (qemu-vm.nix `emptyDiskImages`); an existing image is never touched.",
        default: null,
        produces: "`libexec/vmsilo/create-disk` (`truncate -s` or `qemu-img create -f qcow2`) as `ExecStartPre=`",
      }),
    },
    { doc },
  );

const route = object({ via: str(g.IP, g.IP_TEXT, { doc: "Gateway." }) }, { doc: "A route." });

const fwdEnd = (doc: string) =>
  object(
    {
      address: str(g.IPV4_OR_EMPTY, g.IPV4_OR_EMPTY_TEXT, { doc: "Address (empty: qemu's default for that side).", default: "" }),
      port: int(1, 65535, { doc: "Port." }),
    },
    { doc },
  );

/** A port forward of qemu's user-mode network (qemu-vm.nix `forwardPorts`). */
const forwardPort = object(
  {
    from: oneOf(["host", "guest"] as const, { doc: "Which side connects: host (a host port reaches the guest) or guest (a guest address reaches a host port).", default: "host" }),
    proto: oneOf(["tcp", "udp"] as const, { doc: "Protocol; guest forwards are TCP only.", default: "tcp" }),
    host: fwdEnd("The host side."),
    guest: fwdEnd("The guest side."),
  },
  { doc: "A port forward." },
);

const iface = object(
  {
    type: oneOf(["tap", "user"] as const, {
      doc: "Interface kind: a host tap, or (qemu only) qemu's user-mode network (SLiRP: NAT to the host's network, DHCP, no host set-up).",
      default: "tap",
      produces: "taps; qemu `-netdev tap` or `-netdev user`",
    }),
    forwardPorts: list(forwardPort, { doc: "User-mode interfaces: port forwards (qemu-vm.nix `forwardPorts`).", default: [], produces: "qemu `-netdev user,hostfwd=…` / `guestfwd=…`" }),
    restrictNetwork: bool({ doc: "User-mode interfaces: isolate the guest from the host's network, keeping only the forwards (qemu-vm.nix `restrictNetwork`).", default: false, produces: "qemu `-netdev user,restrict=on`" }),
    macAddress: nullable(str(g.MAC, g.MAC_TEXT, { doc: "" }), { doc: "Guest MAC; derived from the VM and interface names when null.", default: null, produces: "crosvm `--net mac=`, `vmsilo.ifname=<if>,<mac>`" }),
    tap: object(
      {
        name: nullable(str(g.IFNAME, g.IFNAME_TEXT, { doc: "" }), { doc: "Host tap name; derived when null (see docs/model.md).", default: null, produces: "crosvm `--net tap-name=`, `ip tuntap add`" }),
        bridge: nullable(str(g.IFNAME, g.IFNAME_TEXT, { doc: "" }), { doc: "Host bridge the tap joins; the host must declare it (the NixOS module refuses a bridge nothing creates).", default: null, produces: "`ip link set <tap> master <bridge>`, `BindsTo=`/`After=` the bridge's device unit" }),
        hostAddress: nullable(str(g.CIDR4, g.CIDR4_TEXT, { doc: "" }), {
          doc: "IPv4 address of the host's side of the tap (a routed link instead of a bridge; not with `bridge`).",
          default: null,
          produces: "`ip address add <hostAddress> dev <tap>` before the VM starts",
        }),
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
    hypervisor: oneOf(["crosvm", "cloud-hypervisor", "qemu"] as const, { doc: "The VMM.", default: "crosvm", produces: "the launcher `libexec/vmsilo/<vm>/launch` (docs/crosvm.md, docs/cloud-hypervisor.md, docs/qemu.md)" }),
    id: nullable(int(3, 4294967294, { doc: "" }), { doc: "vsock CID and id; derived from the name when null (stable, see docs/model.md).", default: null, produces: "crosvm `--vsock cid=`, tap names" }),
    memory: int(64, 16777216, { doc: "Memory in MiB.", unit: "MiB", default: 1024, produces: "crosvm `--mem size=`" }),
    cpus: int(1, 512, { doc: "Virtual CPUs.", default: 2, produces: "crosvm `--cpus num-cores=`" }),
    autoStart: bool({ doc: "Start at boot (GPU VMs: at graphical login).", default: false, produces: "`Wants=` in vmsilo.target or vmsilo-session.target" }),
    dependsOn: list(str(g.VM_NAME, g.VM_NAME_TEXT, { doc: "" }), { doc: "VMs started before this one.", default: [], unique: true, produces: "`Wants=` and `After=` their VM services" }),
    color: str(g.COLOR, g.COLOR_TEXT, { doc: "Window colour of a GPU VM: a CSS colour name (resolved; an unknown one is an error) or #RRGGBB.", default: "gray", produces: "Wayland security-context app id `vmsilo:<vm>:#rrggbb`, `color` in the manifest" }),
    autoShutdown: object(
      {
        enable: bool({ doc: "Power off when idle.", default: false, produces: "kernel `autoShutdown.enable=1`" }),
        after: int(1, 86400 * 7, { doc: "Idle seconds before power-off.", default: 300, produces: "kernel `autoShutdown.after=`" }),
      },
      { doc: "Idle shutdown, done by the guest." },
    ),
    disposable: object(
      {
        enable: bool({
          doc: "Make this VM a disposable pattern, not a VM that runs itself: `vm-run --disposable <vm> COMMAND` runs each command in a fresh instance, one of `slots` generated VMs `<vm>-d1`, `<vm>-d2`, … (each with its own id, MACs, taps and netvm link), with a tmpfs overlay and no disk or shared home of its own, stopped and wiped when the command ends.",
          default: false,
          produces: "slot VMs `<vm>-d<N>` with every unit a VM has, and per slot `vmsilo-<vm>-d<N>-use.socket` / `-use.service`",
        }),
        slots: int(1, 16, { doc: "How many instances may run at once (the slots, generated statically).", default: 2, produces: "slot VMs `<vm>-d1` … `<vm>-d<slots>`" }),
        preload: int(0, 16, { doc: "How many slots are kept booted and idle, so a disposable command starts without a boot; a used preloaded slot boots afresh when its command ends. At most `slots`.", default: 0, produces: "`Wants=` of the first `preload` slots' VM services in vmsilo.target (or vmsilo-session.target)" }),
      },
      { doc: "Disposable VMs (docs/disposables.md)." },
    ),
    balloon: object(
      {
        enable: bool({
          doc: "A balloon device, through which vmsilo-balloond gives the guest's spare memory back to the host and returns it when the guest needs it (docs/balloon.md); the guest also hands back the pages it frees (free page reporting) and deflates the balloon itself before it would run out of memory.",
          default: true,
          produces: "crosvm's balloon (`--no-balloon` when false) with `--balloon-page-reporting`, cloud-hypervisor `balloon` with `deflate_on_oom` and `free_page_reporting`, qemu `-device virtio-balloon-*` with `free-page-reporting=on,deflate-on-oom=on`; the VM's entry in vmsilo-balloond's manifest",
        }),
        minMemory: nullable(int(16, 16777216, { doc: "", unit: "MiB" }), {
          doc: "The guest's floor in MiB: vmsilo-balloond never leaves it less memory than this; null: a quarter of `memory`, at least 64 MiB (never more than `memory`).",
          default: null,
          produces: "`balloon.floor` in share/vmsilo/manifest.json, the largest balloon vmsilo-balloond sets",
        }),
      },
      { doc: "Memory ballooning (docs/balloon.md)." },
    ),
    kernel: path("Kernel image (bzImage).", "crosvm KERNEL positional"),
    initramfs: path("Initial ramdisk.", "crosvm `--initrd`"),
    init: nullable(checkedStr(g.KERNEL_PATH_TEXT, g.KERNEL_PATH_TEXT, g.kernelPathProblem, { doc: "" }), {
      doc: "Guest init (the system toplevel's init); null when the root disk brings its own.",
      default: null,
      produces: "kernel `init=`",
    }),
    rootDisk: disk("The root image (the guest's nixos.erofs unless overridden).", true),
    additionalDisks: list(disk("An extra disk.", false), { doc: "Extra disks.", default: [], produces: "crosvm `--block` each" }),
    rootOverlay: object(
      {
        type: oneOf(["tmpfs", "raw"] as const, { doc: "Where root writes go.", default: "tmpfs", produces: "kernel `vmsilo.rootOverlay=`" }),
        size: size({ doc: "Size of the raw ephemeral disk.", default: "10G", produces: "`truncate -s` of /var/lib/vmsilo/<vm>/ephemeral.raw" }),
      },
      { doc: "The writable overlay over the read-only root." },
    ),
    kernelParams: list(str(g.KERNEL_PARAM, g.KERNEL_PARAM_TEXT, { doc: "" }), { doc: "Extra kernel parameters, last on the command line.", default: [], produces: "crosvm `-p` each" }),
    sharedDirectories: record(g.SHARE_TAG, g.SHARE_TAG_TEXT, share, { doc: "virtio-fs shares by tag.", default: {}, produces: "a virtiofsd unit and a crosvm `--vhost-user type=fs` each" }),
    sharedHome: either(bool({ doc: "" }), path(""), {
      doc: "Share a per-VM home (true: /shared/<vm>; a path: that directory) as tag `home`, mounted on /home/user.",
      default: false,
      produces: "share `home`, kernel `systemd.mount-extra=home:/home/user:virtiofs:`",
      expected: `true, false or ${g.ABS_PATH_TEXT}`,
      isB: (v) => typeof v === "string",
    }),
    gpu: either(bool({ doc: "" }), gpu, {
      doc: "GPU: false, true (defaults), or settings. Off unless asked for: a GPU VM needs a Wayland compositor with the security-context protocol and runs with the graphical session, not from boot.",
      default: false,
      produces: "GPU backend units, crosvm `--vhost-user type=gpu`",
      expected: "true, false or an object of GPU settings",
    }),
    tray: object(
      {
        enable: bool({
          doc: "Show the guest's tray icons (StatusNotifierItems) on the host's desktop, titled with the VM's name and tinted with its `color`; clicks, scrolling and menus go back to the guest. The guest runs a tray daemon in its user session on vsock port 5001; crosvm and qemu only (cloud-hypervisor's hybrid vsock does not reach it).",
          default: false,
          produces: "`vmsilo-<vm>-tray.service` (vmsilo-tray-host, as the user, on the user's session bus), the guest's tray daemon",
        }),
      },
      { doc: "Tray icons of the guest." },
    ),
    sound: object(
      {
        playback: bool({ doc: "Guest audio output.", default: false, produces: "vhost-device-sound `--streams output`" }),
        capture: bool({ doc: "Guest audio input.", default: false, produces: "vhost-device-sound `--streams input`" }),
      },
      { doc: "Sound through vhost-device-sound." },
    ),
    usbDevices: list(
      object(
        {
          vendorId: str(g.USB_ID, g.USB_ID_TEXT, { doc: "Vendor id (idVendor), any case.", produces: "udev `ATTR{idVendor}` match (lower case)" }),
          productId: str(g.USB_ID, g.USB_ID_TEXT, { doc: "Product id (idProduct), any case.", produces: "udev `ATTR{idProduct}` match (lower case)" }),
          serial: nullable(str(g.USB_SERIAL, g.USB_SERIAL_TEXT, { doc: "" }), { doc: "Serial number, matched exactly; null: any device with these ids.", default: null, produces: "udev `ATTR{serial}` match" }),
        },
        { doc: "A USB device given to this VM whenever both are present." },
      ),
      {
        doc: "USB devices attached when the VM starts and whenever one is plugged in while it runs (crosvm and qemu; not cloud-hypervisor). A device already in another VM is left there.",
        default: [],
        produces: "`vmsilo-<vm>-usb.service` (the USB broker's `persist`), a udev rule in `lib/udev/rules.d/70-vmsilo-usb.rules`",
      },
    ),
    pciDevices: list(
      object(
        {
          path: checkedStr(g.PCI_DEVICE_TEXT, g.PCI_DEVICE_TEXT, (s) => (g.PCI_BDF.test(s) ? null : s.startsWith("/") ? g.absPathProblem(s) : g.PCI_DEVICE_TEXT), { doc: "Device to pass through.", produces: "crosvm `--vfio /sys/bus/pci/devices/<bdf>`" }),
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
        nameservers: list(str(g.IP, g.IP_TEXT, { doc: "" }), { doc: 'DNS servers. Empty with `netvm` naming a network VM: that network VM, which answers DNS on its address of the link (forwarding to its own resolver). Empty otherwise (also with `netvm = "host"`): none (the NixOS module fills in the host\'s `networking.nameservers` for a VM whose gateway is the host).', default: [], unique: true, produces: "kernel `nameserver=`" }),
        netvm: nullable(str(g.VM_NAME, `${g.VM_NAME_TEXT}, or "host"`, { doc: "" }), {
          doc: 'The VM this one reaches the network through (a network VM), "host" for the host itself as its gateway, or null for no such link. The link is a /31 from `netvmRange` (or `netvmSubnet`): this VM gets interface `upstream` with the lower address and a default route to the upper one; the network VM gets interface `vc-<this VM>` (a hash when the name is too long) with the upper one, both taps on a bridge of their own that has no host address. With "host", the host holds the upper address on the tap and a firewall table of its own forwards and masquerades this VM\'s traffic, dropping what it sends to the host itself or to other such VMs.',
          default: null,
          produces: "interface `upstream` (kernel `ip=`, `rd.route=0.0.0.0/0:…`), the netvm's interface `vc-…`, a link unit `vmsilo-<vm>-uplink.service` (bridge) or host rules in `vmsilo-firewall.service`, `Wants=`/`After=` the netvm's VM service",
        }),
        hostServices: object(
          {
            tcp: list(int(1, 65535, { doc: "" }), { doc: "TCP ports.", default: [], unique: true, produces: "`tcp dport { … } accept` on the gateway address in the host's `inet vmsilo` table" }),
            udp: list(int(1, 65535, { doc: "" }), { doc: "UDP ports.", default: [], unique: true, produces: "`udp dport { … } accept` on the gateway address in the host's `inet vmsilo` table" }),
          },
          { doc: 'With `netvm = "host"` only: host services this VM may reach on its gateway address (the host side of its link), by port; every other connection to the host stays dropped. A service must listen on that address (or on all addresses) to answer.' },
        ),
        netvmSubnet: nullable(str(g.CIDR4, g.CIDR4_TEXT, { doc: "" }), {
          doc: "This VM's address on its netvm link, given explicitly instead of derived: the lower (even) address of a /31, like \"10.200.7.2/31\"; the gateway is the next address. It must overlap no other link and no static address.",
          default: null,
          produces: "the addresses of interface `upstream` and of the netvm's side",
        }),
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
    cloudHypervisor: object(
      {
        logLevel: nullable(oneOf(g.CH_LOG_LEVELS, { doc: "" }), { doc: "Log level; null takes the global `cloudHypervisor.logLevel`.", default: null, produces: CH_VERBOSITY }),
        extraArgs: args("Extra cloud-hypervisor options, after `--api-socket` (VMM options: VM settings belong in `extraConfig`).", "cloud-hypervisor options"),
        extraConfig: jsonObject({
          doc: "Merged over the generated VM config (objects key by key, lists and values replaced, `null` removes a key).",
          default: {},
          produces: "`share/vmsilo/<vm>/cloud-hypervisor.json` (`ch-remote create`)",
        }),
      },
      { doc: "Per-VM cloud-hypervisor tuning (NixOS: `nixosVms.<vm>.cloudHypervisor`)." },
    ),
    qemu: object(
      {
        machine: nullable(oneOf(QEMU_MACHINES, { doc: "" }), { doc: "Machine type; null takes `qemu.machine`.", default: null, produces: "qemu `-machine`" }),
        accel: nullable(oneOf(QEMU_ACCELS, { doc: "" }), { doc: "Accelerator; null takes `qemu.accel`.", default: null, produces: "qemu `-accel`" }),
        cpu: nullable(str(g.QEMU_CPU, g.QEMU_CPU_TEXT, { doc: "" }), { doc: "CPU model; null: `host` with kvm, `qemu64` with tcg (where `max` would have the guest run AVX code that TCG emulates slowly).", default: null, produces: "qemu `-cpu`" }),
        console: oneOf(["virtio", "serial"] as const, {
          doc: "The guest console: a virtio console (`hvc0`, as crosvm gives) or the serial port (`ttyS0`, prints from the first kernel message on); either is wired to the console relay.",
          default: "virtio",
          produces: "qemu `-device virtconsole` or `-serial`",
        }),
        usb: bool({ doc: "Give the guest a USB controller (qemu-xhci) so that vmsilo-usb can attach host devices (implied by `usbDevices`); needs a PC machine (q35 or pc).", default: false, produces: "qemu `-device qemu-xhci,id=vmsilo-xhci`" }),
        vsock: bool({ doc: "Give the guest vhost-vsock with the VM's id as CID (vm-run and vm-shell --ssh need it; false only for a VM that must have no host channel).", default: true, produces: "qemu `-device vhost-vsock-*,guest-cid=`" }),
        bios: optPath("Firmware image (qemu-vm.nix `bios`, e.g. qboot's `bios.bin`); null: qemu's default for the machine.", "qemu `-bios`"),
        shares9p: record(g.SHARE_TAG, g.SHARE_TAG_TEXT, share9p, {
          doc: "9p shares by tag (qemu-vm.nix `sharedDirectories`), each mounted by the guest on its `mountPoint`.",
          default: {},
          produces: "qemu `-fsdev local` + `-device virtio-9p-*` each",
        }),
        extraArgs: args("Extra qemu options for this VM, last on the command line (qemu-vm.nix `qemu.options`).", "qemu options"),
      },
      { doc: "Per-VM qemu settings (hypervisor \"qemu\" only; docs/qemu.md)." },
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
    startTimeout: int(1, 3600, { doc: "Seconds to wait for a backend socket or the guest to answer (the one wait constant; messages state the time really waited).", default: 30, produces: "`wait-for-socket` deadline, proxy connect retry" }),
    stopTimeout: int(1, 3600, { doc: "Seconds a graceful stop may take before the VMM is stopped hard (a clean shutdown first, a hard stop after the deadline).", default: 30, produces: "stop script deadline, `TimeoutStopSec=`" }),
    crosvm: object(
      {
        logLevel: logLevel("Default crosvm log level.", "info", "crosvm `--log-level`"),
        extraArgs: args("Global crosvm options for every VM.", "crosvm global options"),
        extraRunArgs: args("Extra `run` options for every VM.", "crosvm `run` options"),
      },
      { doc: "crosvm settings for every VM." },
    ),
    cloudHypervisor: object(
      {
        logLevel: oneOf(g.CH_LOG_LEVELS, { doc: "Default cloud-hypervisor log level (it honours only its `-v` count, so only these four).", default: "info", produces: CH_VERBOSITY }),
        extraArgs: args("Extra cloud-hypervisor options for every VM, after `--api-socket`.", "cloud-hypervisor options"),
        version: nullable(str(g.VERSION, g.VERSION_TEXT, { doc: "" }), {
          doc: "Version of `programs.cloudHypervisor` (the package's `version`); a cloud-hypervisor VM with a GPU or sound needs 52 or later (`generic_vhost_user`).",
          default: null,
          produces: "the check that refuses GPU and sound on an older cloud-hypervisor",
        }),
      },
      { doc: "cloud-hypervisor settings for every VM (NixOS: `programs.vmsilo.\"cloud-hypervisor\"`)." },
    ),
    qemu: object(
      {
        accel: oneOf(QEMU_ACCELS, {
          doc: "Accelerator of qemu VMs and vm-exec: kvm, or tcg (software emulation: slow, but it runs where KVM cannot; the end-to-end tests set it).",
          default: "kvm",
          produces: "qemu `-accel`",
        }),
        machine: oneOf(QEMU_MACHINES, { doc: "Machine type of qemu VMs and vm-exec: microvm (no firmware, no PCI, virtio-mmio) or a PC (q35, pc).", default: "microvm", produces: "qemu `-machine`" }),
        extraArgs: args("Extra qemu options for every qemu VM, after vmsilo's and before the VM's own.", "qemu options"),
      },
      { doc: "qemu settings for every qemu VM (docs/qemu.md)." },
    ),
    vmExec: object(
      {
        enable: bool({ doc: "Generate `vm-exec` (docs/vm-exec.md).", default: false, produces: "`bin/vm-exec`" }),
        kernel: optPath("Kernel of the throwaway VM; required when enabled.", "qemu `-kernel`"),
        initramfs: optPath("Initrd that runs the script (the guest side of docs/vm-exec.md); required when enabled.", "qemu `-initrd`"),
        memory: int(64, 16777216, { doc: "Memory in MiB.", unit: "MiB", default: 1024, produces: "qemu `-m`" }),
        cpus: int(1, 512, { doc: "Virtual CPUs.", default: 1, produces: "qemu `-smp`" }),
        accel: nullable(oneOf(QEMU_ACCELS, { doc: "" }), { doc: "Accelerator; null takes `qemu.accel`.", default: null, produces: "qemu `-accel`" }),
        machine: nullable(oneOf(QEMU_MACHINES, { doc: "" }), { doc: "Machine type; null takes `qemu.machine`.", default: null, produces: "qemu `-machine`" }),
        storeDir: path("The host store, shared read-only as tag `nix-store`.", "virtiofsd `--shared-dir`", "/nix/store"),
        kernelParams: list(str(g.KERNEL_PARAM, g.KERNEL_PARAM_TEXT, { doc: "" }), { doc: "Extra kernel parameters, after vm-exec's own.", default: [], produces: "qemu `-append`" }),
        extraArgs: args("Extra qemu options, before the ones given after `--`.", "qemu options"),
        timeout: int(0, 604800, { doc: "Seconds the VM may run before vm-exec stops it and exits 125; 0: no limit.", default: 0, produces: "`timeout` around qemu" }),
      },
      { doc: "`vm-exec`: run a script in a throwaway qemu VM that shares the host's store read-only (docs/vm-exec.md)." },
    ),
    gpu: object({ allowWX: bool({ doc: "Default for `gpu.allowWX`.", default: false, produces: "`MemoryDenyWriteExecute=` of GPU backends" }) }, { doc: "GPU defaults." }),
    balloond: object(
      {
        logLevel: oneOf(BALLOOND_LOG_LEVELS, { doc: "What the daemon logs: errors, warnings, each balloon change (info), or every poll's figures (debug).", default: "info", produces: "vmsilo-balloond `--log-level`" }),
        pollInterval: checkedStr(g.DURATION_TEXT, g.DURATION_TEXT, g.durationProblem, {
          doc: "Time between two polls of the host and the guests while nothing is under pressure.",
          default: "2s",
          produces: "vmsilo-balloond `--poll-interval`",
        }),
        minPollInterval: checkedStr(g.DURATION_TEXT, g.DURATION_TEXT, g.durationProblem, {
          doc: "The shortest time between two polls: used while the host is in critical pressure, a guest is short of memory or a balloon is moving, and approached as the host's pressure rises towards `psiCeiling`; at most `pollInterval`.",
          default: "250ms",
          produces: "vmsilo-balloond `--min-poll-interval`",
        }),
        criticalHostPercent: int(1, 99, {
          doc: "The host is in critical pressure when its available memory (MemAvailable) is below this percentage of its total: guests then keep only `criticalGuestAvailable` spare, and the daemon polls at `minPollInterval`.",
          default: 5,
          produces: "vmsilo-balloond `--critical-host-percent`",
        }),
        criticalGuestAvailable: size({
          doc: "A guest with less available memory than this is short of memory: its balloon gives back at once what takes it up to `guestAvailableBias`, whatever the host's state. It is also the least a guest keeps when the host is in critical pressure.",
          default: "96M",
          produces: "vmsilo-balloond `--critical-guest-available`",
        }),
        guestAvailableBias: size({
          doc: "The available memory each guest keeps while the host is calm: the balloon takes what a guest has beyond it and gives back what it lacks. Under host pressure the amount falls linearly towards `criticalGuestAvailable` as the pressure approaches `psiCeiling`. At least `criticalGuestAvailable`.",
          default: "256M",
          produces: "vmsilo-balloond `--guest-available-bias`",
        }),
        psiCeiling: int(1, 100, {
          doc: "The host's memory pressure (PSI `some avg10`, the percentage of time some task waited for memory over the last 10 s) that counts as critical; below it, pressure scales the guests' spare memory and the poll interval between their calm and critical values.",
          default: 20,
          produces: "vmsilo-balloond `--psi-ceiling`",
        }),
        extraArgs: args("Extra vmsilo-balloond options, after vmsilo's.", "vmsilo-balloond options"),
      },
      { doc: "vmsilo-balloond, the host's one balloon daemon (NixOS: `programs.vmsilo.\"vmsilo-balloond\"`); it runs when a VM has `balloon.enable` (docs/balloon.md)." },
    ),

    tray: object(
      {
        logLevel: oneOf(["error", "warn", "info", "debug"] as const, {
          doc: "Log level of the tray daemons, the host's per VM and the guest's (NixOS: `programs.vmsilo.vmsilo-tray.logLevel`).",
          default: "info",
          produces: "vmsilo-tray-host `--log-level`",
        }),
      },
      { doc: "Tray settings for every VM with `tray.enable`." },
    ),
    netvmRange: str(g.CIDR4, g.CIDR4_TEXT, {
      doc: "The IPv4 pool netvm links are taken from: a network address with a prefix of at most /30, split into /31 links. Each (netvm, client) pair gets the /31 a hash of the two names picks, so adding or removing another VM moves no address; two pairs picking the same /31 is an error that names both (set `netvmSubnet` on one). Keep the pool large (the default holds 32768 links) and out of the networks the host and the network VMs reach.",
      default: DEFAULT_NETVM_RANGE,
      produces: "the addresses of every netvm link (interfaces `upstream` and `vc-…`)",
    }),
    isolatedPciDevices: list(str(g.PCI_BDF, g.PCI_BDF_TEXT, { doc: "" }), {
      doc: "PCI devices (like \"0000:03:00.0\") taken from the host's drivers and bound to vfio-pci before any VM starts, so only a VM ever drives them (for example the Wi-Fi card of a network VM). Binding refuses a device the host is using (a network interface of it up, the boot display).",
      default: [],
      unique: true,
      produces: "`vmsilo-vfio-bind.service` (`libexec/vmsilo/vfio-bind`), `Requires=`/`After=` it in the VM services passing one of them",
    }),
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
export type QemuVmConfig = Infer<typeof vm>["qemu"];
export type VmExecConfig = Config["vmExec"];
export type ForwardPortConfig = Infer<typeof forwardPort>;

/** `node`'s value for `given` alone, every other field at its schema default (for values the
 * generator adds itself, so they cannot drift from what the schema documents). */
function withDefaults<T>(node: Node<T>, given: Record<string, unknown>): T {
  const ctx = { issues: [] };
  const value = node.check(given, "", ctx);
  if (value === undefined || ctx.issues.length > 0) throw new Error(`schema defaults: ${JSON.stringify(ctx.issues)}`);
  return value;
}

/** The share `sharedHome` adds: every setting at its default. */
export const defaultShare = (path: string): ShareConfig => withDefaults(share, { path });
/** What `gpu = true` means. */
export const GPU_DEFAULTS: GpuConfig = withDefaults(gpu, {});
/** An interface vmsilo adds itself (a netvm link's), every other setting at its default. */
export const defaultInterface = (given: Record<string, unknown>): InterfaceConfig => withDefaults(iface, given);
