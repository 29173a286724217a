# Direct kernel boot from the VMM: no boot loader; the root is read-only erofs (the system's
# store closure, label vmsilo-store) with /nix/store overlaid by a writable layer on "/", which
# is tmpfs or the ephemeral raw disk (`vmsilo.rootOverlay=raw,<id>`, /dev/disk/by-id/virtio-<id>).
{
  config,
  lib,
  pkgs,
  ...
}:
let
  g = config.vmsilo.guest;
  # The raw overlay disk's crosvm id, as the generator names it (docs/model.md).
  rawDisk = "/dev/disk/by-id/virtio-ephemeral";
in
{
  boot.loader.grub.enable = false;
  boot.initrd.systemd.enable = true;
  boot.initrd.availableKernelModules = [
    "virtio_pci"
    "virtio_mmio"
    "virtio_blk"
    "virtio_console"
    "virtio_net"
    "erofs"
    "overlay"
  ] ++ lib.optional (g.rootOverlay == "raw") "ext4";
  boot.initrd.kernelModules = [
    "virtio_blk"
    "erofs"
    "overlay"
  ];
  # crosvm's console is a virtio console (hvc0). These reach the kernel through vmsilo.json's
  # kernelParams (the VMM boots the kernel directly; nothing reads the system's kernel-params).
  boot.kernelParams = [ "console=hvc0" ];
  # Interfaces are renamed by MAC from vmsilo.ifname= (network.nix); kernel names avoid a race
  # with the predictable names udev would give them first.
  networking.usePredictableInterfaceNames = false;

  fileSystems = {
    "/" =
      if g.rootOverlay == "tmpfs" then
        {
          device = "none";
          fsType = "tmpfs";
          options = [
            "mode=0755"
            "size=50%"
          ];
        }
      else
        {
          # Recreated empty (sparse) by the host at every start, so formatted at every boot.
          device = rawDisk;
          fsType = "ext4";
          autoFormat = true;
        };
    "/nix/.ro-store" = {
      device = "/dev/disk/by-label/vmsilo-store";
      fsType = "erofs";
      options = [ "ro" ];
      neededForBoot = true;
    };
    "/nix/store" = {
      overlay = {
        lowerdir = [ "/nix/.ro-store" ];
        upperdir = "/nix/.rw-store/store";
        workdir = "/nix/.rw-store/work";
      };
      neededForBoot = true;
    };
  };

  # The image is built for one overlay kind; say so loudly if the host asked for the other.
  systemd.services.vmsilo-root-overlay-check = {
    description = "Check vmsilo.rootOverlay= against the image's root overlay";
    wantedBy = [ "multi-user.target" ];
    serviceConfig.Type = "oneshot";
    script = ''
      want=$(${pkgs.gnused}/bin/sed -n 's/.*\bvmsilo\.rootOverlay=\([a-z]*\).*/\1/p' /proc/cmdline)
      if [ -n "$want" ] && [ "$want" != ${lib.escapeShellArg g.rootOverlay} ]; then
        echo "vmsilo: the host asked for vmsilo.rootOverlay=$want but this image was built for ${g.rootOverlay}; rebuild the host configuration" >&2
        exit 1
      fi
    '';
  };

  # The store is read-only plus an ephemeral layer: no Nix database to keep.
  nix.enable = lib.mkDefault false;
  documentation.enable = lib.mkDefault false;
  system.stateVersion = lib.mkDefault lib.trivial.release;
}
