# The command agent on vsock port 5000 (SPEC D7, docs/protocol.md): `vm-run <vm> <cmd> [args…]`
# on the host reaches it through the VM's command socket and vmsilo-vsock-proxy. systemd accepts
# each connection (Accept=yes) and starts one vmsilo-agent for it on the connected socket; the
# agent reads the whole request, then runs the command as the guest user with the argv exactly as
# sent, a clean environment (PATH below, HOME, USER, LOGNAME, SHELL, then commandEnvironment: a GPU
# VM's WAYLAND_DISPLAY, XDG_RUNTIME_DIR and DISPLAY) and HOME as its directory,
# streams stdout and stderr back and returns the exit status. On vhost-vsock it refuses host peers
# on an unprivileged port (any local user of the host could bind one; the VM's proxy binds a
# privileged port); cloud-hypervisor's hybrid vsock is a socket file, guarded by its owner.
{
  config,
  lib,
  ...
}:
let
  g = config.vmsilo.guest;
  # The commands' PATH: setuid and capability wrappers first, then the user's and the system's
  # packages (guestPrograms are in the system's).
  path = lib.concatStringsSep ":" [
    "/run/wrappers/bin"
    "/etc/profiles/per-user/${g.user}/bin"
    "/run/current-system/sw/bin"
  ];
  execArg = import ./exec-arg.nix lib;
in
{
  # The virtio vsock transport, loaded with the other modules at boot rather than when udev
  # gets to the device: the host's proxy retries until then, but need not.
  boot.kernelModules = [ "vmw_vsock_virtio_transport" ];

  systemd.sockets.vmsilo-agent = {
    description = "vmsilo command agent socket (vm-run, vsock port 5000)";
    wantedBy = [ "sockets.target" ];
    listenStreams = [ "vsock::5000" ];
    socketConfig = {
      Accept = true;
      # One connection per running command, and a program started with vm-run keeps its
      # connection until it exits: 64 (systemd's default) would refuse the 65th open window.
      MaxConnections = 1024;
    };
  };

  systemd.services."vmsilo-agent@" = {
    description = "vmsilo command agent: one vm-run command";
    # A failed instance (a refused request, a client that went away) is not kept around: the
    # agent has logged why.
    unitConfig.CollectMode = "inactive-or-failed";
    # Nothing from systemd's environment reaches the command: the agent builds its own.
    serviceConfig = {
      ExecStart = lib.concatMapStringsSep " " execArg (
        [
          "${g.vmsiloTools}/bin/vmsilo-agent"
          "--user"
          g.user
          "--path"
          path
        ]
        # The display of a GPU VM (wayland.nix), in name order.
        ++ lib.concatLists (lib.mapAttrsToList (n: v: [ "--env" "${n}=${v}" ]) g.commandEnvironment)
        ++ lib.optional g.hybridVsock "--any-peer-port"
      );
      StandardInput = "socket";
      StandardOutput = "socket";
      StandardError = "journal";
      SyslogIdentifier = "vmsilo-agent";
      # Root: the agent switches to the user itself (setgroups, setgid, setuid) after it has
      # checked the request.
      User = "root";
      # The command's process group gets SIGHUP and, 5 s later, SIGKILL from the agent when the
      # client goes away; a stop (shutdown) is given the same grace. Processes a command leaves
      # behind end with its connection (KillMode=control-group): start long-lived programs as
      # user services instead.
      TimeoutStopSec = 5;

      # Hardening. The commands vm-run starts inherit all of it, and they are the user's
      # programs, as in a login session: so only what no user program needs is taken away, by
      # seccomp and the capability bounding set (which also binds setuid programs run by them).
      # - no module loading, clock setting, reboot or kexec, swap, raw port I/O, obsolete calls;
      SystemCallFilter = [
        "~@module"
        "~@clock"
        "~@reboot"
        "~@swap"
        "~@raw-io"
        "~@obsolete"
      ];
      SystemCallErrorNumber = "EPERM";
      # - and the capabilities for them, for the kernel log and a few more. One line: lines
      #   without `~` would be ORed back in.
      CapabilityBoundingSet = "~" + lib.concatStringsSep " " [
        "CAP_SYS_MODULE"
        "CAP_SYS_TIME"
        "CAP_WAKE_ALARM"
        "CAP_SYS_BOOT"
        "CAP_SYS_RAWIO"
        "CAP_SYSLOG"
        "CAP_SYS_PACCT"
        "CAP_LINUX_IMMUTABLE"
        "CAP_MAC_ADMIN"
        "CAP_MAC_OVERRIDE"
      ];
      # Left off on purpose, because each would change what the user's programs can do:
      # - any namespace (ProtectSystem, ProtectHome, PrivateTmp, PrivateDevices, ProtectKernel*,
      #   ProtectControlGroups, ProtectHostname, PrivateNetwork, PrivateIPC, …): every connection
      #   would get its own view, so a FUSE mount, /tmp/.X11-unix or a file in /tmp made by one
      #   command would be missing in the next, and GPU and sound devices would be hidden;
      # - NoNewPrivileges: /run/wrappers/bin (sudo, ping, fusermount, newuidmap) would stop working;
      # - RestrictNamespaces: browser and bubblewrap sandboxes use user namespaces;
      # - MemoryDenyWriteExecute (JITs), SystemCallArchitectures=native (32-bit programs, wine),
      #   RestrictRealtime (audio, with the @audio rtprio limits of sound.nix), LockPersonality
      #   (gdb's disable-randomization), RestrictSUIDSGID (setgid directories, tar -p),
      #   RestrictAddressFamilies (any program's sockets), DevicePolicy and ProtectClock (which
      #   sets one).
      # Administration that needs more goes through vm-shell, not vm-run.
    };
  };
}
