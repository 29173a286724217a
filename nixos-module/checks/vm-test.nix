# A host with one VM: started with vm-start as the user, commands run in it with vm-run (the host
# client, the command socket's proxy, vsock, the guest's vmsilo-agent), stopped with vm-stop. The
# VM runs under crosvm, so the builder needs nested KVM (kvm_intel/kvm_amd nested=1). It moves to a
# qemu-backend VM when the module offers that hypervisor (SPEC D13).
{
  name = "vmsilo-vm-lifecycle";

  nodes.host =
    { pkgs, ... }:
    {
      imports = [ ../. ];
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
    def vm_run(args):
        """vm-run in demo as alice (runuser keeps root's PATH, which has vm-run); (status, stdout)."""
        return host.execute(f"runuser -u alice -- vm-run demo {args} < /dev/null")

    host.wait_for_unit("multi-user.target")
    host.wait_for_unit("vmsilo-demo.socket")

    host.succeed("su - alice -c 'vm-start demo'")
    host.wait_for_unit("vmsilo-demo-vm.service")

    # The guest's agent answers once the guest has booted (each call's proxy retries for startTimeout).
    host.wait_until_succeeds("runuser -u alice -- vm-run demo true < /dev/null", timeout=300)

    # argv arrives exactly: no re-splitting, `-n` kept, the empty argument kept, no expansion.
    status, out = vm_run("printf '%s|' -n 'a b' \"\" '$HOME'")
    assert (status, out) == (0, "-n|a b||$HOME|"), (status, out)

    # As the guest user, in its home.
    status, out = vm_run("sh -c 'id -un; pwd'")
    assert (status, out) == (0, "user\n/home/user\n"), (status, out)

    # stdin byte-exact (NUL bytes, 4 MiB of random data); stdout and stderr kept apart.
    host.succeed("head -c 4194304 /dev/urandom > /tmp/in; printf 'a\\0b' >> /tmp/in")
    host.succeed("runuser -u alice -- vm-run demo cat < /tmp/in > /tmp/out")
    host.succeed("cmp /tmp/in /tmp/out")
    host.succeed(
        "runuser -u alice -- vm-run demo sh -c 'echo out; echo err >&2' < /dev/null > /tmp/o 2> /tmp/e"
        " && test \"$(cat /tmp/o)\" = out && test \"$(cat /tmp/e)\" = err"
    )

    # The command's exit status, its signal, a missing command.
    assert vm_run("sh -c 'exit 42'")[0] == 42
    assert vm_run("sh -c 'kill -TERM $$'")[0] == 128 + 15
    assert vm_run("vmsilo-no-such-command")[0] == 127
    # A VM that does not exist is vm-run's own usage error; nothing is sent.
    assert host.execute("runuser -u alice -- vm-run no-such-vm true < /dev/null")[0] == 2

    host.succeed("su - alice -c 'vm-stop demo'")
    host.wait_until_fails("systemctl is-active vmsilo-demo-vm.service", timeout=120)
    host.fail("su - alice -c 'vm-start no-such-vm'")
  '';
}
