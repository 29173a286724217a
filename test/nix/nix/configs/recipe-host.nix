# The host the recipes' configurations (test/cases/recipes/, docs/recipes/) are added to: the
# quick start's user with the module enabled, VMs built by the default guest builder over the
# fake nixpkgs, and the Wayland helper nixpkgs does not have.
stubs:
{ ... }:
{
  imports = [ ./host-user.nix ];
}
