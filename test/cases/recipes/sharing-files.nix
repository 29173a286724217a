## assert-unit-key vmsilo-work-shared-home.service Unit ConditionPathExists !/shared/work
## assert-unit-key vmsilo-work-vm.service Unit Requires vmsilo-work-virtiofsd-projects.service
## assert-file-contains lib/systemd/system/vmsilo-work-virtiofsd-papers.service "--shared-dir /run/vmsilo/work/virtiofs/papers --tag papers"
## assert-file-contains lib/systemd/system/vmsilo-work-virtiofsd-papers.service "--log-level info --readonly"
## assert-unit-key vmsilo-work-virtiofsd-projects.service Service ReadWritePaths /home/alice/Projects
## assert-argv work -p systemd.mount-extra=home:/home/user:virtiofs: -p systemd.mount-extra=papers:/srv/papers:virtiofs:ro -p systemd.mount-extra=projects:/mnt/projects:virtiofs:
## assert-file-contains libexec/vmsilo/media/launch "systemd.mount-extra=music:/mnt/music:9p:trans=virtio,version=9p2000.L,ro"
{ ... }:
{
  programs.vmsilo.nixosVms = {
    work = {
      # A home that outlives the VM: /shared/work on the host is /home/user in the VM.
      sharedHome = true;
      sharedDirectories = {
        # /home/alice/Projects on the host is /mnt/projects in the VM (/mnt/<name>).
        projects.path = "/home/alice/Projects";
        # Read-only, mounted where you choose.
        papers = {
          path = "/home/alice/Papers";
          mountPoint = "/srv/papers";
          readonly = true;
        };
      };
    };

    # qemu VMs take virtio-fs shares too, and also qemu's own 9p shares.
    media = {
      hypervisor = "qemu";
      qemu.shares9p.music = {
        path = "/home/alice/Music";
        readonly = true;
      };
    };
  };
}
