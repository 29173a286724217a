/** The runtime layout (SPEC D4): every path a unit, script or VMM uses, defined once. */
export const RUN_ROOT = "/run/vmsilo";
export const STATE_ROOT = "/var/lib/vmsilo";
export const SHARED_ROOT = "/shared";
export const HOME_TEMPLATE = `${STATE_ROOT}/home-template`;

export const vmPaths = (vm: string) => {
  const run = `${RUN_ROOT}/${vm}`;
  return {
    run,
    commandSocket: `${run}/command.socket`,
    /** The user's socket to the guest's sshd (vm-shell --ssh's ProxyCommand connects to it). */
    sshSocket: `${run}/ssh.socket`,
    controlSocket: `${run}/crosvm-control.socket`,
    /** cloud-hypervisor's HTTP API socket (`--api-socket`; `ch-remote --api-socket`). */
    chApiSocket: `${run}/cloud-hypervisor-control.socket`,
    /** cloud-hypervisor's hybrid vsock socket (host-initiated `CONNECT <port>`), handed to the user. */
    vsockSocket: `${run}/vsock.socket`,
    /** The directory of an unprivileged VMM's own sockets: its unit's RuntimeDirectory=, the VMM user's. */
    vmmDir: `${run}/vmm`,
    /** qemu's QMP control socket (qemu binds it; the stop script's QMP client connects). */
    qmpSocket: `${run}/vmm/qmp.socket`,
    consoleBackend: `${run}/console-backend.socket`,
    console: `${run}/console`,
    /** What the guest printed on its console since the relay started, for the user to read. */
    consoleLog: `${run}/console.log`,
    /** The definition digest the VM's service recorded at start (vm-list: restart pending). */
    definition: `${run}/definition`,
    virtiofsDir: `${run}/virtiofs`,
    virtiofsSocket: (tag: string) => `${run}/virtiofs/${tag}.socket`,
    /** Where a share's directory is bound inside its virtiofsd's mount namespace (vmsilo-share-bind). */
    virtiofsRoot: (tag: string) => `${run}/virtiofs/${tag}`,
    gpuDir: `${run}/gpu`,
    gpuSocket: `${run}/gpu/gpu.socket`,
    shaderCache: `${run}/gpu/shader-cache`,
    seccontextDir: `${run}/wayland`,
    seccontextSocket: `${run}/wayland/seccontext.socket`,
    soundDir: `${run}/sound`,
    soundSocket: `${run}/sound/sound.socket`,
    ephemeralDisk: `${STATE_ROOT}/${vm}/ephemeral.raw`,
    /** A disposable slot's use socket (vm-run --disposable connects to it to take the slot). */
    useSocket: `${run}/use.socket`,
    /** A slot's use service's RuntimeDirectory=: there from the slot's taking until its instance is wiped. */
    useDir: `${run}/use`,
    /** In the use directory while a command runs in the slot (gone once it ended, while the slot is wiped). */
    useMarker: `${run}/use/in-use`,
    defaultSharedHome: `${SHARED_ROOT}/${vm}`,
  };
};
export type VmPaths = ReturnType<typeof vmPaths>;

/** Unit names, defined once; the polkit rule and the CLIs name the same units. */
export const unitNames = (vm: string) => ({
  socket: `vmsilo-${vm}.socket`,
  proxy: `vmsilo-${vm}@.service`,
  // The ssh channel's pair: with Accept=yes the socket's name fixes its service template's. `_` is in
  // no VM name, so `vmsilo-<vm>_ssh` is no other VM's command pair (`vmsilo-<vm>-ssh` is VM
  // `<vm>-ssh`'s) and, being a .socket or an @-template, none of the VMs' other units.
  sshSocket: `vmsilo-${vm}_ssh.socket`,
  sshProxy: `vmsilo-${vm}_ssh@.service`,
  // A disposable slot's use pair (Accept=no): `_`, as for ssh, keeps them apart from VM `<vm>-use`'s units.
  useSocket: `vmsilo-${vm}_use.socket`,
  use: `vmsilo-${vm}_use.service`,
  prep: `vmsilo-${vm}-prep.service`,
  vm: `vmsilo-${vm}-vm.service`,
  consoleRelay: `vmsilo-${vm}-console-relay.service`,
  virtiofsd: (tag: string) => `vmsilo-${vm}-virtiofsd-${tag}.service`,
  sharedHome: `vmsilo-${vm}-shared-home.service`,
  sound: `vmsilo-${vm}-sound.service`,
  seccontext: `vmsilo-${vm}-wayland-seccontext.service`,
  gpu: `vmsilo-${vm}-gpu.service`,
  sessionBind: `vmsilo-${vm}-session-bind.service`,
  tray: `vmsilo-${vm}-tray.service`,
  /** The bridge of the VM's netvm link (the VM is its client: one link per client). */
  uplink: `vmsilo-${vm}-uplink.service`,
  /** Attaches the VM's `usbDevices` (at VM start, and when udev sees one plugged in). */
  usb: `vmsilo-${vm}-usb.service`,
});

