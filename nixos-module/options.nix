# Option declarations of `programs.vmsilo` (ORIGINAL.md §A as carried by vmsilo.json schema v1,
# docs/schema.md). Every default equals the schema's default; every description says what the
# option produces and which hypervisors honour it. Types mirror src/config/grammar.ts (lib.nix).
{
  config,
  lib,
  pkgs,
  ...
}:
let
  inherit (lib)
    mkOption
    mkEnableOption
    literalExpression
    types
    ;
  vlib = import ./lib.nix { inherit lib; };
  vt = vlib.types;
  hypervisors = import ./hypervisors.nix;
  hypervisorNames = builtins.attrNames hypervisors;
  listHypervisors = hvs: "Honoured by: ${lib.concatStringsSep ", " hvs}.";
  honouredBy = listHypervisors hypervisorNames;
  # cloud-hypervisor honours only its `-v` count (src/config/grammar.ts CH_LOG_LEVELS).
  chLogLevels = [
    "warn"
    "info"
    "debug"
    "trace"
  ];
  chVerbosity = "cloud-hypervisor `-v` (warn: none, info: 1, debug: 2, trace: 3)";

  # description = what it is; produces = what it turns into in the generated artifacts.
  # `doc` leaves a marker that `honoured` replaces with the hypervisors that honour the option,
  # read from hypervisors.nix: a hypervisor refusing a feature (a VM option path such as `gpu` or
  # `qemu.machine`) honours neither that option nor any under it. `docOn` names them itself, for
  # options whose limit is not a refusal there (qemu's user-mode network, vm-exec).
  honouredMarker = "@honoured-by@";
  doc = text: produces: "${text}\n\nProduces: ${produces}. ${honouredMarker}";
  docOn = hvs: text: produces: "${text}\n\nProduces: ${produces}. ${listHypervisors hvs}";
  refuses =
    path: hv:
    lib.any (f: path == f || lib.hasPrefix "${f}." path) (builtins.attrNames hypervisors.${hv}.unsupported);
  # Fills the marker of every option in an attribute set of options (nested sets included),
  # `hvsOf` giving the hypervisors from the option's path below `prefix`.
  fillHonoured =
    hvsOf: prefix:
    lib.mapAttrs (
      n: v:
      let
        path = if prefix == "" then n else "${prefix}.${n}";
      in
      if (v._type or null) == "option" then
        v
        // {
          description = builtins.replaceStrings [ honouredMarker ] [ (listHypervisors (hvsOf path)) ] v.description;
        }
      else if builtins.isAttrs v then
        fillHonoured hvsOf path v
      else
        v
    );
  # Paths are below the VM (or below programs.vmsilo, whose options share the VM's names).
  honoured = fillHonoured (path: lib.filter (hv: !refuses path hv) hypervisorNames);
  honouredOn = hvs: fillHonoured (_: hvs) "";
  docNix = text: "${text}\n\nUsed by the NixOS module only (not written to vmsilo.json).";

  argList =
    text: produces:
    mkOption {
      type = types.listOf types.str;
      default = [ ];
      example = [ "--foo" ];
      description = doc "${text} Passed verbatim, each as one argument." produces;
    };

  packageOption =
    {
      name,
      default,
      defaultText,
      nullable ? true,
      neededFor,
    }:
    mkOption {
      type = if nullable then types.nullOr types.package else types.package;
      inherit default;
      defaultText = literalExpression defaultText;
      description = ''
        Package whose store path vmsilo.json carries as `programs.${name}`; ${neededFor}.
        ${
          if nullable then
            "It is written only when a VM needs it, so an unused package is never evaluated or built."
          else
            "It is always written."
        }
      '';
    };

  # --- submodules -------------------------------------------------------------------------------
  # Every instance (VM, share, interface, disk) is its own module evaluation, so the declarations
  # are plain values built once and shared by all instances: a function module would rebuild
  # every option and type per instance. Only the option whose default is the attribute name is
  # declared per instance.

  diskModule =
    roDefault:
    {
      options = honoured (if roDefault then "rootDisk" else "additionalDisks.<name>") {
        path = mkOption {
          type = vt.absPath;
          example = "/var/lib/vmsilo/work-data.img";
          description = doc "Image file or block device." "crosvm `--block path=`, cloud-hypervisor `disks[].path`, qemu `-drive file=`";
        };
        ro = mkOption {
          type = types.bool;
          default = roDefault;
          description = doc "Attach read-only." "crosvm `--block ro=`, cloud-hypervisor `disks[].readonly`, qemu `-drive readonly=`";
        };
        id = mkOption {
          type = types.nullOr vt.diskId;
          default = null;
          example = "data";
          description = doc "Disk serial seen by the guest (`/dev/disk/by-id/virtio-<id>`)." "crosvm `--block id=`, cloud-hypervisor `disks[].serial`, qemu `-device virtio-blk-*,serial=`";
        };
        options = mkOption {
          type = vt.kvOptions;
          default = { };
          example = {
            block-size = 4096;
          };
          description = docOn [
            "cloud-hypervisor"
            "crosvm"
          ] "Further crosvm `--block` keys, over the defaults `packed-queue=true`, `direct=true`; cloud-hypervisor takes only the keys it has an equivalent for, qemu none." "crosvm `--block <key>=<value>`, cloud-hypervisor disk settings";
        };
        format = mkOption {
          type = types.enum [
            "raw"
            "qcow2"
          ];
          default = "raw";
          description = doc "Image format (crosvm detects it itself; cloud-hypervisor and qemu are told, so a raw image is never probed)." "cloud-hypervisor `disks[].image_type`, qemu `-drive format=`";
        };
        createSize = mkOption {
          type = types.nullOr vt.size;
          default = null;
          example = "20G";
          description = doc "Additional disks only: create the image (sparse raw, or qcow2) of this size at VM start when it does not exist (qemu-vm.nix `emptyDiskImages`); an existing image is never touched." "`libexec/vmsilo/create-disk` as `ExecStartPre=`";
        };
      };
    };

  # Where the guest mounts a share: the generator checks the path and puts it on the kernel command line.
  mountPointOption =
    fsType:
    mkOption {
      type = types.nullOr vt.mountPoint;
      default = null;
      example = "/mnt/projects";
      description = doc "Where the guest mounts the share (null: /mnt/<tag>); normalised, not /, not under /nix, /proc, /sys, /dev or /run, and no other share's." "kernel `systemd.mount-extra=<tag>:<mountPoint>:${fsType}:…`";
    };

  shareOptions = {
    path = mkOption {
      type = vt.absPath;
      example = "/home/alice/Projects";
      description = doc "Host directory to share, served by its own virtiofsd unit." "`vmsilo-<vm>-virtiofsd-<tag>.service` with virtiofsd `--shared-dir`; crosvm `--vhost-user type=fs`, cloud-hypervisor `fs[]`, qemu `-device vhost-user-fs-*`";
    };
    mountPoint = mountPointOption "virtiofs";
    threadPoolSize = mkOption {
      type = types.ints.between 0 1024;
      default = 0;
      description = doc "Worker threads." "virtiofsd `--thread-pool-size`";
    };
    inodeFileHandles = mkOption {
      type = types.enum [
        "never"
        "prefer"
        "mandatory"
      ];
      default = "never";
      description = doc "File-handle use for inodes." "virtiofsd `--inode-file-handles=`";
    };
    cache = mkOption {
      type = types.enum [
        "auto"
        "always"
        "never"
        "metadata"
      ];
      default = "auto";
      description = doc "Guest cache policy." "virtiofsd `--cache`";
    };
    logLevel = mkOption {
      type = types.enum [
        "error"
        "warn"
        "info"
        "debug"
        "trace"
        "off"
      ];
      default = "info";
      description = doc "virtiofsd log level." "virtiofsd `--log-level`";
    };
    xattr = mkOption {
      type = types.bool;
      default = false;
      description = doc "Enable extended attributes." "virtiofsd `--xattr`";
    };
    posixAcl = mkOption {
      type = types.bool;
      default = false;
      description = doc "Enable POSIX ACLs." "virtiofsd `--posix-acl`";
    };
    readonly = mkOption {
      type = types.bool;
      default = false;
      description = doc "Share read-only." "virtiofsd `--readonly`";
    };
    allowMmap = mkOption {
      type = types.bool;
      default = false;
      description = doc "Allow mmap with `cache = \"never\"`." "virtiofsd `--allow-mmap`";
    };
    enableReaddirplus = mkOption {
      type = types.bool;
      default = true;
      description = doc "Use READDIRPLUS." "virtiofsd `--no-readdirplus` when false";
    };
    writeback = mkOption {
      type = types.bool;
      default = false;
      description = doc "Writeback caching." "virtiofsd `--writeback`";
    };
    allowDirectIo = mkOption {
      type = types.bool;
      default = false;
      description = doc "Honour O_DIRECT from the guest." "virtiofsd `--allow-direct-io`";
    };
    killprivV2 = mkOption {
      type = types.bool;
      default = false;
      description = doc "FUSE_HANDLE_KILLPRIV_V2." "virtiofsd `--killpriv-v2`";
    };
    preserveNoatime = mkOption {
      type = types.bool;
      default = false;
      description = doc "Keep O_NOATIME." "virtiofsd `--preserve-noatime`";
    };
    uidMap = mkOption {
      type = types.nullOr vt.idMap;
      default = null;
      example = ":0:1000:1:";
      description = doc "uid mapping." "virtiofsd `--uid-map`";
    };
    gidMap = mkOption {
      type = types.nullOr vt.idMap;
      default = null;
      example = ":0:100:1:";
      description = doc "gid mapping." "virtiofsd `--gid-map`";
    };
    translateUid = mkOption {
      type = types.nullOr vt.idMap;
      default = null;
      example = "guest:1000:1001";
      description = doc "uid translation; null: the guest user's uid 1000 to the host user's and back, when they differ and uidMap is null." "virtiofsd `--translate-uid`";
    };
    translateGid = mkOption {
      type = types.nullOr vt.idMap;
      default = null;
      example = "guest:100:100";
      description = doc "gid translation; null: the guest user's gid 100 to the host user's and back, when they differ and gidMap is null." "virtiofsd `--translate-gid`";
    };
  };

  shareModule =
    { name, ... }:
    {
      options = honoured "sharedDirectories.<name>" shareOptions // {
        tag = mkOption {
          type = vt.shareTag;
          default = name;
          defaultText = literalExpression "<name>";
          readOnly = true;
          description = "The virtio-fs tag: the attribute name, checked against the share-tag grammar.";
        };
      };
    };

  routeOptions = {
    via = mkOption {
      type = vt.ip;
      example = "10.20.0.1";
      description = doc "Gateway." "kernel `rd.route=<dest>:<via>:<if>`";
    };
  };

  routeModule =
    grammar:
    let
      destination = vlib.grammarType grammar;
    in
    { name, ... }:
    {
      options = honoured "network.interfaces.<name>.routes.<name>" routeOptions // {
        destination = mkOption {
          type = destination;
          default = name;
          defaultText = literalExpression "<name>";
          readOnly = true;
          description = "The destination: the attribute name, checked against the route-destination grammar.";
        };
      };
    };

  forwardEnd = side: {
    address = mkOption {
      type = vlib.grammarType "ipv4OrEmpty";
      default = "";
      description = docOn [ "qemu" ] "The ${side} address (empty: qemu's default for that side)." "qemu `hostfwd=`/`guestfwd=`";
    };
    port = mkOption {
      type = types.ints.between 1 65535;
      description = docOn [ "qemu" ] "The ${side} port." "qemu `hostfwd=`/`guestfwd=`";
    };
  };

  forwardPortModule = {
    options = {
      from = mkOption {
        type = types.enum [
          "host"
          "guest"
        ];
        default = "host";
        description = docOn [ "qemu" ] "Which side connects: host (a host port reaches the guest) or guest (a guest address reaches a host port; TCP only)." "qemu `hostfwd=` or `guestfwd=`";
      };
      proto = mkOption {
        type = types.enum [
          "tcp"
          "udp"
        ];
        default = "tcp";
        description = docOn [ "qemu" ] "Protocol." "qemu `hostfwd=`";
      };
      host = forwardEnd "host";
      guest = forwardEnd "guest";
    };
  };

  share9pModule = {
    options = honoured "qemu.shares9p.<name>" {
      path = mkOption {
        type = vt.absPath;
        example = "/srv/media";
        description = doc "Host directory to share." "qemu `-fsdev local,path=`";
      };
      mountPoint = mountPointOption "9p";
      securityModel = mkOption {
        type = types.enum [
          "mapped-xattr"
          "mapped-file"
          "passthrough"
          "none"
        ];
        default = "mapped-xattr";
        description = doc "How guest ownership and modes are stored (qemu-vm.nix `securityModel`)." "qemu `-fsdev security_model=`";
      };
      readonly = mkOption {
        type = types.bool;
        default = false;
        description = doc "Share read-only." "qemu `-fsdev readonly=on`";
      };
    };
  };

  qemuMachines = [
    "microvm"
    "q35"
    "pc"
  ];
  qemuAccels = [
    "kvm"
    "tcg"
  ];

  interfaceOptions = {
    type = mkOption {
      type = types.enum [
        "tap"
        "user"
      ];
      default = "tap";
      description = docOn hypervisorNames "Interface kind: a host tap, or (qemu only) qemu's user-mode network (NAT to the host's network, DHCP, nothing to set up on the host)." "a host tap device; qemu `-netdev tap` or `-netdev user`";
    };
    forwardPorts = mkOption {
      type = types.listOf (types.submodule forwardPortModule);
      default = [ ];
      example = literalExpression ''[ { host.port = 2222; guest.port = 22; } ]'';
      description = docOn [ "qemu" ] "User-mode interfaces: port forwards (qemu-vm.nix `forwardPorts`)." "qemu `-netdev user,hostfwd=…`/`guestfwd=…`";
    };
    restrictNetwork = mkOption {
      type = types.bool;
      default = false;
      description = docOn [ "qemu" ] "User-mode interfaces: isolate the guest from the host's network, keeping only the forwards (qemu-vm.nix `restrictNetwork`)." "qemu `-netdev user,restrict=on`";
    };
    macAddress = mkOption {
      type = types.nullOr vt.mac;
      default = null;
      example = "02:42:ac:11:00:02";
      description = doc "Guest MAC; derived from the VM and interface names when null (docs/model.md)." "crosvm `--net mac=`, cloud-hypervisor `net[].mac`, qemu `-device virtio-net-*,mac=`; kernel `vmsilo.ifname=<if>,<mac>`";
    };
    tap = {
      name = mkOption {
        type = types.nullOr vt.ifName;
        default = null;
        example = "tap-work";
        description = doc "Host tap name; derived when null (docs/model.md)." "crosvm `--net tap-name=`, cloud-hypervisor `net[].tap`, qemu `-netdev tap,ifname=`; `ip tuntap add`";
      };
      bridge = mkOption {
        type = types.nullOr vt.ifName;
        default = null;
        example = "br-lan";
        description = doc "Host bridge the tap joins; it must be declared in `networking.bridges` or as a systemd-networkd netdev of Kind bridge (an assertion refuses one nothing creates)." "`ip link set <tap> master <bridge>`, `BindsTo=`/`After=` the bridge's device unit";
      };
      hostAddress = mkOption {
        type = types.nullOr vt.cidr4;
        default = null;
        example = "10.40.0.1/24";
        description = doc "IPv4 address of the host's side of the tap (a routed link instead of a bridge; not with `bridge`)." "`ip address add <hostAddress> dev <tap>` before the VM starts";
      };
    };
    dhcp = mkOption {
      type = types.bool;
      default = false;
      description = doc "Configure by DHCP (static settings are then ignored)." "kernel `ip=:::::<if>:dhcp`";
    };
    addresses = mkOption {
      type = types.listOf vt.cidr4;
      default = [ ];
      example = [ "10.20.0.2/24" ];
      description = doc "Static IPv4 addresses (no duplicates)." "kernel `ip=<ip>:::<netmask>::<if>:none`";
    };
    routes = mkOption {
      type = types.attrsOf (types.submodule (routeModule "route4Dest"));
      default = { };
      example = {
        "0.0.0.0/0".via = "10.20.0.1";
      };
      description = doc "IPv4 routes by destination (`0.0.0.0/0` or an address)." "kernel `rd.route=<dest>:<via>:<if>`";
    };
    v6Addresses = mkOption {
      type = types.listOf vt.cidr6;
      default = [ ];
      example = [ "fd00:20::2/64" ];
      description = doc "Static IPv6 addresses (no duplicates)." "kernel `ip=[<addr>]:::::<if>:none`";
    };
    v6Routes = mkOption {
      type = types.attrsOf (types.submodule (routeModule "route6Dest"));
      default = { };
      example = {
        "::/0".via = "fd00:20::1";
      };
      description = doc "IPv6 routes by destination." "kernel `rd.route=[<dest>]:[<via>]:<if>`";
    };
  };

  interfaceModule =
    { name, ... }:
    {
      options = honoured "network.interfaces.<name>" interfaceOptions // {
        name = mkOption {
          type = vt.ifName;
          default = name;
          defaultText = literalExpression "<name>";
          readOnly = true;
          description = "The guest interface name: the attribute name, checked against the interface-name grammar.";
        };
      };
    };

  gpuModule = {
    options = honoured "gpu" {
      wayland = mkOption {
        type = types.bool;
        default = true;
        description = doc "Wayland cross-domain context." "GPU context type `cross-domain`";
      };
      opengl = mkOption {
        type = types.bool;
        default = true;
        description = doc "OpenGL through virgl." "GPU context type `virgl2`";
      };
      vulkan = mkOption {
        type = types.bool;
        default = false;
        description = doc "Vulkan through venus." "GPU context type `venus`";
      };
      allowWX = mkOption {
        type = types.nullOr types.bool;
        default = null;
        description = doc "Allow W^X memory in the GPU backend; null takes `programs.vmsilo.gpu.allowWX`." "`MemoryDenyWriteExecute=` of the GPU unit";
      };
      logLevel = mkOption {
        type = types.nullOr vt.logLevel;
        default = null;
        example = "debug";
        description = doc "GPU backend log level; null takes `programs.vmsilo.crosvm.logLevel`." "crosvm `--log-level` of `crosvm device gpu`";
      };
      seccompPolicy = mkOption {
        type = types.enum [
          "enforcing"
          "log"
        ];
        default = "enforcing";
        description = doc "Syscall filter of the GPU backend." "`SystemCallFilter=` (enforcing) or `SystemCallLog=` (log)";
      };
    };
  };

  # What defines a guest system: a VM's own, or a template's that several VMs share.
  guestOptions = {
    waylandProxy = mkOption {
      type = types.enum [
        "wayland-proxy-virtwl"
        "sommelier"
      ];
      default = "wayland-proxy-virtwl";
      description = docNix "The Wayland proxy in the guest of a GPU VM (with `gpu.wayland`): it gives the guest user the display `wayland-0` (and, through Xwayland, X11's `:0`), carried over virtio-gpu to the host's compositor. `wayland-proxy-virtwl` prefixes window titles with `[<vm>] `; `sommelier` is ChromeOS's proxy.";
    };
    guestPrograms = mkOption {
      type = types.listOf types.package;
      default = [ ];
      example = literalExpression "[ pkgs.firefox ]";
      description = docNix "Packages installed in the guest (`environment.systemPackages` of the guest system).";
    };
    guestConfig = mkOption {
      type = types.coercedTo (types.listOf types.raw) (modules: { imports = modules; }) types.deferredModule;
      default = { };
      example = literalExpression ''{ services.openssh.enable = true; }'';
      description = docNix "NixOS module (or list of modules) for the guest system, merged with vmsilo's guest modules (`nixos-module/guest/`).";
    };
  };

  templateModule = {
    options = guestOptions;
  };

  vmOptions = {
    hypervisor = mkOption {
      type = types.enum hypervisorNames;
      default = "crosvm";
      description = doc "The VMM that runs this VM." "the launcher `libexec/vmsilo/<vm>/launch`";
    };
    id = mkOption {
      type = types.nullOr (types.ints.between 3 4294967294);
      default = null;
      example = 42;
      description = doc "vsock CID and id; derived from the name when null (stable, docs/model.md)." "crosvm `--vsock cid=`, cloud-hypervisor `vsock.cid`, qemu `-device vhost-vsock-*,guest-cid=`; tap names";
    };
    memory = mkOption {
      type = types.ints.between 64 16777216;
      default = 1024;
      example = 4096;
      description = doc "Memory in MiB." "crosvm `--mem size=`, cloud-hypervisor `memory.size`, qemu `-m`";
    };
    cpus = mkOption {
      type = types.ints.between 1 512;
      default = 2;
      example = 4;
      description = doc "Virtual CPUs." "crosvm `--cpus num-cores=`, cloud-hypervisor `cpus.boot_vcpus`, qemu `-smp`";
    };
    autoStart = mkOption {
      type = types.bool;
      default = false;
      description = doc "Start at boot (GPU VMs: at graphical login)." "`Wants=` in `vmsilo.target` or `vmsilo-session.target`";
    };
    dependsOn = mkOption {
      type = types.listOf vt.vmName;
      default = [ ];
      example = [ "net" ];
      description = doc "VMs started before this one; each must be a VM of `nixosVms`, without cycles." "`Wants=` and `After=` their VM services";
    };
    color = mkOption {
      type = vt.color;
      default = "gray";
      example = "#3465a4";
      description = doc "Window colour of a GPU VM: a CSS colour name or #RRGGBB; vmsilo-gen resolves a name (an unknown one is an error) and gives the compositor `#rrggbb` in the app id of the VM's Wayland security context, for it to draw the VM's window borders with." "the Wayland security-context app id `vmsilo:<vm>:#rrggbb`, `color` in share/vmsilo/manifest.json";
    };
    disposable = {
      enable = mkOption {
        type = types.bool;
        default = false;
        description = doc "Make this VM a disposable VM: a pattern, not a VM that runs itself. `vm-run --disposable <vm> COMMAND` runs each command in a fresh instance, one of `slots` VMs `<vm>-d1`, `<vm>-d2`, … generated for it (each with its own id, MACs, taps and netvm link), with a tmpfs overlay and no disk or shared home of its own, stopped and wiped when the command ends, however it ends. The VM's name may have at most 28 characters; a disposable VM cannot have `autoStart`, a raw overlay, additional disks, a shared home, writable shares, PCI devices, vhost-user devices, fixed MACs, tap names or static addresses, and no VM may depend on it or take it as its network VM." "slot VMs `<vm>-d<N>` with every unit a VM has, and per slot `vmsilo-<vm>-d<N>_use.socket` / `_use.service`";
      };
      slots = mkOption {
        type = types.ints.between 1 16;
        default = 2;
        description = doc "How many instances may run at once: the slots, generated statically. When every slot runs a command, `vm-run --disposable` fails at once; a slot still being wiped is waited for." "slot VMs `<vm>-d1` … `<vm>-d<slots>`";
      };
      preload = mkOption {
        type = types.ints.between 0 16;
        default = 0;
        example = 1;
        description = doc "How many slots are kept booted and idle, so that a disposable command starts without a boot; a used preloaded slot boots afresh when its command ends. At most `slots`." "`Wants=` of the first `preload` slots' VM services in `vmsilo.target` (or `vmsilo-session.target`)";
      };
    };
    balloon = {
      enable = mkOption {
        type = types.bool;
        default = true;
        description = doc "A balloon device, through which vmsilo-balloond gives the guest's spare memory back to the host and returns it when the guest needs it (docs/balloon.md); the guest also hands back the pages it frees (free page reporting) and deflates the balloon itself before it would run out of memory." "crosvm's balloon (`--no-balloon` when false) with `--balloon-page-reporting`, cloud-hypervisor `balloon` with `deflate_on_oom` and `free_page_reporting`, qemu `-device virtio-balloon-*` with `free-page-reporting=on,deflate-on-oom=on`; the VM's entry in vmsilo-balloond's manifest";
      };
      minMemory = mkOption {
        type = types.nullOr (types.ints.between 16 16777216);
        default = null;
        example = 512;
        description = doc "The guest's floor in MiB: vmsilo-balloond never leaves it less memory than this; null: a quarter of `memory`, at least 64 MiB (never more than `memory`). At most `memory`." "`balloon.floor` in share/vmsilo/manifest.json, the largest balloon vmsilo-balloond sets";
      };
    };
    autoShutdown = {
      enable = mkOption {
        type = types.bool;
        default = false;
        description = doc "Power the guest off when it has been idle (no processes of the guest user)." "kernel `autoShutdown.enable=1`";
      };
      after = mkOption {
        type = types.ints.between 1 604800;
        default = 300;
        example = 60;
        description = doc "Idle seconds before power-off." "kernel `autoShutdown.after=`";
      };
    };
    kernel = mkOption {
      type = types.nullOr vt.absPath;
      default = null;
      example = literalExpression ''"''${pkgs.linuxPackages.kernel}/bzImage"'';
      description = doc "Kernel image; null boots the kernel of the guest NixOS system vmsilo builds from `guestConfig`." "crosvm KERNEL positional argument, cloud-hypervisor `payload.kernel`, qemu `-kernel`";
    };
    initramfs = mkOption {
      type = types.nullOr vt.absPath;
      default = null;
      description = doc "Initial ramdisk; null takes the built guest's." "crosvm `--initrd`, cloud-hypervisor `payload.initramfs`, qemu `-initrd`";
    };
    rootDisk = mkOption {
      type = types.nullOr (types.submodule (diskModule true));
      default = null;
      example = {
        path = "/var/lib/vmsilo/custom-root.img";
      };
      description = doc "Root image; null uses the built guest's `nixos.erofs` (then `init=` of the built system is passed). A root of your own brings its own init." "the first disk: crosvm `--block`, cloud-hypervisor `disks[0]`, qemu `-drive`";
    };
    rootDiskReadonly = mkOption {
      type = types.bool;
      default = true;
      description = doc "Whether the built `nixos.erofs` is attached read-only (only when `rootDisk` is null)." "crosvm `--block ro=`";
    };
    additionalDisks = mkOption {
      type = types.listOf (types.submodule (diskModule false));
      default = [ ];
      example = [
        {
          path = "/var/lib/vmsilo/work-data.img";
          id = "data";
        }
      ];
      description = doc "Extra disks, after the root (and the raw overlay disk)." "crosvm `--block`, cloud-hypervisor `disks[]`, qemu `-drive` with `-device virtio-blk-*`, each";
    };
    rootOverlay = {
      type = mkOption {
        type = types.enum [
          "tmpfs"
          "raw"
        ];
        default = "tmpfs";
        description = doc "Where writes over the read-only root go: memory, or an ephemeral raw disk recreated at each start. The guest image is built for it." "kernel `vmsilo.rootOverlay=`";
      };
      size = mkOption {
        type = vt.size;
        default = "10G";
        example = "20G";
        description = doc "Size of the raw ephemeral disk." "`truncate -s` of `/var/lib/vmsilo/<vm>/ephemeral.raw`";
      };
    };
    kernelParams = mkOption {
      type = types.listOf vt.kernelParam;
      default = [ ];
      example = [ "quiet" ];
      description = doc "Extra kernel parameters, last on the command line (after the guest system's own `boot.kernelParams`)." "crosvm `-p` each, cloud-hypervisor `payload.cmdline`, qemu `-append`";
    };
    sharedDirectories = mkOption {
      type = types.attrsOf (types.submodule shareModule);
      default = { };
      example = {
        projects = {
          path = "/home/alice/Projects";
          xattr = true;
        };
      };
      description = doc "virtio-fs shares by tag; mount them in the guest with `fileSystems.<dir> = { device = \"<tag>\"; fsType = \"virtiofs\"; }` in `guestConfig`." "a virtiofsd unit and a crosvm `--vhost-user type=fs` each";
    };
    sharedHome = mkOption {
      type = types.either types.bool vt.absPath;
      default = false;
      example = "/srv/vmsilo/work-home";
      description = doc "Share a per-VM home as tag `home`, mounted on `/home/user` (true: `/shared/<vm>`; a path: that directory)." "share `home`, kernel `systemd.mount-extra=home:/home/user:virtiofs:`";
    };
    gpu = mkOption {
      # `either` hides a submodule's options from the documentation; its settings are listed
      # through the submodule's own getSubOptions (checking is `either`'s, unchanged).
      type = types.either types.bool (types.submodule gpuModule) // {
        inherit (types.submodule gpuModule) getSubOptions;
      };
      default = false;
      example = {
        vulkan = true;
      };
      description = doc "GPU: false, true (the defaults below), or settings. Off unless asked for: a GPU VM needs a Wayland compositor with the security-context protocol and runs with the graphical session, not from boot; its guest gets a Wayland display (`waylandProxy`) and its windows the compositor's security context named after the VM (`color`)." "GPU backend units (crosvm's `device gpu`); crosvm `--vhost-user type=gpu`, cloud-hypervisor `generic_vhost_user` (virtio type 16); a Wayland security-context unit";
    };
    tray.enable = mkOption {
      type = types.bool;
      default = false;
      description = doc "Show the guest's tray icons (StatusNotifierItems) on the host's desktop, titled with the VM's name and tinted with its `color`; clicks, scrolling and menus go back to the guest. The guest runs a tray daemon in its user session on vsock port 5001, which only kernel vsock reaches (not cloud-hypervisor's hybrid vsock)." "`vmsilo-<vm>-tray.service` (vmsilo-tray-host, as `user`, on the user's session bus); the guest's tray daemon";
    };
    sound = {
      playback = mkOption {
        type = types.bool;
        default = false;
        description = doc "Guest audio output (the guest gets PipeWire with the original's defaults: default volume, sample rates, rtkit, `@audio` limits)." "vhost-device-sound `--streams output`";
      };
      capture = mkOption {
        type = types.bool;
        default = false;
        description = doc "Guest audio input." "vhost-device-sound `--streams input`";
      };
    };
    usbDevices = mkOption {
      type = types.listOf (
        types.submodule {
          options = honoured "usbDevices.<name>" {
            vendorId = mkOption {
              type = vt.usbId;
              example = "046d";
              description = doc "Vendor id (idVendor, as lsusb prints it), any case." "udev `ATTR{idVendor}` match (lower case)";
            };
            productId = mkOption {
              type = vt.usbId;
              example = "c52b";
              description = doc "Product id (idProduct), any case." "udev `ATTR{idProduct}` match (lower case)";
            };
            serial = mkOption {
              type = types.nullOr vt.usbSerial;
              default = null;
              description = doc "Serial number, matched exactly; null: any device with these ids." "udev `ATTR{serial}` match";
            };
          };
        }
      );
      default = [ ];
      example = [
        {
          vendorId = "046d";
          productId = "c52b";
        }
      ];
      description = doc "USB devices attached when the VM starts and whenever one is plugged in while it runs; a device already in another VM is left there. Move devices by hand with `vmsilo-usb`." "`vmsilo-<vm>-usb.service` (the USB broker's `persist`), a udev rule in `lib/udev/rules.d/70-vmsilo-usb.rules`";
    };
    pciDevices = mkOption {
      type = types.listOf (
        types.submodule {
          options = honoured "pciDevices.<name>" {
            path = mkOption {
              type = vt.pciDevice;
              example = "0000:03:00.0";
              description = doc "Device to pass through." "crosvm `--vfio /sys/bus/pci/devices/<bdf>`, cloud-hypervisor `devices[].path`, qemu `-device vfio-pci,sysfsdev=` (not on the microvm machine)";
            };
            options = mkOption {
              type = vt.kvOptions;
              default = { };
              example = {
                iommu = "viommu";
              };
              description = doc "Further crosvm `--vfio` keys." "crosvm `--vfio ...,<key>=<value>`";
            };
          };
        }
      );
      default = [ ];
      example = [ { path = "0000:03:00.0"; } ];
      description = doc "PCI passthrough; the launcher checks IOMMU groups first." "crosvm `--vfio`, cloud-hypervisor `devices[]`, qemu `-device vfio-pci`; the launcher's IOMMU group check";
    };
    vhostUser = mkOption {
      type = types.listOf (
        types.submodule {
          options = honoured "vhostUser.<name>" {
            type = mkOption {
              type = vt.vhostUserType;
              example = "net";
              description = doc "Device type." "crosvm `--vhost-user type=`";
            };
            socket = mkOption {
              type = vt.absPath;
              example = "/run/vhost-user-net.sock";
              description = doc "Backend socket." "crosvm `--vhost-user socket=`";
            };
            options = mkOption {
              type = vt.kvOptions;
              default = { };
              description = doc "Further keys (`max-queue-size`, `pci-address`)." "crosvm `--vhost-user ...,<key>=<value>`";
            };
          };
        }
      );
      default = [ ];
      example = [
        {
          type = "net";
          socket = "/run/vhost-user-net.sock";
        }
      ];
      description = doc "Extra vhost-user devices whose backends you run." "crosvm `--vhost-user` each";
    };
    network = {
      interfaces = mkOption {
        type = types.attrsOf (types.submodule interfaceModule);
        default = { };
        example = {
          eth0 = {
            dhcp = true;
            tap.bridge = "br-lan";
          };
        };
        description = doc "Guest interfaces by name (at most 16); the guest names each by its MAC." "crosvm `--net`, cloud-hypervisor `net[]`, qemu `-netdev`/`-device virtio-net-*`; host taps, kernel network parameters";
      };
      nameservers = mkOption {
        type = types.listOf vt.ip;
        default = [ ];
        example = [ "10.20.0.1" ];
        description = doc ''
          DNS servers (no duplicates). Empty on a client of a network VM (`netvm = "<vm>"`): that
          network VM, which answers DNS on its side of the link and forwards to its own resolver.
          Empty with `netvm = "host"`: the host's `networking.nameservers` (loopback ones left out,
          the VM cannot reach them), none when the host has none configured.
        '' "kernel `nameserver=`";
      };
      netvm = mkOption {
        type = types.nullOr (types.either (types.enum [ "host" ]) vt.vmName);
        default = null;
        example = "net";
        description = doc ''
          The VM this one reaches the network through (a network VM), `"host"` for the host itself as
          its gateway, or null for no such link. The link is a /31 from `programs.vmsilo.netvmRange`
          (or `netvmSubnet`): this VM gets the interface `upstream` with the lower address and a
          default route to the upper one; the network VM gets the interface `vc-<this VM>` (a hash
          when the name is too long) with the upper one, both taps on a bridge of their own that has
          no host address. When the network VM stops, this VM has no network (nothing falls back to
          the host). With `"host"`, the host holds the upper address on the tap and a firewall table
          of its own (`inet vmsilo`) forwards and masquerades this VM's traffic, dropping what it
          sends to the host itself (replies excepted) or to other such VMs; IPv4 forwarding is
          turned on.
        '' "interface `upstream` (kernel `ip=`, `rd.route=0.0.0.0/0:…`), the network VM's interface `vc-…`, a link unit `vmsilo-<vm>-uplink.service` (the bridge) or rules in `vmsilo-firewall.service`, `Wants=`/`After=` the network VM's service";
      };
      hostServices = {
        tcp = mkOption {
          type = types.listOf (types.ints.between 1 65535);
          default = [ ];
          example = [ 631 ];
          description = doc ''
            With `netvm = "host"` only: TCP ports of the host this VM may connect to on its gateway
            address (no duplicates); every other connection to the host stays dropped. The service
            must listen on that address (or on all addresses).
          '' "`tcp dport { … } accept` on the gateway address in the host's `inet vmsilo` table";
        };
        udp = mkOption {
          type = types.listOf (types.ints.between 1 65535);
          default = [ ];
          example = [ 53 ];
          description = doc ''
            With `netvm = "host"` only: UDP ports of the host this VM may send to on its gateway
            address (no duplicates), like `tcp`.
          '' "`udp dport { … } accept` on the gateway address in the host's `inet vmsilo` table";
        };
      };
      netvmSubnet = mkOption {
        type = types.nullOr vt.cidr4;
        default = null;
        example = "10.200.7.2/31";
        description = doc "This VM's address on its netvm link, given instead of derived: the lower (even) address of a /31; the gateway is the next address. It must overlap no other link and no static address." "the addresses of interface `upstream` and of the network VM's side";
      };
    };
    crosvm = {
      logLevel = mkOption {
        type = types.nullOr vt.logLevel;
        default = null;
        example = "debug";
        description = doc "Log level; null takes `programs.vmsilo.crosvm.logLevel`." "crosvm `--log-level`";
      };
      extraArgs = argList "Global crosvm options, before `run`." "crosvm global options";
      extraRunArgs = argList "Extra `run` options, after vmsilo's." "crosvm `run` options";
    };
    cloudHypervisor = {
      logLevel = mkOption {
        type = types.nullOr (types.enum chLogLevels);
        default = null;
        description = doc "Log level; null takes `programs.vmsilo.\"cloud-hypervisor\".logLevel`." chVerbosity;
      };
      extraArgs = argList "Extra cloud-hypervisor options, after `--api-socket` (VMM options: VM settings belong in `extraConfig`)." "cloud-hypervisor options";
      extraConfig = mkOption {
        type = types.attrsOf types.anything;
        default = { };
        example = literalExpression ''{ cpus.kvm_hyperv = true; platform.oem_strings = [ "x" ]; }'';
        description = doc "Merged over the generated cloud-hypervisor VM config (objects key by key, lists and values replaced, `null` removes a key)." "`share/vmsilo/<vm>/cloud-hypervisor.json` (`ch-remote create`)";
      };
    };
    qemu = {
      machine = mkOption {
        type = types.nullOr (types.enum qemuMachines);
        default = null;
        description = doc "Machine type; null takes `programs.vmsilo.qemu.machine`." "qemu `-machine`";
      };
      accel = mkOption {
        type = types.nullOr (types.enum qemuAccels);
        default = null;
        description = doc "Accelerator; null takes `programs.vmsilo.qemu.accel`." "qemu `-accel`";
      };
      cpu = mkOption {
        type = types.nullOr (vlib.grammarType "qemuCpu");
        default = null;
        example = "host";
        description = doc "CPU model; null: `host` with kvm, `qemu64` with tcg." "qemu `-cpu`";
      };
      console = mkOption {
        type = types.enum [
          "virtio"
          "serial"
        ];
        default = "virtio";
        description = doc "The guest console: a virtio console (`hvc0`, as crosvm gives) or the serial port (`ttyS0`); either is wired to the console relay." "qemu `-device virtconsole` or `-serial`";
      };
      usb = mkOption {
        type = types.bool;
        default = false;
        description = doc "Give the guest a USB controller (qemu-xhci) so that `vmsilo-usb` can attach host devices (implied by `usbDevices`); needs a PC machine (q35 or pc)." "qemu `-device qemu-xhci,id=vmsilo-xhci`";
      };
      vsock = mkOption {
        type = types.bool;
        default = true;
        description = doc "Give the guest vhost-vsock with the VM's id as CID (vm-run and `vm-shell --ssh` need it)." "qemu `-device vhost-vsock-*,guest-cid=`";
      };
      bios = mkOption {
        type = types.nullOr vt.absPath;
        default = null;
        example = literalExpression ''"''${pkgs.qboot}/bios.bin"'';
        description = doc "Firmware image (qemu-vm.nix `bios`); null: qemu's default for the machine." "qemu `-bios`";
      };
      shares9p = mkOption {
        type = types.attrsOf (types.submodule share9pModule);
        default = { };
        example = {
          media = {
            path = "/srv/media";
            readonly = true;
          };
        };
        description = doc "9p shares by tag (qemu-vm.nix `sharedDirectories`), each mounted by the guest on its `mountPoint`." "qemu `-fsdev local` + `-device virtio-9p-*` each";
      };
      extraArgs = argList "Extra qemu options for this VM, last on the command line (qemu-vm.nix `qemu.options`)." "qemu options";
    };
  }
  // guestOptions
  // {
    template = mkOption {
      type = types.nullOr vt.vmName;
      default = null;
      example = "browser";
      description = docNix "The template (`programs.vmsilo.templates.<name>`) whose guest system this VM runs: its kernel, initrd and root image are the template's, built once for every VM naming it. Set the guest's programs and modules on the template, not on the VM.";
    };
  };

  vmHonoured = honoured "" vmOptions;
  vmModule =
    { name, options, ... }:
    {
      # Whether the VM sets guest options itself, which a template's shared image cannot honour.
      config.ownGuestOptions = lib.any (o: options.${o}.highestPrio < 1500) (builtins.attrNames guestOptions);
      options = vmHonoured // {
        ownGuestOptions = mkOption {
          type = types.bool;
          internal = true;
          readOnly = true;
          description = "Whether an option of the guest system (guestPrograms, guestConfig, waylandProxy) is set on the VM (assertions.nix).";
        };
        name = mkOption {
          type = vt.vmName;
          default = name;
          defaultText = literalExpression "<name>";
          readOnly = true;
          description = "The VM's name: the attribute name, checked against the VM-name grammar (a lower-case letter, then lower-case letters, digits or `-`, not ending in `-`, at most 32 characters).";
        };
        network = vmHonoured.network // {
          isNetvm = mkOption {
            type = types.bool;
            readOnly = true;
            default = lib.any (v: v.network.netvm == name) (builtins.attrValues config.programs.vmsilo.nixosVms);
            defaultText = literalExpression "some VM has network.netvm = <name>";
            description = docNix "Whether this VM is a network VM: true when another VM names it in `network.netvm` (derived, never set). Its guest then forwards its clients' traffic, masquerading it out of its other interfaces, and drops what clients send to each other or to the guest itself (replies excepted); its interfaces towards clients are the ones named `vc-*`.";
          };
        };
      };
    };
