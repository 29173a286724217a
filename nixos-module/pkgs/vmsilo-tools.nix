# vmsilo-tools: the native programs of agent/ (docs/protocol.md). Output `out`, C with libc only:
#   bin/vmsilo-run, bin/vm-run -> vmsilo-run   host client (vm-run <vm> <cmd> [args…])
#   bin/vmsilo-vsock-proxy                     host, one per connection of a VM's command socket
#   bin/vmsilo-agent                           guest, one per connection on vsock port 5000
#   bin/vmsilo-share-bind                      host, runs each root virtiofsd on its share's directory,
#                                              bound without following links
#   bin/vmsilo-console-log                     host, writes a console relay's console.log, bounded
#   bin/vmsilo-slot-use                        host, holds a disposable slot for one vm-run --disposable
#   bin/vmsilo-copy-check                      host, checks a tar stream from a source VM (for vm-copy)
#   bin/vmsilo-balloond                        host, the one balloon daemon (docs/balloon.md)
# Output `wayland`, linked with libwayland-client (kept apart so that guests, which run
# vmsilo-agent from `out`, do not carry it):
#   bin/vmsilo-wayland-seccontext              host, one per GPU VM: its Wayland security context
# Output `tray`, linked with libsystemd (sd-bus), likewise kept apart:
#   bin/vmsilo-tray-host                       host, one per VM with tray.enable: its tray items
#                                              on the user's session bus
#   bin/vmsilo-tray-guest                      guest, in the user's session: collects the tray items
# The host's vmsilo.json carries `out` as `programs.vmsiloTools`, `wayland` as
# `programs.waylandSeccontext` and `tray` as `programs.vmsiloTray`; every guest runs its vmsilo-agent (guest/command-agent.nix). The protocol tests (test/vmrun/) run in vmsilo-gen's
# check phase; the install check here is a smoke test of the binaries this toolchain built.
{
  lib,
  stdenv,
  pkg-config,
  wayland,
  wayland-protocols,
  wayland-scanner,
  systemdLibs,
}:
let
  root = ../..;
  agent = root + "/agent";
in
stdenv.mkDerivation {
  pname = "vmsilo-tools";
  # One version for the project: the generator's.
  inherit (lib.importJSON (root + "/package.json")) version;

  # The sources and the Makefile only: no README (editing it must not rebuild), no local build
  # directory (agent/build, whose binaries make would take as up to date).
  src = lib.fileset.toSource {
    root = agent;
    fileset = lib.fileset.fileFilter (f: f.hasExt "c" || f.hasExt "h" || f.name == "Makefile") agent;
  };

  outputs = [
    "out"
    "wayland"
    "tray"
  ];

  strictDeps = true;
  enableParallelBuilding = true;
  # wayland-scanner generates the security-context protocol's code from wayland-protocols' XML
  # (staging/security-context, 1.32 or later), found through pkg-config.
  nativeBuildInputs = [
    pkg-config
    wayland-scanner
  ];
  buildInputs = [
    wayland
    wayland-protocols
    # sd-bus and sd-event for the tray daemons, found through pkg-config.
    systemdLibs
  ];

  # stdenv's compiler wrapper adds its own hardening flags (fortify, stack protector, PIE, relro,
  # bindnow); the Makefile's would duplicate or contradict them (agent/Makefile).
  makeFlags = [
    "CC=${stdenv.cc.targetPrefix}cc"
    "HARDEN_CFLAGS="
    "HARDEN_LDFLAGS="
  ];
  buildFlags = [
    "all"
    "wayland"
    "tray"
  ];
  installTargets = [
    "install"
    "install-wayland"
    "install-tray"
  ];
  installFlags = [
    "PREFIX=${placeholder "out"}"
    "WAYLAND_PREFIX=${placeholder "wayland"}"
    "TRAY_PREFIX=${placeholder "tray"}"
  ];

  doInstallCheck = true;
  installCheckPhase = ''
    runHook preInstallCheck
    "$out/bin/vmsilo-agent" --help > /dev/null
    "$out/bin/vmsilo-vsock-proxy" --help > /dev/null
    "$out/bin/vm-run" --help > /dev/null
    "$wayland/bin/vmsilo-wayland-seccontext" --help > /dev/null
    "$tray/bin/vmsilo-tray-host" --help > /dev/null
    "$tray/bin/vmsilo-tray-guest" --help > /dev/null
    # No compositor in the build sandbox: it must say so and fail, not hang or crash.
    status=0; "$wayland/bin/vmsilo-wayland-seccontext" --wayland-socket "$TMPDIR/none" --app-id a --instance-id i --socket-path "$TMPDIR/s" 2> /dev/null || status=$?
    [ "$status" = 1 ] || { echo "vmsilo-wayland-seccontext without a compositor: status $status, expected 1" >&2; exit 1; }
    log="$TMPDIR/console.log"
    : > "$log"
    echo console | "$out/bin/vmsilo-console-log" "$log"
    [ "$(cat "$log")" = console ] || { echo "vmsilo-console-log wrote: $(cat "$log")" >&2; exit 1; }
    # Without its manifest the balloon daemon says so and exits 1.
    status=0; "$out/bin/vmsilo-balloond" --manifest "$TMPDIR/none" --once 2> /dev/null || status=$?
    [ "$status" = 1 ] || { echo "vmsilo-balloond without a manifest: status $status, expected 1" >&2; exit 1; }

    # One round trip over the agent's unix-socket transport: argv byte-exact, stdin, the status.
    sock="$TMPDIR/agent.sock"
    "$out/bin/vmsilo-agent" --path "$PATH" --listen-unix "$sock" &
    agent=$!
    for _ in $(seq 200); do [ -S "$sock" ] && break; sleep 0.05; done
    got=$("$out/bin/vmsilo-run" "$sock" printf '%s|' -n 'a b' "" '$HOME' < /dev/null)
    [ "$got" = '-n|a b||$HOME|' ] || { echo "vmsilo-run printed: $got" >&2; exit 1; }
    got=$(printf 'in\n' | "$out/bin/vmsilo-run" "$sock" cat)
    [ "$got" = in ] || { echo "stdin came back as: $got" >&2; exit 1; }
    status=0; "$out/bin/vmsilo-run" "$sock" bash -c 'exit 42' < /dev/null || status=$?
    [ "$status" = 42 ] || { echo "exit status $status, expected 42" >&2; exit 1; }
    status=0; "$out/bin/vmsilo-run" "$sock" vmsilo-no-such-command < /dev/null 2> /dev/null || status=$?
    [ "$status" = 127 ] || { echo "exit status $status for a missing command, expected 127" >&2; exit 1; }
    kill "$agent"
    runHook postInstallCheck
  '';

  meta = {
    description = "vm-run for vmsilo: the command client, the host vsock proxy and the guest agent; the host's share binder, console log writer and Wayland security-context helper";
    license = lib.licenses.mit;
    mainProgram = "vm-run";
    platforms = lib.platforms.linux;
  };
}
