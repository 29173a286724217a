# The host every test configuration starts from: the user alice (uid 1000, group users with gid
# 100, home /home/alice) with the module enabled for her.
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
