## assert-file-contains lib/systemd/system/vmsilo-browser-wayland-seccontext.service "vmsilo:browser:#ff4500"
## assert-unit-key vmsilo-browser-vm.service Unit Requires vmsilo-browser-gpu.service
## assert-file lib/systemd/system/vmsilo-browser-shared-home.service
# configuration.nix
{ pkgs, ... }:
{
  users.users.alice = { isNormalUser = true; uid = 1000; };
  programs.vmsilo = {
    enable = true;
    user = "alice";
    nixosVms.browser = {
      memory = 4096;
      cpus = 2;
      gpu = true;                      # Wayland and OpenGL to the host's compositor
      color = "orangered";             # a CSS colour name, or "#ff4500"
      sharedHome = true;               # the browser's profile survives restarts: /shared/browser
      guestPrograms = [ pkgs.firefox ];
      # waylandProxy = "sommelier";    # the default is wayland-proxy-virtwl
    };
  };
}
