# The host the recipes' configurations (test/cases/recipes/, docs/recipes/) are added to: the
# quick start's user with the module enabled, VMs built by the default guest builder over the
# fake nixpkgs, and the Wayland helper nixpkgs does not have.
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
  };
}
