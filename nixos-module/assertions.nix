# Cross-field checks the option types cannot express. Each message starts with the option path
# it is about, like the generator's (`programs.vmsilo.nixosVms.work.dependsOn: …`). Whatever gets
# past these is checked again by `vmsilo-gen render` in the build (generate.nix).
{
  config,
  lib,
  ...
}:
let
  cfg = config.programs.vmsilo;
  vlib = import ./lib.nix { inherit lib; };
  vmNames = builtins.attrNames cfg.nixosVms;
  vmList = lib.mapAttrsToList (name: vm: { inherit name vm; }) cfg.nixosVms;
  at = name: "programs.vmsilo.nixosVms.${vlib.pathKey name}";
  quoteList = l: lib.concatMapStringsSep ", " builtins.toJSON l;

  # --- the host user ----------------------------------------------------------------------------
  user = config.users.users.${cfg.user} or null;
  group = if user == null then "" else user.group or "";
  userAssertions = [
    {
      assertion = user != null;
      message = "programs.vmsilo.user: ${builtins.toJSON cfg.user} is not a user of users.users; declare it (with a uid).";
    }
    {
      assertion = user == null || (user.uid or null) != null;
      message = "programs.vmsilo.user: users.users.${cfg.user}.uid must be set (vmsilo.json carries the numeric uid), for example users.users.${cfg.user}.uid = 1000;";
    }
    {
      assertion = user == null || (group != "" && (config.users.groups.${group}.gid or null) != null);
      message = "programs.vmsilo.user: the primary group of ${cfg.user} (users.users.${cfg.user}.group = ${builtins.toJSON group}) must be a group of users.groups with a gid.";
    }
  ];

  # --- dependsOn ---------------------------------------------------------------------------------
  dependsOnAssertions = lib.concatMap (
    { name, vm }:
    let
      unknown = lib.filter (d: !(cfg.nixosVms ? ${d})) vm.dependsOn;
    in
    [
      {
        assertion = unknown == [ ];
        message = "${at name}.dependsOn: names ${quoteList unknown}, which ${
          if builtins.length unknown == 1 then "is not a VM" else "are not VMs"
        } of programs.vmsilo.nixosVms (known: ${lib.concatStringsSep ", " vmNames}).";
      }
      {
        assertion = !(builtins.elem name vm.dependsOn);
        message = "${at name}.dependsOn: names the VM itself.";
      }
    ]
  ) vmList;

  # A cycle through two or more VMs (self-dependencies are reported above): a VM that reaches
  # itself through the dependsOn of other VMs. builtins.genericClosure walks what each VM reaches
  # (by name lookups, so about one step per dependency in the shallow graphs of real hosts);
  # lib.toposort, which is at least quadratic in the number of VMs, runs only to name the cycle.
  # `before a b` means b depends on a.
  dependenciesOf =
    name:
    map (key: { inherit key; }) (
      lib.filter (d: d != name && cfg.nixosVms ? ${d}) cfg.nixosVms.${name}.dependsOn
    );
  reachesItself =
    name:
    lib.any (e: e.key == name) (
      builtins.genericClosure {
        startSet = dependenciesOf name;
        operator = e: dependenciesOf e.key;
      }
    );
  sorted = lib.toposort (
    a: b: a.name != b.name && builtins.elem a.name b.vm.dependsOn
  ) vmList;
  cycleAssertions = [
    {
      assertion = !(lib.any reachesItself vmNames);
      message = "programs.vmsilo.nixosVms: dependsOn forms a cycle: ${
        lib.concatMapStringsSep " -> " (e: e.name) (sorted.cycle or [ ] ++ lib.take 1 (sorted.loops or [ ]))
      }.";
    }
  ];

  # --- hypervisor × feature ----------------------------------------------------------------------
  # Each feature a hypervisor may refuse: the option path under the VM and when it is in use.
  features = {
    gpu = vm: vm.gpu != false;
    sound = vm: vm.sound.playback || vm.sound.capture;
    "tray.enable" = vm: vm.tray.enable;
    pciDevices = vm: vm.pciDevices != [ ];
    usbDevices = vm: vm.usbDevices != [ ];
    vhostUser = vm: vm.vhostUser != [ ];
    additionalDisks = vm: vm.additionalDisks != [ ];
    sharedDirectories = vm: vm.sharedDirectories != { };
    sharedHome = vm: vm.sharedHome != false;
    "network.interfaces" = vm: vm.network.interfaces != { };
    "rootOverlay.type" = vm: vm.rootOverlay.type == "raw";
    "crosvm.logLevel" = vm: vm.crosvm.logLevel != null;
    "crosvm.extraArgs" = vm: vm.crosvm.extraArgs != [ ];
    "crosvm.extraRunArgs" = vm: vm.crosvm.extraRunArgs != [ ];
    "cloudHypervisor.logLevel" = vm: vm.cloudHypervisor.logLevel != null;
    "cloudHypervisor.extraArgs" = vm: vm.cloudHypervisor.extraArgs != [ ];
    "cloudHypervisor.extraConfig" = vm: vm.cloudHypervisor.extraConfig != { };
    "qemu.machine" = vm: vm.qemu.machine != null;
    "qemu.accel" = vm: vm.qemu.accel != null;
    "qemu.cpu" = vm: vm.qemu.cpu != null;
    "qemu.console" = vm: vm.qemu.console != "virtio";
    "qemu.vsock" = vm: !vm.qemu.vsock;
    "qemu.usb" = vm: vm.qemu.usb;
    "qemu.bios" = vm: vm.qemu.bios != null;
    "qemu.shares9p" = vm: vm.qemu.shares9p != { };
    "qemu.extraArgs" = vm: vm.qemu.extraArgs != [ ];
    "network.interfaces.<name>.type" = vm: lib.any (i: i.type == "user") (builtins.attrValues vm.network.interfaces);
  };
  featureAssertions = lib.concatMap (
    { name, vm }:
    let
      hv = cfg.internal.hypervisors.${vm.hypervisor};
    in
    lib.mapAttrsToList (feature: reason: {
      assertion =
        !(features.${feature} or (throw "vmsilo: hypervisors.nix names an unknown feature ${feature}")) vm;
      message = "${at name}.${feature}: not supported by ${vm.hypervisor} (${reason}).";
    }) hv.unsupported
  ) vmList;

  # --- packages the VMs need ---------------------------------------------------------------------
  usersOf = pred: map (e: e.name) (lib.filter (e: pred e.vm) vmList);
  needPackage =
    pkg: why: pred:
    let
      users = usersOf pred;
    in
    {
      assertion = users == [ ] || cfg.packages.${pkg} != null;
      message = "programs.vmsilo.packages.${pkg}: is required by ${why} of ${
        if builtins.length users == 1 then "VM" else "VMs"
      } ${lib.concatStringsSep ", " users}, got null.";
    };
  packageAssertions =
    lib.mapAttrsToList (
      hvName: hv: needPackage hv.package "the hypervisor" (vm: vm.hypervisor == hvName)
    ) cfg.internal.hypervisors
    ++ [
      (needPackage "virtiofsd" "the shares" (vm: vm.sharedDirectories != { } || vm.sharedHome != false))
      (needPackage "iproute2" "the network interfaces" (vm: vm.network.interfaces != { } || vm.network.netvm != null))
      (needPackage "nftables" "the host firewall of network.netvm" (vm: vm.network.netvm != null))
      (needPackage "vhostDeviceSound" "the sound" (vm: vm.sound.playback || vm.sound.capture))
      (needPackage "vmsiloTray" "the tray (the `tray` output of packages.vmsiloTools)" (vm: vm.tray.enable))
      (
        needPackage "waylandSeccontext" "the GPU (vmsilo-wayland-seccontext, the `wayland` output of packages.vmsiloTools)" (
          vm: vm.gpu != false
        )
      )
      (needPackage "vulkanLoader" "the GPU" (vm: vm.gpu != false))
      # The GPU backend is crosvm's vhost-user device whatever the VMM.
      (needPackage "crosvm" "the GPU backend (crosvm device gpu)" (vm: vm.gpu != false && vm.hypervisor != "crosvm"))
    ];

  # --- per-VM shapes the types cannot see ----------------------------------------------------------
  duplicates =
    l: lib.unique (lib.filter (x: lib.count (y: y == x) l > 1) l);
  noDuplicates = path: l: {
    assertion = duplicates l == [ ];
    message = "${path}: lists ${quoteList (duplicates l)} more than once.";
  };
  shapeAssertions = lib.concatMap (
    { name, vm }:
    [
      (noDuplicates "${at name}.dependsOn" vm.dependsOn)
      (noDuplicates "${at name}.network.nameservers" vm.network.nameservers)
      {
        assertion = !(vm.sharedHome != false && vm.sharedDirectories ? home);
        message = "${at name}.sharedDirectories.home: conflicts with sharedHome, which defines the share \"home\"; remove one of them.";
      }
      {
        assertion = builtins.length (builtins.attrNames vm.network.interfaces) <= 16;
        message = "${at name}.network.interfaces: at most 16 interfaces, got ${toString (builtins.length (builtins.attrNames vm.network.interfaces))}.";
      }
    ]
    ++ lib.concatLists (
      lib.mapAttrsToList (ifName: i: [
        (noDuplicates "${at name}.network.interfaces.${vlib.pathKey ifName}.addresses" i.addresses)
        (noDuplicates "${at name}.network.interfaces.${vlib.pathKey ifName}.v6Addresses" i.v6Addresses)
      ]) vm.network.interfaces
    )
  ) vmList;

  # --- where the guest mounts the shares (the generator checks the same: src/model/model.ts) --------
  reservedMountRoots = [
    "/nix"
    "/proc"
    "/sys"
    "/dev"
    "/run"
  ];
  mountAssertions = lib.concatMap (
    { name, vm }:
    let
      share = kind: tag: s: {
        at = "${at name}.${kind}.${tag}";
        where = if s.mountPoint == null then "/mnt/${tag}" else s.mountPoint;
      };
      mounts =
        lib.optional (vm.sharedHome != false) {
          at = "${at name}.sharedHome";
          where = "/home/user";
        }
        ++ lib.mapAttrsToList (share "sharedDirectories") vm.sharedDirectories
        ++ lib.optionals (vm.hypervisor == "qemu") (lib.mapAttrsToList (share "qemu.shares9p") vm.qemu.shares9p);
      clash = duplicates (map (m: m.where) mounts);
    in
    map (m: {
      assertion =
        !(lib.any (c: c == "" || c == "." || c == "..") (lib.drop 1 (lib.splitString "/" m.where)))
        && !(lib.any (r: m.where == r || lib.hasPrefix "${r}/" m.where) reservedMountRoots);
      message = "${m.at}.mountPoint: must be a normalised path (no empty, \".\" or \"..\" components, no trailing \"/\"), not \"/\", and not ${lib.concatStringsSep ", " reservedMountRoots} or under them (the guest system's own mounts), got ${builtins.toJSON m.where}.";
    }) (lib.filter (m: m.at != "${at name}.sharedHome") mounts)
    ++ [
      {
        assertion = clash == [ ];
        message = "${at name}: more than one share is mounted on ${quoteList clash}; give each share its own mountPoint (the shared home is on /home/user).";
      }
    ]
  ) vmList;

  # --- bridges: the VM units BindsTo= each tap's bridge, which nothing of vmsilo creates -----------
  # Declared as networking.bridges.<name>, or as a systemd-networkd netdev of Kind bridge.
  netdevBridges = lib.concatMap (
    n: lib.optional ((n.netdevConfig.Kind or null) == "bridge") (n.netdevConfig.Name or null)
  ) (builtins.attrValues (config.systemd.network.netdevs or { }));
  declaredBridge = b: config.networking.bridges ? ${b} || builtins.elem b netdevBridges;
  bridgeAssertions = lib.concatMap (
    { name, vm }:
    lib.mapAttrsToList (ifName: i: {
      assertion = i.type != "tap" || i.tap.bridge == null || declaredBridge i.tap.bridge;
      message = "${at name}.network.interfaces.${vlib.pathKey ifName}.tap.bridge: ${builtins.toJSON i.tap.bridge} is not a bridge of this host; declare it in networking.bridges (networking.bridges.${vlib.pathKey (toString i.tap.bridge)}.interfaces = [ ];) or as a systemd.network netdev of Kind bridge, or set tap.bridge = null.";
    }) vm.network.interfaces
  ) vmList;

  # --- templates: one image for every VM naming it --------------------------------------------
  templateNames = builtins.attrNames cfg.templates;
  # What shapes a guest image besides its programs and modules (rootfs/default.nix), as the
  # option path and the value each VM gives it.
  imageShape = vm: [
    {
      option = "rootOverlay.type";
      value = vm.rootOverlay.type;
    }
    {
      option = "sharedHome";
      value = if vm.sharedHome == false then "off" else "on";
    }
    {
      option = "hypervisor";
      value = if vm.hypervisor == "cloud-hypervisor" then "cloud-hypervisor" else "crosvm or qemu (vhost-vsock)";
    }
    {
      option = "sound.playback";
      value = vm.sound.playback;
    }
    {
      option = "sound.capture";
      value = vm.sound.capture;
    }
    {
      # The guest's tray daemon (guest/tray.nix).
      option = "tray.enable";
      value = vm.tray.enable;
    }
    {
      # A GPU that carries Wayland gives the guest its display proxy (guest/wayland.nix).
      option = "gpu";
      value = if vm.gpu == true || (vm.gpu != false && vm.gpu.wayland) then "a GPU with Wayland" else "no Wayland display";
    }
    {
      # A network VM's image forwards and filters its clients' traffic (guest/netvm.nix).
      option = "network.isNetvm";
      value = vm.network.isNetvm;
    }
  ];
  templateAssertions = lib.concatMap (
    { name, vm }:
    let
      t = vm.template;
      first = lib.findFirst (o: o.vm.template == t && vlib.needsGuest o.vm) null vmList;
    in
    lib.optionals (t != null) (
      [
        {
          assertion = cfg.templates ? ${t};
          message = "${at name}.template: ${builtins.toJSON t} is not a template of programs.vmsilo.templates (known: ${
            if templateNames == [ ] then "none" else lib.concatStringsSep ", " templateNames
          }).";
        }
        {
          assertion = !vm.ownGuestOptions;
          message = "${at name}: sets guestPrograms, guestConfig or waylandProxy, but runs template ${builtins.toJSON t}, whose image other VMs share; set them in programs.vmsilo.templates.${vlib.pathKey t}, or remove template to give the VM a guest of its own.";
        }
        {
          assertion = vlib.needsGuest vm;
          message = "${at name}.template: the VM brings its own kernel, initramfs and rootDisk, so it runs no template; remove template or one of them.";
        }
      ]
      ++ lib.optionals (first != null && first.name != name) (
        lib.zipListsWith (mine: theirs: {
          assertion = mine.value == theirs.value;
          message = "${at name}.${mine.option}: is ${builtins.toJSON mine.value}, but VM ${builtins.toJSON first.name} on the same template ${builtins.toJSON t} has ${builtins.toJSON theirs.value}; one image serves both, so they must agree (or give ${name} a template or guest of its own).";
        }) (imageShape vm) (imageShape first.vm)
      )
    )
  ) vmList;

  # --- netvm links (the generator allocates them and checks overlaps; these are what one VM shows) ---
  netvmAssertions = lib.concatMap (
    { name, vm }:
    let
      n = vm.network;
      subnet = if n.netvmSubnet == null then null else lib.splitString "/" n.netvmSubnet;
      lastOctet = s: lib.toInt (lib.last (lib.splitString "." s));
      portList = lib.concatMapStringsSep ", " toString;
    in
    [
      {
        assertion = n.netvm == null || n.netvm == "host" || (n.netvm != name && cfg.nixosVms ? ${n.netvm});
        message = "${at name}.network.netvm: must name another VM of programs.vmsilo.nixosVms (${lib.concatStringsSep ", " vmNames}) or \"host\", got ${builtins.toJSON n.netvm}.";
      }
      {
        assertion = subnet == null || (n.netvm != null && builtins.elemAt subnet 1 == "31" && lib.mod (lastOctet (builtins.head subnet)) 2 == 0);
        message = "${at name}.network.netvmSubnet: must be the lower (even) address of a /31, like \"10.200.7.2/31\", on a VM with network.netvm set, got ${builtins.toJSON n.netvmSubnet}.";
      }
      (noDuplicates "${at name}.network.hostServices.tcp" n.hostServices.tcp)
      (noDuplicates "${at name}.network.hostServices.udp" n.hostServices.udp)
    ]
    ++ lib.mapAttrsToList (proto: ports: {
      assertion = n.netvm == "host" || ports == [ ];
      message = "${at name}.network.hostServices.${proto}: applies only to a VM whose gateway is the host (network.netvm = \"host\"), got ports ${portList ports} and netvm ${builtins.toJSON n.netvm}.";
    }) { inherit (n.hostServices) tcp udp; }
    ++ [
      {
        assertion = n.netvm == null || !(n.interfaces ? upstream);
        message = "${at name}.network.interfaces.upstream: is the interface network.netvm (${builtins.toJSON n.netvm}) gives this VM; rename it.";
      }
    ]
    ++ lib.concatLists (
      lib.mapAttrsToList (ifName: i: [
        {
          assertion = !(lib.hasPrefix "vc-" ifName);
          message = "${at name}.network.interfaces.${vlib.pathKey ifName}: names an interface with the prefix \"vc-\", which is for the interfaces a network VM gets towards its clients (network.netvm); rename it.";
        }
        {
          assertion = i.tap.hostAddress == null || i.tap.bridge == null;
          message = "${at name}.network.interfaces.${vlib.pathKey ifName}.tap.hostAddress: must be null for a tap on a bridge (tap.bridge = ${builtins.toJSON i.tap.bridge}): the host's address belongs on the bridge.";
        }
      ]) n.interfaces
    )
  ) vmList;

  # --- vm-exec (docs/vm-exec.md): what it boots is not built by the module yet ------------------
  vmExecAssertions = lib.optionals cfg.vmExec.enable [
    {
      assertion = cfg.vmExec.kernel != null && cfg.vmExec.initramfs != null;
      message = "programs.vmsilo.vmExec: kernel and initramfs must be set when vmExec.enable is true (an initrd implementing docs/vm-exec.md's guest side).";
    }
    {
      assertion = cfg.packages.qemu != null && cfg.packages.virtiofsd != null;
      message = "programs.vmsilo.vmExec: packages.qemu and packages.virtiofsd are required by vmExec.enable, got null.";
    }
  ];
in
{
  config = lib.mkIf cfg.enable {
    assertions =
      userAssertions
      ++ dependsOnAssertions
      ++ cycleAssertions
      ++ featureAssertions
      ++ packageAssertions
      ++ shapeAssertions
      ++ mountAssertions
      ++ bridgeAssertions
      ++ templateAssertions
      ++ netvmAssertions
      ++ vmExecAssertions;
  };
}
