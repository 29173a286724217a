# The shares: the host puts one `systemd.mount-extra=<tag>:<mount point>:virtiofs|9p:<options>` per
# share on the kernel command line (the shared home on /home/user, every other share on its
# `mountPoint`, /mnt/<tag> by default), so no share needs a guest rebuild. systemd-fstab-generator
# mounts each twice over: in the systemd initrd (under /sysroot, before the switch) and in the
# system, so both load the file-system drivers.
#
# Ownership is the host's as it is (virtiofsd and qemu's 9p mapped-xattr report the host owner of
# what the guest did not create): the guest user, uid 1000, writes where the host user of uid 1000
# can, as in the shared home.
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
