# A host with one VM, started with vm-start as the user and stopped with vm-stop. The VM runs
# under crosvm, so the builder needs nested KVM (kvm_intel/kvm_amd nested=1).
#
# When the qemu backend and vm-run land (SPEC D13, D7), this test moves to a qemu VM and runs a
# command with vm-run; until then it checks the guest's command-agent PLACEHOLDER answers through
# the host's command socket with its refusal.
{
  name = "vmsilo-vm-lifecycle";

  nodes.host =
    { pkgs, ... }:
    {
      imports = [ ../. ];
      environment.systemPackages = [ pkgs.socat ];
      virtualisation.memorySize = 3072;
      virtualisation.cores = 2;
      users.users.alice = {
        isNormalUser = true;
        uid = 1000;
      };
      programs.vmsilo = {
        enable = true;
        user = "alice";
        nixosVms.demo = {
          memory = 512;
          cpus = 1;
        };
      };
    };

  testScript = ''
    host.wait_for_unit("multi-user.target")
    host.wait_for_unit("vmsilo-demo.socket")

    host.succeed("su - alice -c 'vm-start demo'")
    host.wait_for_unit("vmsilo-demo-vm.service")

    # The guest's placeholder command agent answers on vsock 5000 through the command socket.
    host.wait_until_succeeds(
        "su - alice -c 'echo | timeout 10 socat - UNIX-CONNECT:/run/vmsilo/demo/command.socket'"
        " | grep -q 'no command agent yet'",
        timeout=300,
    )

    host.succeed("su - alice -c 'vm-stop demo'")
    host.wait_until_fails("systemctl is-active vmsilo-demo-vm.service", timeout=120)
    host.fail("su - alice -c 'vm-start no-such-vm'")
  '';
}
