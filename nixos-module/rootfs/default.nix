# Builds one VM's guest: a NixOS system from vmsilo's guest modules (../guest), the VM's
# guestConfig and guestPrograms, packed as `vmsilo-rootfs-<vm>` = { nixos.erofs, bzImage, initrd }.
# This is the default of programs.vmsilo.guestBuilder; serialise.nix calls it for every VM that
# does not bring its own kernel, initramfs and rootDisk.
{ lib, pkgs }:
{
  name,
  vm,
  cfg,
}:
let
  nixos = import (pkgs.path + "/nixos/lib/eval-config.nix") {
    # Set modularly through nixpkgs.pkgs (flakes forbid builtins.currentSystem).
    system = null;
    modules = [
      ../guest
      {
        # The host's package set, extended by any nixpkgs.overlays of the guestConfig.
        nixpkgs.pkgs = lib.mkDefault pkgs;
        vmsilo.guest = {
          inherit name;
          rootOverlay = vm.rootOverlay.type;
          sharedHome = vm.sharedHome != false;
          hybridVsock = vm.hypervisor == "cloud-hypervisor";
          netvm = vm.network.isNetvm;
          sound = { inherit (vm.sound) playback capture; };
          tray = {
            inherit (vm.tray) enable;
            inherit (cfg.vmsilo-tray) logLevel;
            package = cfg.packages.vmsiloTray;
          };
          # A display when the GPU carries Wayland (its cross-domain context).
          wayland = {
            enable = vm.gpu == true || (vm.gpu != false && vm.gpu.wayland);
            proxy = vm.waylandProxy;
          };
          # The host's vm-run programs: the agent and the host's client and proxy are one build.
          inherit (cfg.packages) vmsiloTools;
        };
        environment.systemPackages = vm.guestPrograms;
      }
      vm.guestConfig
    ];
  };
  inherit (nixos) config;
  toplevel = config.system.build.toplevel;
  kernel = "${config.boot.kernelPackages.kernel}/${config.system.boot.loader.kernelFile}";
  initrd = "${config.system.build.initialRamdisk}/${config.system.boot.loader.initrdFile}";
  erofs = pkgs.callPackage ./erofs.nix {
    inherit name;
    rootPaths = [ toplevel ];
  };
  rootfs = pkgs.runCommandLocal "vmsilo-rootfs-${name}" { passthru = { inherit nixos toplevel; }; } ''
    mkdir "$out"
    ln -s ${kernel} "$out/bzImage"
    ln -s ${initrd} "$out/initrd"
    ln -s ${erofs} "$out/nixos.erofs"
  '';
in
{
  kernel = "${rootfs}/bzImage";
  initrd = "${rootfs}/initrd";
  rootImage = "${rootfs}/nixos.erofs";
  init = "${toplevel}/init";
  kernelParams = config.boot.kernelParams;
  inherit
    rootfs
    toplevel
    config
    nixos
    ;
}
