# The NixOS configuration equivalent to examples/minimal.json.
stubs:
{ ... }:
{
  imports = [ ./host-user.nix ];

  programs.vmsilo = {
    # minimal.json has no openssh: vm-shell --ssh is refused.
    packages.openssh = null;
    guestBuilder = { name, ... }: stubs.guests.minimal.${name};
    nixosVms.work = { };
  };
}
