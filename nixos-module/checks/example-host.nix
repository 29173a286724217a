# An example host: one user and two VMs, as in the README's quick start. Evaluated by the flake's
# eval-example check; a good starting point for a configuration.nix.
{ pkgs, ... }:
{
  boot.loader.grub.enable = false;
  fileSystems."/" = {
    device = "/dev/disk/by-label/nixos";
    fsType = "ext4";
  };
  system.stateVersion = "25.11";

  users.users.alice = {
    isNormalUser = true;
    uid = 1000;
  };

  # The bridge work's tap joins; list the host's uplink in interfaces to reach the LAN.
  networking.bridges.br0.interfaces = [ ];

  programs.vmsilo = {
    enable = true;
    user = "alice";
    nixosVms.work = {
      memory = 4096;
      cpus = 4;
      sharedHome = true;
      guestPrograms = [ pkgs.hello ];
      network.interfaces.eth0 = {
        dhcp = true;
        tap.bridge = "br0";
      };
    };
    nixosVms.banking = {
      memory = 2048;
      color = "green";
      autoShutdown.enable = true;
      sound.playback = true;
      guestConfig = {
        services.openssh.enable = true;
      };
    };
  };
}
