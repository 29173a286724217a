## assert-file-contains libexec/vmsilo/shopping/launch "-vmsilo-rootfs-browser/bzImage"
## assert-file-contains libexec/vmsilo/banking/launch "-vmsilo-rootfs-browser/bzImage"
## assert-file-contains libexec/vmsilo/banking/launch "-vmsilo-rootfs-browser/nixos.erofs"
## assert-argv banking -p vmsilo.hostname=banking
## assert-argv shopping -p vmsilo.hostname=shopping
## assert-argv shopping -p autoShutdown.enable=1 -p autoShutdown.after=60
## !assert-file-contains libexec/vmsilo/shopping/launch "-vmsilo-rootfs-shopping"
{ pkgs, ... }:
{
  programs.vmsilo = {
    # One guest system, evaluated and built once, for every VM that names it.
    templates.browser.guestPrograms = [ pkgs.firefox ];

    nixosVms.shopping = {
      template = "browser";
      color = "orange";
      # Powers off a minute after its last program exits; banking stays up until you stop it.
      autoShutdown = {
        enable = true;
        after = 60;
      };
    };
    nixosVms.banking = {
      template = "browser";
      color = "green";
      memory = 4096;
    };
  };
}