in
{
  options.programs.vmsilo = honoured "" {
    enable = mkEnableOption "vmsilo, Qubes-style compartments: one lightweight VM per activity";

    package = mkOption {
      type = types.package;
      default = pkgs.vmsilo-gen or (pkgs.callPackage ./pkgs/vmsilo-gen.nix { });
      defaultText = literalExpression "pkgs.vmsilo-gen (from this flake's overlay) or the package built from this repository";
      description = docNix "The generator `vmsilo-gen`, run at build time over vmsilo.json.";
    };

    user = mkOption {
      type = vt.userName;
      example = "alice";
      description = ''
        The desktop user who owns the VMs. `users.users.<user>.uid` must be set (vmsilo.json
        carries numeric ids). Produces: the polkit rule's subject, `SocketUser=`, `User=` of the
        user-side helpers, the owner of user-side runtime directories. ${honouredBy}
      '';
    };

    schedulerIsolation = mkOption {
      type = types.enum [
        "full"
        "vm"
        "off"
      ];
      default = "full";
      description = docOn [
        "cloud-hypervisor"
        "crosvm"
      ] "Core scheduling: full (per vCPU), vm (per VM) or off." "crosvm `--core-scheduling=true`, `--per-vm-core-scheduling` or `--core-scheduling=false`; cloud-hypervisor `cpus.core_scheduling`";
    };

    startTimeout = mkOption {
      type = types.ints.between 1 3600;
      default = 30;
      description = doc "Seconds to wait for a backend socket or the guest to answer (the one wait constant; messages state the time really waited)." "the `wait-for-socket` deadline, the proxy's connect retry";
    };

    stopTimeout = mkOption {
      type = types.ints.between 1 3600;
      default = 30;
      description = doc "Seconds a graceful stop may take before the VMM is stopped hard (a clean shutdown first, a hard stop after the deadline)." "the stop script's deadline, `TimeoutStopSec=`";
    };

    crosvm = {
      logLevel = mkOption {
        type = vt.logLevel;
        default = "info";
        example = "info,devices=debug";
        description = doc "Default crosvm log level." "crosvm `--log-level`";
      };
      extraArgs = argList "Global crosvm options for every VM." "crosvm global options";
      extraRunArgs = argList "Extra `run` options for every VM." "crosvm `run` options";
    };

    vmsilo-tray.logLevel = mkOption {
      type = types.enum [
        "error"
        "warn"
        "info"
        "debug"
      ];
      default = "info";
      description = doc "Log level of the tray daemons of the VMs with `tray.enable`: the host's per VM and the guest's." "vmsilo-tray-host and vmsilo-tray-guest `--log-level`";
    };

    "cloud-hypervisor" = honoured "cloudHypervisor" {
      logLevel = mkOption {
        type = types.enum chLogLevels;
        default = "info";
        description = doc "Default cloud-hypervisor log level (it honours only its `-v` count, so only these four)." chVerbosity;
      };
      extraArgs = argList "Extra cloud-hypervisor options for every VM, after `--api-socket`." "cloud-hypervisor options";
      version = mkOption {
        type = types.nullOr vt.version;
        default = config.programs.vmsilo.packages.cloudHypervisor.version or null;
        defaultText = literalExpression "programs.vmsilo.packages.cloudHypervisor.version";
        description = docOn [ "cloud-hypervisor" ] "Version of `packages.cloudHypervisor`; a cloud-hypervisor VM with a GPU or sound needs 52 or later (`generic_vhost_user`). Written only when a VM uses cloud-hypervisor." "the check that refuses GPU and sound on an older cloud-hypervisor";
      };
    };

    qemu = {
      accel = mkOption {
        type = types.enum qemuAccels;
        default = "kvm";
        description = doc "Accelerator of qemu VMs and vm-exec: kvm, or tcg (software emulation: slow, but it runs where KVM cannot)." "qemu `-accel`";
      };
      machine = mkOption {
        type = types.enum qemuMachines;
        default = "microvm";
        description = doc "Machine type of qemu VMs and vm-exec." "qemu `-machine`";
      };
      extraArgs = argList "Extra qemu options for every qemu VM, after vmsilo's and before the VM's own." "qemu options";
    };

    # vm-exec runs qemu whatever the VMs use.
    vmExec = honouredOn [ "qemu" ] {
      enable = mkOption {
        type = types.bool;
        default = false;
        description = doc "Generate `vm-exec`: run a script in a throwaway qemu VM that shares the host's store (docs/vm-exec.md)." "`bin/vm-exec`";
      };
      kernel = mkOption {
        type = types.nullOr vt.absPath;
        default = null;
        description = doc "Kernel of the throwaway VM; required when enabled (the module does not build the vm-exec guest yet)." "qemu `-kernel`";
      };
      initramfs = mkOption {
        type = types.nullOr vt.absPath;
        default = null;
        description = doc "Initrd that runs the script (the guest side of docs/vm-exec.md); required when enabled." "qemu `-initrd`";
      };
      memory = mkOption {
        type = types.ints.between 64 16777216;
        default = 1024;
        description = doc "Memory in MiB." "qemu `-m`";
      };
      cpus = mkOption {
        type = types.ints.between 1 512;
        default = 1;
        description = doc "Virtual CPUs." "qemu `-smp`";
      };
      accel = mkOption {
        type = types.nullOr (types.enum qemuAccels);
        default = null;
        description = doc "Accelerator; null takes `programs.vmsilo.qemu.accel`." "qemu `-accel`";
      };
      machine = mkOption {
        type = types.nullOr (types.enum qemuMachines);
        default = null;
        description = doc "Machine type; null takes `programs.vmsilo.qemu.machine`." "qemu `-machine`";
      };
      storeDir = mkOption {
        type = vt.absPath;
        default = "/nix/store";
        description = doc "The host store, shared read-only as tag `nix-store`." "virtiofsd `--shared-dir`";
      };
      kernelParams = mkOption {
        type = types.listOf vt.kernelParam;
        default = [ ];
        description = doc "Extra kernel parameters, after vm-exec's own." "qemu `-append`";
      };
      extraArgs = argList "Extra qemu options, before the ones given after `--`." "qemu options";
      timeout = mkOption {
        type = types.ints.between 0 604800;
        default = 0;
        example = 600;
        description = doc "Seconds the VM may run before vm-exec stops it and exits 125; 0: no limit." "`timeout` around qemu";
      };
    };

    netvmRange = mkOption {
      type = vt.cidr4;
      default = "10.200.0.0/16";
      description = doc "The IPv4 pool netvm links are taken from: a network address with a prefix of at most /30, split into /31 links. Each (network VM, client) pair gets the /31 a hash of the two names picks, so adding or removing another VM moves no address; two pairs picking the same /31 is an error naming both (set `netvmSubnet` on one). Keep the pool large (the default holds 32768 links) and out of the networks the host and the network VMs reach." "the addresses of every netvm link (interfaces `upstream` and `vc-…`)";
    };

    isolatedPciDevices = mkOption {
      type = types.listOf vt.pciBdf;
      default = [ ];
      example = [ "0000:03:00.0" ];
      description = doc "PCI devices taken from the host's drivers and bound to vfio-pci early at boot, before the host's network and any VM start, so only a VM ever drives them (for example the Wi-Fi card of a network VM). Binding refuses a device the host is using (a network interface of it up, the boot display). Loads the vfio-pci module." "`vmsilo-vfio-bind.service` (`libexec/vmsilo/vfio-bind`), `Requires=`/`After=` it in the VM services passing one of them";
    };

    gpu.allowWX = mkOption {
      type = types.bool;
      default = false;
      description = doc "Default of `nixosVms.<vm>.gpu.allowWX`." "`MemoryDenyWriteExecute=` of GPU backends";
    };

    "vmsilo-balloond" = {
      logLevel = mkOption {
        type = types.enum [
          "error"
          "warn"
          "info"
          "debug"
        ];
        default = "info";
        description = doc "What the daemon logs: errors, warnings, each balloon change (info), or every poll's figures (debug)." "vmsilo-balloond `--log-level`";
      };
      pollInterval = mkOption {
        type = vt.duration;
        default = "2s";
        description = doc "Time between two polls of the host and the guests while nothing is under pressure." "vmsilo-balloond `--poll-interval`";
      };
      minPollInterval = mkOption {
        type = vt.duration;
        default = "250ms";
        description = doc "The shortest time between two polls: used while the host is in critical pressure, a guest is short of memory or a balloon is moving, and approached as the host's pressure rises towards `psiCeiling`; at most `pollInterval`." "vmsilo-balloond `--min-poll-interval`";
      };
      criticalHostPercent = mkOption {
        type = types.ints.between 1 99;
        default = 5;
        description = doc "The host is in critical pressure when its available memory (MemAvailable) is below this percentage of its total: guests then keep only `criticalGuestAvailable` spare, and the daemon polls at `minPollInterval`." "vmsilo-balloond `--critical-host-percent`";
      };
      criticalGuestAvailable = mkOption {
        type = vt.size;
        default = "96M";
        description = doc "A guest with less available memory than this is short of memory: its balloon gives back at once what takes it up to `guestAvailableBias`, whatever the host's state. It is also the least a guest keeps when the host is in critical pressure." "vmsilo-balloond `--critical-guest-available`";
      };
      guestAvailableBias = mkOption {
        type = vt.size;
        default = "256M";
        description = doc "The available memory each guest keeps while the host is calm: the balloon takes what a guest has beyond it and gives back what it lacks. Under host pressure the amount falls linearly towards `criticalGuestAvailable` as the pressure approaches `psiCeiling`. At least `criticalGuestAvailable`." "vmsilo-balloond `--guest-available-bias`";
      };
      psiCeiling = mkOption {
        type = types.ints.between 1 100;
        default = 20;
        description = doc "The host's memory pressure (PSI `some avg10`, the percentage of time some task waited for memory over the last 10 s) that counts as critical; below it, pressure scales the guests' spare memory and the poll interval between their calm and critical values." "vmsilo-balloond `--psi-ceiling`";
      };
      extraArgs = argList "Extra vmsilo-balloond options, after vmsilo's." "vmsilo-balloond options";
    };

    packages = {
      bash = packageOption {
        name = "bash";
        default = pkgs.bash;
        defaultText = "pkgs.bash";
        nullable = false;
        neededFor = "the interpreter of every generated script";
      };
      coreutils = packageOption {
        name = "coreutils";
        default = pkgs.coreutils;
        defaultText = "pkgs.coreutils";
        nullable = false;
        neededFor = "`install`, `rm`, `truncate`, `timeout`, … in units and scripts";
      };
      systemd = packageOption {
        name = "systemd";
        default = config.systemd.package;
        defaultText = "config.systemd.package";
        nullable = false;
        neededFor = "`systemctl` in vm-start, vm-stop and the session binding";
      };
      socat = packageOption {
        name = "socat";
        default = pkgs.socat;
        defaultText = "pkgs.socat";
        nullable = false;
        neededFor = "the console relay, vm-shell and the vsock proxy";
      };
      crosvm = packageOption {
        name = "crosvm";
        default = pkgs.crosvm;
        defaultText = "pkgs.crosvm";
        neededFor = "required when a VM uses crosvm or has a GPU (the GPU backend is crosvm's)";
      };
      cloudHypervisor = packageOption {
        name = "cloudHypervisor";
        default = pkgs.cloud-hypervisor or null;
        defaultText = "pkgs.cloud-hypervisor";
        neededFor = "required when a VM uses cloud-hypervisor (its `bin/cloud-hypervisor` and `bin/ch-remote`)";
      };
      vmsiloTools = packageOption {
        name = "vmsiloTools";
        default = pkgs.vmsilo-tools or (pkgs.callPackage ./pkgs/vmsilo-tools.nix { });
        defaultText = "pkgs.vmsilo-tools (from this flake's overlay) or the package built from this repository";
        nullable = false;
        neededFor = "the vm-run programs: `vm-run` and the per-connection `vmsilo-vsock-proxy` of every VM's command socket on the host, and `vmsilo-agent`, the command agent on vsock port 5000 of every built guest (the same package)";
      };
      qemu = packageOption {
        name = "qemu";
        default = pkgs.qemu_kvm or null;
        defaultText = "pkgs.qemu_kvm";
        neededFor = "required when a VM uses qemu, when `vmExec.enable` is set, or a qcow2 disk is created (its `bin/qemu-system-x86_64` and `bin/qemu-img`)";
      };
      virtiofsd = packageOption {
        name = "virtiofsd";
        default = pkgs.virtiofsd;
        defaultText = "pkgs.virtiofsd";
        neededFor = "required when a VM has a share or `sharedHome`";
      };
      openssh = packageOption {
        name = "openssh";
        default = config.programs.ssh.package or pkgs.openssh;
        defaultText = "config.programs.ssh.package";
        neededFor = "`ssh` of `vm-shell --ssh`, which is refused when this is null";
      };
      wlClipboard = packageOption {
        name = "wlClipboard";
        default = pkgs.wl-clipboard;
        defaultText = "pkgs.wl-clipboard";
        neededFor = "`wl-copy` and `wl-paste` of `vm-clipboard` on the host, which says it is not available when this is null";
      };
      jq = packageOption {
        name = "jq";
        default = pkgs.jq;
        defaultText = "pkgs.jq";
        neededFor = "`jq` of `vm-list` and `vm-status`, which say they are not available when this is null";
      };
      iproute2 = packageOption {
        name = "iproute2";
        default = pkgs.iproute2;
        defaultText = "pkgs.iproute2";
        neededFor = "required when a VM has a network interface";
      };
      nftables = packageOption {
        name = "nftables";
        default = pkgs.nftables;
        defaultText = "pkgs.nftables";
        neededFor = "required when a VM has `network.netvm` set (the host's `inet vmsilo` table)";
      };
      vhostDeviceSound = packageOption {
        name = "vhostDeviceSound";
        default = pkgs.vhost-device-sound;
        defaultText = "pkgs.vhost-device-sound";
        neededFor = "required when a VM has sound";
      };
      waylandSeccontext = packageOption {
        name = "waylandSeccontext";
        # Its `wayland` output; null when a package given as vmsiloTools has none.
        default = config.programs.vmsilo.packages.vmsiloTools.wayland or null;
        defaultText = "config.programs.vmsilo.packages.vmsiloTools.wayland";
        neededFor = "required when a VM has a GPU (its `bin/vmsilo-wayland-seccontext` creates the VM's Wayland security context)";
      };
      vmsiloTray = packageOption {
        name = "vmsiloTray";
        # Its `tray` output; null when a package given as vmsiloTools has none.
        default = config.programs.vmsilo.packages.vmsiloTools.tray or null;
        defaultText = "config.programs.vmsilo.packages.vmsiloTools.tray";
        neededFor = "required when a VM has `tray.enable` (its `bin/vmsilo-tray-host` on the host, `bin/vmsilo-tray-guest` in the guest)";
      };
      vulkanLoader = packageOption {
        name = "vulkanLoader";
        default = pkgs.vulkan-loader;
        defaultText = "pkgs.vulkan-loader";
        neededFor = "required when a VM has a GPU (`LD_LIBRARY_PATH` of the GPU backend)";
      };
    };

    nixosVms = mkOption {
      type = types.attrsOf (types.submodule vmModule);
      default = { };
      example = literalExpression ''
        {
          work = {
            memory = 4096;
            cpus = 4;
            sharedHome = true;
            guestPrograms = [ pkgs.firefox ];
          };
        }
      '';
      description = "The VMs, by name. Each gets a NixOS guest system built from its `guestConfig` and `guestPrograms` unless `kernel`, `initramfs` and `rootDisk` are all given.";
    };

    templates = mkOption {
      type = types.attrsOf (types.submodule templateModule);
      default = { };
      example = literalExpression ''
        {
          browser.guestPrograms = [ pkgs.firefox ];
        }
      '';
      description = docNix "Guest systems several VMs share, by name: a VM with `template = \"<name>\"` runs the template's guest system, evaluated and packed into one image for all of them, while everything that differs between the VMs (name, network, shares, overlay disk) still reaches each guest on its own kernel command line. A template nobody names is not built.";
    };

    guestBuilder = mkOption {
      type = types.functionTo types.raw;
      internal = true;
      default = import ./rootfs { inherit lib pkgs; };
      defaultText = literalExpression "import ./rootfs { inherit lib pkgs; }";
      description = ''
        Builds one VM's guest: called with `{ name, vm, cfg }`, returns `{ kernel, initrd,
        rootImage, init, kernelParams, toplevel, rootfs }` (store paths as strings). Tests replace
        it with a stub; nothing else should.
      '';
    };

    internal.hypervisors = mkOption {
      type = types.attrsOf (
        types.submodule {
          options.description = mkOption { type = types.str; };
          options.package = mkOption { type = types.str; };
          options.unprivilegedVmm = mkOption {
            type = types.bool;
            default = false;
          };
          options.unsupported = mkOption {
            type = types.attrsOf types.str;
            default = { };
          };
        }
      );
      internal = true;
      visible = false;
      default = { };
      description = "The hypervisor table of hypervisors.nix (features each refuses, whether its VMM runs without root), defined below so tests can add to it.";
    };

    build =
      lib.mapAttrs
        (
          _: description:
          mkOption {
            type = types.raw;
            readOnly = true;
            inherit description;
          }
        )
        {
          json = "The vmsilo.json document as a Nix value (serialise.nix).";
          configFile = "vmsilo.json in the store (serialise.nix).";
          guests = "Each VM's built guest (`kernel`, `initrd`, `rootImage`, `toplevel`, …), by VM name (serialise.nix).";
          guestSystems = "The guest systems built, each once: `templates.<t>` for the templates VMs name, `vms.<vm>` for VMs with a guest of their own (serialise.nix).";
          generated = "The output of `vmsilo-gen render` over vmsilo.json (generate.nix).";
          graph = "The topology of the VMs as `vmsilo.dot` and `vmsilo.svg` (`vmsilo-gen graph`, drawn by Graphviz), built when asked for: `nix build .#nixosConfigurations.<host>.config.programs.vmsilo.build.graph`.";
        };
  };

  config.programs.vmsilo.internal.hypervisors = hypervisors;
}
