# The guest side of the guest protocol (SPEC §2): NixOS modules every vmsilo guest system gets.
# rootfs/ evaluates them with the VM's guestConfig and guestPrograms and packs the result.
{
  imports = [
    ./options.nix
    ./boot.nix
    ./hostname.nix
    ./network.nix
    ./netvm.nix
    ./home.nix
    ./shares.nix
    ./auto-shutdown.nix
    ./sound.nix
    ./wayland.nix
    ./tray.nix
    ./command-agent.nix
  ];
}
