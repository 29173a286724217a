# The NixOS configuration equivalent to examples/desktop.json: a network VM holding the Wi-Fi card
# (isolated from the host) and a LAN port, a work VM with GPU, sound, shares and a raw overlay and a
# banking VM behind it, and a cloud-hypervisor VM (dev) with the host as its gateway.
stubs:
{ ... }:
{
  imports = [ ./host-user.nix ];
  networking.bridges.br-lan.interfaces = [ ];

  programs.vmsilo = {
    schedulerIsolation = "vm";
    guestBuilder = { name, ... }: stubs.guests.desktop.${name};
    isolatedPciDevices = [ "0000:03:00.0" ];

    nixosVms.net = {
      memory = 512;
      cpus = 1;
      autoStart = true;
      color = "orange";
      pciDevices = [ { path = "03:00.0"; } ];
      network.interfaces.lan = {
        tap.bridge = "br-lan";
        addresses = [ "192.168.50.1/24" ];
      };
    };

    nixosVms.work = {
      memory = 4096;
      cpus = 4;
      autoStart = true;
      color = "#3465a4";
      sharedHome = true;
      # The security key: in the work VM whenever both are there.
      usbDevices = [
        {
          vendorId = "1050";
          productId = "0407";
        }
      ];
      sharedDirectories.projects = {
        path = "/home/alice/Projects";
        xattr = true;
        posixAcl = true;
        cache = "always";
        threadPoolSize = 4;
      };
      additionalDisks = [
        {
          path = "/var/lib/vmsilo/work-data.img";
          id = "data";
          options.block-size = 4096;
        }
      ];
      rootOverlay = {
        type = "raw";
        size = "20G";
      };
      network.netvm = "net";
      network.nameservers = [ "9.9.9.9" ];
      gpu = true;
      sound.playback = true;
      kernelParams = [ "quiet" ];
    };

    nixosVms.banking = {
      memory = 2048;
      color = "green";
      autoShutdown = {
        enable = true;
        after = 600;
      };
      network.netvm = "net";
      network.nameservers = [ "9.9.9.9" ];
      sharedDirectories.downloads = {
        path = "/home/alice/Downloads/banking";
        readonly = true;
      };
      crosvm.logLevel = "warn";
    };

    # A cloud-hypervisor VM: GPU and sound through generic_vhost_user, a shared home, a raw overlay.
    nixosVms.dev = {
      hypervisor = "cloud-hypervisor";
      memory = 8192;
      cpus = 8;
      color = "purple";
      sharedHome = true;
      additionalDisks = [
        {
          path = "/var/lib/vmsilo/dev-cache.img";
          id = "cache";
          options.direct = false;
        }
      ];
      rootOverlay = {
        type = "raw";
        size = "40G";
      };
      network.netvm = "host";
      network.nameservers = [ "9.9.9.9" ];
      network.hostServices.tcp = [ 631 ];
      gpu.vulkan = true;
      sound = {
        playback = true;
        capture = true;
      };
      cloudHypervisor = {
        logLevel = "debug";
        extraArgs = [
          "--seccomp"
          "log"
        ];
        extraConfig = {
          cpus.nested = false;
          platform.oem_strings = [ "io.systemd.credential:vmsilo.vm=dev" ];
        };
      };
    };
  };
}
