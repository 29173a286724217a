## assert-unit-key vmsilo-work-vm.service Unit X-RestartIfChanged false
## assert-unit-key vmsilo-work-prep.service Unit X-RestartIfChanged false
## assert-unit-key vmsilo-work-virtiofsd-home.service Unit X-RestartIfChanged false
## !assert-unit-key vmsilo-work.socket Unit X-RestartIfChanged false
## assert-argv work --mem size=8192
{ ... }:
{
  programs.vmsilo.nixosVms.work = {
    memory = 8192; # was 4096: a running work VM keeps 4096 MiB until its next start
    sharedHome = true;
  };
}
