## assert-file lib/systemd/system/vmsilo-vfio-bind.service
## assert-file lib/systemd/system/vmsilo-work-uplink.service
## assert-file lib/systemd/system/vmsilo-banking-uplink.service
## assert-file-contains libexec/vmsilo/work/launch "vmsilo.ifname=upstream,"
## assert-file-contains libexec/vmsilo/net/launch "vmsilo.ifname=vc-work,"
## assert-file-contains libexec/vmsilo/net/launch "vmsilo.ifname=vc-banking,"
## assert-unit-key vmsilo-work-vm.service Unit Requires vmsilo-work-uplink.service
## assert-file-contains libexec/vmsilo/work/launch "nameserver=10.200."
{ pkgs, ... }:
{
  programs.vmsilo = {
    # Bound to vfio-pci early at boot, before the host's network starts (vmsilo-vfio-bind.service);
    # a card whose interface is already up is refused, with its name in the message.
    isolatedPciDevices = [ "0000:03:00.0" ];

    nixosVms.net = {
      memory = 512;
      autoStart = true;
      pciDevices = [ { path = "0000:03:00.0"; } ];
      guestPrograms = [ pkgs.iw ];
      # The network VM's own Wi-Fi set-up; vmsilo adds the forwarding and the firewall.
      guestConfig = {
        networking.networkmanager.enable = true;
        # or: networking.wireless = { enable = true; networks."my-ssid".pskRaw = "…"; };
        hardware.enableRedistributableFirmware = true;
      };
    };

    # The VMs behind it (their DNS goes to net, which forwards it).
    nixosVms.work.network.netvm = "net";
    nixosVms.banking.network.netvm = "net";
  };
}
