# The guest user, and its shared home: systemd-fstab-generator mounts the virtio-fs tag `home` on
# /home/user from `systemd.mount-extra=home:/home/user:virtiofs:` (the host adds it when
# sharedHome is set; shares.nix loads the driver); without it /home/user lives on the root overlay.
{ config, ... }:
let
  g = config.vmsilo.guest;
in
{
  users.users.${g.user} = {
    isNormalUser = true;
    uid = 1000;
    home = "/home/${g.user}";
    extraGroups = [
      "audio"
      "video"
    ];
  };
}
