# PLACEHOLDER for the guest command agent on vsock port 5000 (SPEC D7, the vm-run issue).
# The agent does not exist yet. This socket answers every connection with an error line, logs
# it, and closes: a host that tries vm-run learns at once that this image has no agent, instead
# of timing out. Replace this file with the real agent; do not extend it.
{ pkgs, ... }:
{
  systemd.sockets.vmsilo-command-agent-placeholder = {
    description = "vmsilo command agent PLACEHOLDER (vsock 5000, refuses every command)";
    wantedBy = [ "sockets.target" ];
    listenStreams = [ "vsock::5000" ];
    socketConfig.Accept = true;
  };
  systemd.services."vmsilo-command-agent-placeholder@" = {
    description = "vmsilo command agent PLACEHOLDER: refuse the connection";
    serviceConfig = {
      StandardInput = "socket";
      StandardOutput = "socket";
      StandardError = "journal";
      DynamicUser = true;
      ExecStart = pkgs.writeShellScript "vmsilo-command-agent-placeholder" ''
        echo "vmsilo: REFUSED a command connection on vsock port 5000: this guest image has no command agent yet (placeholder)" >&2
        echo "vmsilo: this guest has no command agent yet (placeholder on vsock 5000); command refused"
        exit 1
      '';
    };
  };
}
