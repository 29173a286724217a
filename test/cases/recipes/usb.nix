## assert-file-contains lib/udev/rules.d/70-vmsilo-usb.rules "ATTR{idVendor}==\"1050\", ATTR{idProduct}==\"0407\", TAG+=\"systemd\", ENV{SYSTEMD_WANTS}+=\"vmsilo-work-usb.service\""
## assert-unit-key vmsilo-work-usb.service Unit Requisite vmsilo-work-vm.service
## assert-file-contains share/vmsilo/usb.conf "device	work	1050	0407	"
## assert-file-contains share/vmsilo/usb.conf "device	work	0781	5567	4C530001"
## assert-file-contains libexec/vmsilo/camera/launch "-device qemu-xhci,id=vmsilo-xhci"
## assert-file bin/vmsilo-usb
{ ... }:
{
  programs.vmsilo.nixosVms = {
    work.usbDevices = [
      # The security key: in the work VM whenever both are there.
      {
        vendorId = "1050";
        productId = "0407";
      }
      # This USB stick only (its serial), not any stick of the same model.
      {
        vendorId = "0781";
        productId = "5567";
        serial = "4C530001";
      }
    ];

    # A qemu VM takes USB devices on a PC machine, with its controller switched on.
    camera = {
      hypervisor = "qemu";
      qemu.machine = "q35";
      qemu.usb = true;
    };
  };
}
