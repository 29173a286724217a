# The NixOS configuration equivalent to examples/minimal.json.
stubs:
{ ... }:
{
  users.users.alice = {
    isNormalUser = true;
    uid = 1000;
    group = "users";
    home = "/home/alice";
  };
  users.groups.users.gid = 100;

  programs.vmsilo = {
    enable = true;
    user = "alice";
    # minimal.json has no openssh: vm-shell --ssh is refused.
    packages.openssh = null;
    guestBuilder = { name, ... }: stubs.guests.minimal.${name};
    nixosVms.work = { };
  };
}
