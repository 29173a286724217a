# What NixOS gives a normal user and the stub does not (users-groups.nix: group "users" with gid
# 100, home /home/<name>), for configurations written as a user writes them: the README's.
stubs:
{ lib, ... }:
{
  users.users.alice = {
    group = lib.mkDefault "users";
    home = lib.mkDefault "/home/alice";
  };
  users.groups.users.gid = lib.mkDefault 100;
}
