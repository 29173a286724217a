# A host with one qemu-backend VM (SPEC D13): started with vm-start as the user, commands run in it
# with vm-run (the host client, the command socket's proxy, vsock, the guest's vmsilo-agent),
# stopped with vm-stop.
#
# The VM runs under TCG (`qemu.accel = "tcg"`, software emulation), not KVM: the test host is itself
# a VM, and KVM inside it needs nested virtualisation (kvm_intel/kvm_amd nested=1), which many
# builders do not allow; TCG is slow but runs on any builder that can run NixOS tests. The machine
# is q35: under TCG a microvm guest needs `tsc_early_khz=<host kHz>` (docs/qemu.md, about one boot
# in twenty otherwise hangs in TSC calibration), and the rate of the builder's CPU is not known when
# the test is evaluated; q35 has the legacy timers (PIT, HPET) the kernel calibrates against. The
# CPU model is left to vmsilo (null: qemu64 under TCG; `host` needs KVM).
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
          hypervisor = "qemu";
          qemu = {
            accel = "tcg";
            machine = "q35";
          };
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

    # The guest's agent answers once the guest has booted (each call's proxy retries for startTimeout);
    # a NixOS boot under TCG is slow, hence the long timeout.
    host.wait_until_succeeds("runuser -u alice -- vm-run demo true < /dev/null", timeout=900)

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
