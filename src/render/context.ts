import type { Model, VmModel } from "../model/model.js";
import { OUT, SHARED_LIBEXEC } from "../model/paths.js";

/** Absolute paths of programs and of this package's own scripts, as the artifacts call them. */
export function toolPaths(model: Model, prefix: string) {
  const p = model.config.programs;
  const core = (tool: string) => `${p.coreutils}/bin/${tool}`;
  return {
    bash: `${p.bash}/bin/bash`,
    install: core("install"),
    rm: core("rm"),
    truncate: core("truncate"),
    cp: core("cp"),
    timeout: core("timeout"),
    tail: core("tail"),
    readlink: core("readlink"),
    sleep: core("sleep"),
    chown: core("chown"),
    chmod: core("chmod"),
    cat: core("cat"),
    mv: core("mv"),
    mktemp: core("mktemp"),
    stat: core("stat"),
    realpath: core("realpath"),
    systemctl: `${p.systemd}/bin/systemctl`,
    systemdNotify: `${p.systemd}/bin/systemd-notify`,
    socat: `${p.socat}/bin/socat`,
    // vmsilo-run under the name vm-run: `vm-run VM …` finds /run/vmsilo/VM/command.socket itself.
    vmRun: `${p.vmsiloTools}/bin/vm-run`,
    vsockProxy: `${p.vmsiloTools}/bin/vmsilo-vsock-proxy`,
    /** Binds a share's directory, opened without following links, then execs: SHARE_BIND SOURCE TARGET PROGRAM… */
    shareBind: `${p.vmsiloTools}/bin/vmsilo-share-bind`,
    /** Appends stdin to a file, keeping it bounded: CONSOLE_LOG FILE */
    consoleLog: `${p.vmsiloTools}/bin/vmsilo-console-log`,
    /** The USB broker (root through its units; `list` and `find` as the user): docs/usb.md. */
    usbBroker: `${p.vmsiloTools}/bin/vmsilo-usb-broker`,
    ip: p.iproute2 === null ? null : `${p.iproute2}/bin/ip`,
    nft: p.nftables === null ? null : `${p.nftables}/bin/nft`,
    /** Binds PCI devices to vfio-pci: VFIO_BIND BDF… */
    vfioBind: `${prefix}/${OUT.libexec}/${SHARED_LIBEXEC.vfioBind}`,
    virtiofsd: p.virtiofsd === null ? null : `${p.virtiofsd}/bin/virtiofsd`,
    ssh: p.openssh === null ? null : `${p.openssh}/bin/ssh`,
    jq: p.jq === null ? null : `${p.jq}/bin/jq`,
    waitForSocket: `${prefix}/${OUT.libexec}/${SHARED_LIBEXEC.waitForSocket}`,
    vmScript: (vm: VmModel, name: string) => `${prefix}/${OUT.libexec}/${vm.name}/${name}`,
    /** A file of the output tree, as installed. */
    installed: (path: string) => `${prefix}/${path}`,
    prefix,
    qemuSystem: p.qemu === null ? null : `${p.qemu}/bin/qemu-system-x86_64`,
    qemuImg: p.qemu === null ? null : `${p.qemu}/bin/qemu-img`,
    /** QMP client of qemu VMs (graceful and hard stop): QMP SOCKET COMMAND. */
    qmp: `${prefix}/${OUT.libexec}/${SHARED_LIBEXEC.qmp}`,
    /** Refuses disk images in directories others than root can change: CHECK_DISKS VM PATH… */
    checkDisks: `${prefix}/${OUT.libexec}/${SHARED_LIBEXEC.checkDisks}`,
    /** Creates a missing `createSize` disk: CREATE_DISK FORMAT PATH SIZE. */
    createDisk: `${prefix}/${OUT.libexec}/${SHARED_LIBEXEC.createDisk}`,
  };
}

export type Tools = ReturnType<typeof toolPaths>;

/** Fails loudly if a feature's program is missing; validation reports this first. */
export function required<T>(value: T | null, what: string): T {
  if (value === null) throw new Error(`internal: ${what} is not configured`);
  return value;
}