/** The lock vm-run --disposable takes a slot of disposable VM `pattern` under (the user's, made by tmpfiles). */
export const poolLock = (pattern: string) => `${RUN_ROOT}/${pattern}/pool.lock`;

/** The host's firewall table for netvm links and host-gateway clients, and the unit that loads it. */
export const FIREWALL_UNIT = "vmsilo-firewall.service";
export const FIREWALL_TABLE = "vmsilo";
/** The host's balloon daemon. */
export const BALLOOND_UNIT = "vmsilo-balloond.service";
/** Binds `isolatedPciDevices` to vfio-pci. */
export const VFIO_BIND_UNIT = "vmsilo-vfio-bind.service";
/** The USB broker's record of which device is attached to which VM (vm-list reads it). */
export const USB_STATE = `${RUN_ROOT}/usb-state.json`;
/** The USB broker's flock and the directory of its results (`<attach|detach>-<vm>:<bus path>`), which vmsilo-usb prints. */
export const USB_LOCK = `${RUN_ROOT}/usb-state.lock`;
export const USB_RESULTS = `${RUN_ROOT}/usb-results`;
/** The broker's templates; the instance is `<vm>:<bus path>` (neither has '/', '\\' or ':' of its own,
 * so it needs no escaping and the unit takes it raw, `%i`). */
export const USB_UNITS = { attach: "vmsilo-usb-attach@.service", detach: "vmsilo-usb-detach@.service" } as const;

export const SYSTEM_TARGET = "vmsilo.target";
export const SESSION_TARGET = "vmsilo-session.target";

/** The helpers every VM shares, as `libexec/vmsilo/<name>` beside the VMs' own `libexec/vmsilo/<vm>/`
 * directories: a VM may not take one of these names (grammar.ts RESERVED_VM_NAMES). */
export const SHARED_LIBEXEC = { waitForSocket: "wait-for-socket", qmp: "qmp", checkDisks: "check-disks", createDisk: "create-disk", vfioBind: "vfio-bind" } as const;

/** Where files go inside the output tree. */
export const OUT = {
  bin: "bin",
  libexec: "libexec/vmsilo",
  systemUnits: "lib/systemd/system",
  userUnits: "lib/systemd/user",
  tmpfiles: "lib/tmpfiles.d/vmsilo.conf",
  polkit: "share/polkit-1/rules.d/60-vmsilo.rules",
  manifest: "share/vmsilo/manifest.json",
  firewall: "share/vmsilo/firewall.nft",
  /** The USB broker's configuration: the VMs it may act on and their devices. */
  usbConfig: "share/vmsilo/usb.conf",
  udevRules: "lib/udev/rules.d/70-vmsilo-usb.rules",
  man1: "share/man/man1",
  /** Where bash-completion, zsh and fish look for a package's completions. */
  bashCompletions: "share/bash-completion/completions",
  zshCompletions: "share/zsh/site-functions",
  fishCompletions: "share/fish/vendor_completions.d",
  /** A VM's own data files. */
  vmShare: (vm: string) => `share/vmsilo/${vm}`,
  /** A VM's definition digest, which its service records at start. */
  definition: (vm: string) => `share/vmsilo/${vm}/definition`,
} as const;
