# The hypervisors vmsilo-gen renders, defined once. The keys are the values of
# `programs.vmsilo.nixosVms.<vm>.hypervisor`; `unsupported` maps a feature (a key of
# `features` in assertions.nix) to the reason the hypervisor refuses it, so an unsupported
# combination fails evaluation with the VM and the option named (microvm.nix style).
#
# Only crosvm exists in vmsilo.json schema version 1 today; cloud-hypervisor and qemu are added
# here (and to the generator's schema) when their drivers land.
{
  crosvm = {
    description = "crosvm";
    # The package option whose `bin/` the generated launcher calls.
    package = "crosvm";
    unsupported = { };
  };
}
