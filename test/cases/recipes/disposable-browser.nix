## assert-argv browser -p autoShutdown.enable=1 -p autoShutdown.after=60
## assert-argv browser -p vmsilo.rootOverlay=raw,ephemeral
## assert-unit-key vmsilo-browser-vm.service Service ExecStartPre "/nix/store/1f4m7i0c5h3dg2yqvbqvnxhy04d8v5bx-coreutils-9.8/bin/truncate -s 8G -- /var/lib/vmsilo/browser/ephemeral.raw"
## assert-unit-key vmsilo-browser-vm.service Service ExecStopPost "/nix/store/1f4m7i0c5h3dg2yqvbqvnxhy04d8v5bx-coreutils-9.8/bin/rm -f -- /run/vmsilo/browser/crosvm-control.socket /var/lib/vmsilo/browser/ephemeral.raw"
## assert-file-contains lib/systemd/system/vmsilo-browser-wayland-seccontext.service "vmsilo:browser:#ffa500"
## assert-unit-key vmsilo-browser-vm.service Unit Requires vmsilo-browser-gpu.service
## !assert-file lib/systemd/system/vmsilo-browser-shared-home.service
{ pkgs, ... }:
{
  # The browser gets its address from your network's DHCP server through a bridge on the wired card.
  networking.bridges.br-lan.interfaces = [ "enp3s0" ];

  programs.vmsilo.nixosVms.browser = {
    memory = 3072;
    color = "orange";
    guestPrograms = [ pkgs.firefox ];
    gpu = true; # its windows on your desktop
    # Nothing survives a stop: the root's writes go to a disk made fresh at each start and deleted
    # at stop, and there is no shared home or share.
    rootOverlay = {
      type = "raw";
      size = "8G";
    };
    # Powers off a minute after the last program of the guest's user exits.
    autoShutdown = {
      enable = true;
      after = 60;
    };
    network.interfaces.eth0 = {
      dhcp = true;
      tap.bridge = "br-lan";
    };
  };
}
