## assert-file lib/systemd/system/vmsilo-browser-d3_use.service
## assert-file lib/systemd/system/vmsilo-browser-d3_use.socket
## !assert-file lib/systemd/system/vmsilo-browser-vm.service
## !assert-file lib/systemd/system/vmsilo-browser-d4-vm.service
## assert-argv browser-d2 -p vmsilo.rootOverlay=tmpfs
## assert-argv browser-d2 -p vmsilo.hostname=browser-d2
## !assert-file lib/systemd/system/vmsilo-browser-d1-shared-home.service
## assert-file-contains lib/systemd/system/vmsilo-browser-d2-wayland-seccontext.service "vmsilo:browser-d2:#ffa500"
## assert-file-contains lib/systemd/system/vmsilo-browser-d1_use.service "start --no-block -- vmsilo-browser-d1-vm.service"
## !assert-file-contains lib/systemd/system/vmsilo-browser-d2_use.service "start --no-block"
## assert-file-contains lib/systemd/system/vmsilo-browser-d2_use.service "stop -- vmsilo-browser-d2-vm.service"
## assert-json share/vmsilo/manifest.json /disposables/browser/slots ["browser-d1","browser-d2","browser-d3"]
{ pkgs, ... }:
{
  # The browser gets its address from your network's DHCP server through a bridge on the wired card.
  networking.bridges.br-lan.interfaces = [ "enp3s0" ];

  programs.vmsilo.nixosVms.browser = {
    memory = 3072;
    color = "orange";
    guestPrograms = [ pkgs.firefox ];
    gpu = true; # its windows on your desktop
    # A pattern, not a VM: every `vm-run --disposable browser …` gets a fresh instance of its own,
    # wiped when the command ends.
    disposable = {
      enable = true;
      slots = 3; # three browsers at once
      preload = 1; # one kept booted, so the browser opens without waiting for a boot
    };
    network.interfaces.eth0 = {
      dhcp = true;
      tap.bridge = "br-lan";
    };
  };
}
