# The shares: the host puts one `systemd.mount-extra=<tag>:<mount point>:virtiofs|9p:<options>` per
# share on the kernel command line (the shared home on /home/user, every other share on its
# `mountPoint`, /mnt/<tag> by default), so no share needs a guest rebuild. The system's
# systemd-fstab-generator mounts each; the initrd loads the drivers too, for a systemd whose initrd
# mounts the entries under /sysroot (its manual says so; 254's initrd reads only rd.systemd.mount-extra=).
#
# Owners: virtiofsd translates the guest user's uid 1000 and gid 100 to the host user's, so the
# guest user writes where the host user can (docs/protocol.md); 9p reports the host's owners.
let
  drivers = [
    "virtiofs"
    "9pnet_virtio"
    "9p"
  ];
in
{
  boot.initrd.kernelModules = drivers;
  boot.kernelModules = drivers;
}
