# Connects the generated tree to the system. The generated targets carry the Wants= lines of the
# VMs that start automatically; Nix sets only wantedBy of the two fixed targets (DESIGN.md), since
# [Install] sections of packaged units are not acted on.
{
  config,
  lib,
  ...
}:
let
  cfg = config.programs.vmsilo;
  out = cfg.build.generated;
  vlib = import ./lib.nix { inherit lib; };
  # A VMM that runs without root runs as its VM's own system user (docs/qemu.md, "Confinement").
  vmmUsers = map vlib.vmmUser (lib.attrNames (lib.filterAttrs (_: vm: cfg.internal.hypervisors.${vm.hypervisor}.unprivilegedVmm) cfg.nixosVms));
  hostGateway = lib.any (vm: vm.network.netvm == "host") (builtins.attrValues cfg.nixosVms);
in
{
  config = lib.mkIf cfg.enable {
    # lib/systemd/system and lib/systemd/user
    systemd.packages = [ out ];
    # lib/tmpfiles.d/vmsilo.conf
    systemd.tmpfiles.packages = [ out ];
    # bin/vm-start, bin/vm-stop, bin/vm-list, …; their man pages (share/man/man1) and completions
    # (share/bash-completion, share/zsh/site-functions, share/fish/vendor_completions.d), which
    # NixOS links into the system path with man and each shell's completion enabled.
    environment.systemPackages = [ out ];
    # lib/udev/rules.d/70-vmsilo-usb.rules: a VM's usbDevices plugged in start its USB unit.
    services.udev.packages = [ out ];

    users.users = lib.genAttrs vmmUsers (user: {
      isSystemUser = true;
      group = user;
      description = "vmsilo VMM";
    });
    # /dev/kvm and the vhost devices are the kvm group's (systemd's udev rules).
    users.groups = lib.genAttrs vmmUsers (_: { }) // lib.optionalAttrs (vmmUsers != [ ]) { kvm = { }; };

    security.polkit.enable = true;
    environment.etc."polkit-1/rules.d/60-vmsilo.rules".source = "${out}/share/polkit-1/rules.d/60-vmsilo.rules";

    # Every VM has a vsock device (the command socket's proxy and vm-shell --ssh use it);
    # isolatedPciDevices are bound to vfio-pci.
    boot.kernelModules = [ "vhost_vsock" ] ++ lib.optional (cfg.isolatedPciDevices != [ ]) "vfio-pci";

    # The host routes for VMs whose gateway it is (network.netvm = "host"), and only then.
    boot.kernel.sysctl = lib.mkIf hostGateway { "net.ipv4.conf.all.forwarding" = true; };

    systemd.targets.vmsilo.wantedBy = [ "multi-user.target" ];
    systemd.user.targets.vmsilo-session.wantedBy = [ "graphical-session.target" ];
  };
}
