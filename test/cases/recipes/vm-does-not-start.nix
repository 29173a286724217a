## assert-unit-key vmsilo-net-vm.service Unit BindsTo sys-subsystem-net-devices-br\x2dlan.device
## assert-unit-key vmsilo-net-vm.service Unit Requires vmsilo-net-prep.service
## assert-file-contains libexec/vmsilo/net/launch "IOMMU not enabled or PCI device"
## assert-file-contains bin/vm-start "to read why: journalctl -u ${unit_of[$vm]}"
{ ... }:
{
  # The bridge the VM's tap joins: the VM does not start until it exists.
  networking.bridges.br-lan.interfaces = [ "enp3s0" ];

  programs.vmsilo.nixosVms.net = {
    network.interfaces.eth0 = {
      dhcp = true;
      tap.bridge = "br-lan";
    };
    # A device passed through: the launcher checks its IOMMU group first.
    pciDevices = [ { path = "0000:03:00.0"; } ];
  };
}
