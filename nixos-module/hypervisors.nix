# The hypervisors vmsilo-gen renders, defined once. The keys are the values of
# `programs.vmsilo.nixosVms.<vm>.hypervisor`; `unsupported` maps a feature (a key of
# `features` in assertions.nix) to the reason the hypervisor refuses it, so an unsupported
# combination fails evaluation with the VM and the option named (microvm.nix style).
#
# The generator refuses the same combinations (src/hypervisors/*.ts `refusals`), with finer detail
# (option keys, versions); these fail evaluation first.
let
  # qemu's own settings, refused on the other hypervisors (docs/qemu.md).
  qemuOnly = {
    "qemu.machine" = "applies to qemu only";
    "qemu.accel" = "applies to qemu only";
    "qemu.cpu" = "applies to qemu only";
    "qemu.console" = "applies to qemu only";
    "qemu.vsock" = "applies to qemu only";
    "qemu.usb" = "applies to qemu only";
    "qemu.bios" = "applies to qemu only";
    "qemu.shares9p" = "applies to qemu only";
    "qemu.extraArgs" = "applies to qemu only";
    "network.interfaces.<name>.type" = "\"user\" is qemu's user-mode network; use a tap";
  };
  # cloud-hypervisor's own settings, refused on the other hypervisors.
  cloudHypervisorOnly = {
    "cloudHypervisor.logLevel" = "applies to cloud-hypervisor only";
    "cloudHypervisor.extraArgs" = "applies to cloud-hypervisor only";
    "cloudHypervisor.extraConfig" = "applies to cloud-hypervisor only";
  };
in
{
  crosvm = {
    description = "crosvm";
    # The package option whose `bin/` the generated launcher calls.
    package = "crosvm";
    unsupported = cloudHypervisorOnly // qemuOnly;
  };
  "cloud-hypervisor" = {
    description = "cloud-hypervisor";
    package = "cloudHypervisor";
    unsupported = {
      vhostUser = "these are crosvm `--vhost-user` devices; cloud-hypervisor VMs get GPU, sound and shares from their own options";
      "tray.enable" = "the tray daemon listens on a guest vsock port that only kernel vsock reaches from the host, not cloud-hypervisor's hybrid vsock socket; use crosvm or qemu";
      usbDevices = "cloud-hypervisor has no USB passthrough; use crosvm or qemu for this VM";
      "crosvm.logLevel" = "a crosvm option; set cloudHypervisor.logLevel";
      "crosvm.extraArgs" = "crosvm options; use cloudHypervisor.extraArgs";
      "crosvm.extraRunArgs" = "crosvm options; use cloudHypervisor.extraArgs or cloudHypervisor.extraConfig";
    }
    // qemuOnly;
  };
  qemu = {
    description = "qemu";
    package = "qemu";
    # The VMM runs as the VM's own system user, which the module declares (wiring.nix).
    unprivilegedVmm = true;
    unsupported = {
      gpu = "vmsilo's GPU is crosvm's vhost-user virtio-gpu backend, which qemu cannot attach";
      sound = "vhost-device-sound needs a vhost-user sound device";
      vhostUser = "these are crosvm `--vhost-user` devices; attach qemu devices with qemu.extraArgs";
      "crosvm.logLevel" = "a crosvm option";
      "crosvm.extraArgs" = "crosvm options; use qemu.extraArgs";
      "crosvm.extraRunArgs" = "crosvm options; use qemu.extraArgs";
    }
    // cloudHypervisorOnly;
  };
}
