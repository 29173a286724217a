# 20 VMs on 3 templates and one VM with a guest of its own (templates.test.ts).
stubs:
{ lib, ... }:
let
  templateOf = i: builtins.elemAt [ "browser" "office" "net" ] (lib.mod i 3);
  vmName = i: "vm${lib.fixedWidthNumber 2 i}";
in
{
  imports = [ ./host-user.nix ];

  programs.vmsilo = {
    packages.openssh = null;
    guestBuilder = { name, ... }: stubs.guestNamed name;
    templates = {
      browser.guestConfig = { services.example.enable = true; };
      office = { };
      net = { };
      unused = { };
    };
    nixosVms = lib.listToAttrs (map (i: lib.nameValuePair (vmName i) { template = templateOf i; }) (lib.range 0 19)) // {
      solo.guestConfig = { services.example.enable = true; };
    };
  };
}
