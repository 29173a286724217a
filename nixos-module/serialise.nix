# config.programs.vmsilo → vmsilo.json, schema version 1, exactly as docs/schema.md describes it:
# every field written (defaults resolved), every store path filled in, nothing the generator
# computes itself (ids, MACs, taps, the kernel command line). Nix never reads anything back.
{
  config,
  lib,
  pkgs,
  ...
}:
let
  cfg = config.programs.vmsilo;
  vms = builtins.attrValues cfg.nixosVms;
  anyVm = pred: lib.any pred vms;
  anyCloudHypervisor = anyVm (vm: vm.hypervisor == "cloud-hypervisor");

  # A package's store path as a string (the generator calls `<path>/bin/<program>`).
  storePath = p: if p == null then null else "${p}";
  ifUsed = used: p: if used then storePath p else null;

  # A VM without its own kernel, initrd and root gets a NixOS guest built by vmsilo.
  inherit (import ./lib.nix { inherit lib; }) needsGuest;
  # One guest system per template that some VM names (the first of them by name gives what shapes
  # the image: overlay, shared home, hypervisor, sound; assertions.nix makes the others agree), and
  # one per VM with a guest of its own.
  onTemplate = t: lib.filter (vm: vm.template == t && needsGuest vm) vms;
  templateGuests = lib.mapAttrs (
    t: tpl:
    cfg.guestBuilder {
      name = t;
      vm = builtins.head (onTemplate t) // { inherit (tpl) guestPrograms guestConfig waylandProxy; };
      inherit cfg;
    }
  ) (lib.filterAttrs (t: _: onTemplate t != [ ]) cfg.templates);
  ownGuests = lib.listToAttrs (
    map (vm: lib.nameValuePair vm.name (cfg.guestBuilder {
      inherit (vm) name;
      inherit vm cfg;
    })) (lib.filter (vm: vm.template == null && needsGuest vm) vms)
  );
  guests = ownGuests // lib.listToAttrs (
    map (vm: lib.nameValuePair vm.name templateGuests.${vm.template}) (lib.filter (vm: vm.template != null && needsGuest vm && templateGuests ? ${vm.template}) vms)
  );

  hostUser = config.users.users.${cfg.user} or { };
  group = hostUser.group or null;
  uid = hostUser.uid or null;

  # Submodule values also hold `_module` and the read-only name fields: pick schema fields only.
  pick = names: attrs: lib.genAttrs names (n: attrs.${n});

  disk = d: {
    inherit (d)
      path
      ro
      id
      format
      createSize
      ;
    options = d.options;
  };

  share = pick [
    "path"
    "mountPoint"
    "threadPoolSize"
    "inodeFileHandles"
    "cache"
    "logLevel"
    "xattr"
    "posixAcl"
    "readonly"
    "allowMmap"
    "enableReaddirplus"
    "writeback"
    "allowDirectIo"
    "killprivV2"
    "preserveNoatime"
    "uidMap"
    "gidMap"
    "translateUid"
    "translateGid"
  ];

  # Attribute sets keyed by a checked name: reading `key` forces its grammar type.
  byName = key: f: attrs: lib.listToAttrs (map (v: lib.nameValuePair v.${key} (f v)) (builtins.attrValues attrs));

  route = r: { inherit (r) via; };

  forward = f: {
    inherit (f) from proto;
    host = { inherit (f.host) address port; };
    guest = { inherit (f.guest) address port; };
  };

  iface = i: {
    forwardPorts = map forward i.forwardPorts;
    inherit (i)
      type
      restrictNetwork
      macAddress
      dhcp
      addresses
      v6Addresses
      ;
    tap = { inherit (i.tap) name bridge hostAddress; };
    routes = byName "destination" route i.routes;
    v6Routes = byName "destination" route i.v6Routes;
  };

  gpu =
    g:
    if builtins.isBool g then
      g
    else
      pick [
        "wayland"
        "opengl"
        "vulkan"
        "allowWX"
        "logLevel"
        "seccompPolicy"
      ] g;

  vmJson =
    vm:
    let
      guest = guests.${vm.name} or null;
    in
    {
      inherit (vm)
        hypervisor
        id
        memory
        cpus
        autoStart
        dependsOn
        color
        sharedHome
        ;
      autoShutdown = { inherit (vm.autoShutdown) enable after; };
      disposable = { inherit (vm.disposable) enable slots preload; };
      balloon = { inherit (vm.balloon) enable minMemory; };
      kernel = if vm.kernel != null then vm.kernel else guest.kernel;
      initramfs = if vm.initramfs != null then vm.initramfs else guest.initrd;
      # The built system's init only when the root is the built image; a root of your own
      # brings its own init.
      init = if vm.rootDisk == null then guest.init else null;
      rootDisk =
        if vm.rootDisk != null then
          disk vm.rootDisk
        else
          {
            path = guest.rootImage;
            ro = vm.rootDiskReadonly;
            id = null;
            options = { };
            format = "raw";
            createSize = null;
          };
      additionalDisks = map disk vm.additionalDisks;
      rootOverlay = { inherit (vm.rootOverlay) type size; };
      # The guest system's own boot.kernelParams (console=hvc0, …) first: the VMM boots the
      # kernel directly, so nothing else would pass them.
      kernelParams = (if guest == null then [ ] else guest.kernelParams) ++ vm.kernelParams;
      sharedDirectories = byName "tag" share vm.sharedDirectories;
      gpu = gpu vm.gpu;
      sound = { inherit (vm.sound) playback capture; };
      tray = { inherit (vm.tray) enable; };
      usbDevices = map (d: { inherit (d) vendorId productId serial; }) vm.usbDevices;
      pciDevices = map (d: { inherit (d) path options; }) vm.pciDevices;
      vhostUser = map (v: { inherit (v) type socket options; }) vm.vhostUser;
      network = {
        interfaces = byName "name" iface vm.network.interfaces;
        inherit (vm.network) netvm netvmSubnet;
        # A VM whose gateway is the host asks the host's nameservers (those it can reach).
        nameservers =
          if vm.network.netvm == "host" && vm.network.nameservers == [ ] then
            lib.filter (ns: !(lib.hasPrefix "127." ns) && ns != "::1") config.networking.nameservers
          else
            vm.network.nameservers;
        hostServices = { inherit (vm.network.hostServices) tcp udp; };
      };
      crosvm = { inherit (vm.crosvm) logLevel extraArgs extraRunArgs; };
      cloudHypervisor = { inherit (vm.cloudHypervisor) logLevel extraArgs extraConfig; };
      qemu = {
        inherit (vm.qemu)
          machine
          accel
          cpu
          console
          usb
          vsock
          bios
          extraArgs
          ;
        shares9p = lib.mapAttrs (_: s: { inherit (s) path mountPoint securityModel readonly; }) vm.qemu.shares9p;
      };
    };

  json = {
    schemaVersion = 1;
    user = {
      name = cfg.user;
      inherit uid group;
      gid = if group == null then null else config.users.groups.${group}.gid or null;
      home = hostUser.home or null;
      runtimeDir = "/run/user/${toString uid}";
    };
    programs = {
      bash = storePath cfg.packages.bash;
      coreutils = storePath cfg.packages.coreutils;
      systemd = storePath cfg.packages.systemd;
      socat = storePath cfg.packages.socat;
      # Always: every VM has a command channel (vm-run, the command socket's proxy).
      vmsiloTools = storePath cfg.packages.vmsiloTools;
      crosvm = ifUsed (anyVm (vm: vm.hypervisor == "crosvm" || vm.gpu != false)) cfg.packages.crosvm;
      cloudHypervisor = ifUsed anyCloudHypervisor cfg.packages.cloudHypervisor;
      qemu = ifUsed (
        cfg.vmExec.enable
        || anyVm (vm: vm.hypervisor == "qemu" || lib.any (d: d.createSize != null && d.format == "qcow2") vm.additionalDisks)
      ) cfg.packages.qemu;
      virtiofsd = ifUsed (cfg.vmExec.enable || anyVm (vm: vm.sharedDirectories != { } || vm.sharedHome != false)) cfg.packages.virtiofsd;
      openssh = storePath cfg.packages.openssh;
      jq = storePath cfg.packages.jq;
      wlClipboard = storePath cfg.packages.wlClipboard;
      # netvm links add interfaces of their own (`upstream`, `vc-…`).
      iproute2 = ifUsed (anyVm (vm: vm.network.interfaces != { } || vm.network.netvm != null)) cfg.packages.iproute2;
      nftables = ifUsed (anyVm (vm: vm.network.netvm != null)) cfg.packages.nftables;
      vhostDeviceSound = ifUsed (anyVm (vm: vm.sound.playback || vm.sound.capture)) cfg.packages.vhostDeviceSound;
      waylandSeccontext = ifUsed (anyVm (vm: vm.gpu != false)) cfg.packages.waylandSeccontext;
      vmsiloTray = ifUsed (anyVm (vm: vm.tray.enable)) cfg.packages.vmsiloTray;
      vulkanLoader = ifUsed (anyVm (vm: vm.gpu != false)) cfg.packages.vulkanLoader;
    };
    inherit (cfg) schedulerIsolation startTimeout stopTimeout;
    crosvm = { inherit (cfg.crosvm) logLevel extraArgs extraRunArgs; };
    tray = { inherit (cfg.vmsilo-tray) logLevel; };
    cloudHypervisor = {
      inherit (cfg."cloud-hypervisor") logLevel extraArgs;
      # Read (and so the package evaluated) only when a VM uses cloud-hypervisor.
      version = if anyCloudHypervisor then cfg."cloud-hypervisor".version else null;
    };
    qemu = { inherit (cfg.qemu) accel machine extraArgs; };
    vmExec = {
      inherit (cfg.vmExec)
        enable
        kernel
        initramfs
        memory
        cpus
        accel
        machine
        storeDir
        kernelParams
        extraArgs
        timeout
        ;
    };
    gpu = { inherit (cfg.gpu) allowWX; };
    balloond = {
      inherit (cfg."vmsilo-balloond")
        logLevel
        pollInterval
        minPollInterval
        criticalHostPercent
        criticalGuestAvailable
        guestAvailableBias
        psiCeiling
        extraArgs
        ;
    };
    inherit (cfg) netvmRange isolatedPciDevices;
    nixosVms = lib.listToAttrs (map (vm: lib.nameValuePair vm.name (vmJson vm)) vms);
  };
in
{
  programs.vmsilo.build = {
    inherit json guests;
    guestSystems = { templates = templateGuests; vms = ownGuests; };
    configFile = pkgs.writeText "vmsilo.json" (builtins.toJSON json);
  };
}
