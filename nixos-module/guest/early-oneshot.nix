# A oneshot service of early boot that reads the kernel command line: it runs once before
# sysinit.target (and before `before`), outside the default dependencies, and stays active.
lib:
{
  description,
  before,
  script,
  path ? [ ],
}:
{
  inherit description script path;
  wantedBy = [ "sysinit.target" ];
  before = [ "sysinit.target" ] ++ before;
  unitConfig.DefaultDependencies = false;
  serviceConfig = {
    Type = "oneshot";
    RemainAfterExit = true;
  };
}
