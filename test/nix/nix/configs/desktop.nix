# The NixOS configuration equivalent to examples/desktop.json: a network VM holding a PCI NIC,
# a work VM with GPU, sound, shares and a raw overlay, a banking VM on DHCP, and a cloud-hypervisor
# VM (dev).
stubs:
{ ... }:
{
  users.users.alice = {
    isNormalUser = true;
    uid = 1000;
    group = "users";
    home = "/home/alice";
  };
  users.groups.users.gid = 100;
  networking.bridges = {
    br-work.interfaces = [ ];
    br-lan.interfaces = [ ];
  };

  programs.vmsilo = {
    enable = true;
    user = "alice";
    schedulerIsolation = "vm";
    guestBuilder = { name, ... }: stubs.guests.desktop.${name};

    nixosVms.net = {
      memory = 512;
      cpus = 1;
      autoStart = true;
      color = "orange";
      pciDevices = [ { path = "03:00.0"; } ];
      network.interfaces = {
        work = {
          tap.bridge = "br-work";
          addresses = [ "10.20.0.1/24" ];
        };
        lan = {
          tap.bridge = "br-lan";
          addresses = [ "192.168.50.1/24" ];
        };
      };
    };

    nixosVms.work = {
      memory = 4096;
      cpus = 4;
      autoStart = true;
      dependsOn = [ "net" ];
      color = "#3465a4";
      sharedHome = true;
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
      network.interfaces.eth0 = {
        tap.bridge = "br-work";
        addresses = [ "10.20.0.2/24" ];
        routes."0.0.0.0/0".via = "10.20.0.1";
        v6Addresses = [ "fd00:20::2/64" ];
        v6Routes."::/0".via = "fd00:20::1";
      };
      network.nameservers = [
        "10.20.0.1"
        "fd00:20::1"
      ];
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
      network.interfaces.eth0 = {
        dhcp = true;
        macAddress = "02:42:ac:11:00:02";
        tap.bridge = "br-lan";
      };
      sharedDirectories.downloads = {
        path = "/home/alice/Downloads/banking";
        readonly = true;
      };
      crosvm.logLevel = "warn";
      dependsOn = [ "net" ];
    };

    # A cloud-hypervisor VM: GPU and sound through generic_vhost_user, a shared home, a raw overlay.
    nixosVms.dev = {
      hypervisor = "cloud-hypervisor";
      memory = 8192;
      cpus = 8;
      dependsOn = [ "net" ];
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
      network.interfaces.eth0 = {
        tap.bridge = "br-work";
        addresses = [ "10.20.0.3/24" ];
        routes."0.0.0.0/0".via = "10.20.0.1";
      };
      network.nameservers = [ "10.20.0.1" ];
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
