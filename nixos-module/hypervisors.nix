# The hypervisors vmsilo-gen renders, defined once. The keys are the values of
# `programs.vmsilo.nixosVms.<vm>.hypervisor`; `unsupported` maps a feature (a key of
# `features` in assertions.nix) to the reason the hypervisor refuses it, so an unsupported
# combination fails evaluation with the VM and the option named (microvm.nix style).
#
# The generator refuses the same combinations (src/hypervisors/*.ts `refusals`), with finer detail
# (option keys, versions); these fail evaluation first.
{
  crosvm = {
    description = "crosvm";
    # The package option whose `bin/` the generated launcher calls.
    package = "crosvm";
    unsupported = {
      "cloudHypervisor.logLevel" = "applies to cloud-hypervisor only";
      "cloudHypervisor.extraArgs" = "applies to cloud-hypervisor only";
      "cloudHypervisor.extraConfig" = "applies to cloud-hypervisor only";
    };
  };
  "cloud-hypervisor" = {
    description = "cloud-hypervisor";
    package = "cloudHypervisor";
    unsupported = {
      vhostUser = "these are crosvm `--vhost-user` devices; cloud-hypervisor VMs get GPU, sound and shares from their own options";
      "crosvm.logLevel" = "a crosvm option; set cloudHypervisor.logLevel";
      "crosvm.extraArgs" = "crosvm options; use cloudHypervisor.extraArgs";
      "crosvm.extraRunArgs" = "crosvm options; use cloudHypervisor.extraArgs or cloudHypervisor.extraConfig";
    };
  };
}
