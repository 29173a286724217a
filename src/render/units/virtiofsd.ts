import { GUEST_USER_IDS, type Model, type VmModel } from "../../model/model.js";
import { add, exec, unitFile, type UnitFile } from "../../systemd/unit.js";
import { type Tools, required } from "../context.js";
import { vmSource } from "../files.js";
import { harden, helper, waitForSocket } from "./common.js";

export function virtiofsdUnit(model: Model, vm: VmModel, t: Tools, tag: string): UnitFile {
  const share = vm.shares.find((s) => s.tag === tag)!;
  const u = unitFile(vm.units.virtiofsd(tag), vmSource(vm.name, share.isSharedHome ? "sharedHome" : `sharedDirectories.${tag}`));
  const socket = vm.paths.virtiofsSocket(tag);
  helper(u, vm, `virtiofsd for share ${tag} of VM ${vm.name}`);
  if (share.isSharedHome) {
    add(u, "Unit", "Requires", vm.units.sharedHome);
    add(u, "Unit", "After", vm.units.sharedHome);
  }
  // virtiofsd runs as root and would follow a link the user put at (or above) the share's path,
  // exporting whatever it points to: it gets the directory bound at a root-only mount point instead,
  // opened by vmsilo-share-bind without following any link.
  const root = vm.paths.virtiofsRoot(tag);
  const argv = [
    t.shareBind,
    share.path,
    root,
    required(t.virtiofsd, "programs.virtiofsd"),
    "--shared-dir",
    root,
    "--tag",
    tag,
    "--socket-path",
    socket,
    "--thread-pool-size",
    String(share.threadPoolSize),
    `--inode-file-handles=${share.inodeFileHandles}`,
    "--cache",
    share.cache,
    "--log-level",
    share.logLevel,
  ];
  const flags: Array<[boolean, string]> = [
    [share.xattr, "--xattr"],
    [share.posixAcl, "--posix-acl"],
    [share.readonly, "--readonly"],
    [share.allowMmap, "--allow-mmap"],
    [!share.enableReaddirplus, "--no-readdirplus"],
    [share.writeback, "--writeback"],
    [share.allowDirectIo, "--allow-direct-io"],
    [share.killprivV2, "--killpriv-v2"],
    [share.preserveNoatime, "--preserve-noatime"],
  ];
  for (const [on, flag] of flags) if (on) argv.push(flag);
  // A VMM running as its own user connects through its group (virtiofsd's socket is root's, 0660).
  if (vm.vmmUser !== null) argv.push("--socket-group", vm.vmmUser);
  // The guest user writes as the host user: unless the share maps ids itself, the guest user's uid
  // and gid are translated to the host user's both ways (nothing to do when they are the same).
  const { uid, gid } = model.config.user;
  const userMap = (own: string | null, nsMap: string | null, guest: number, host: number) => own ?? (nsMap === null && guest !== host ? `map:${guest}:${host}:1` : null);
  const maps: Array<[string | null, string]> = [
    [share.uidMap, "--uid-map"],
    [share.gidMap, "--gid-map"],
    [userMap(share.translateUid, share.uidMap, GUEST_USER_IDS.uid, uid), "--translate-uid"],
    [userMap(share.translateGid, share.gidMap, GUEST_USER_IDS.gid, gid), "--translate-gid"],
  ];
  for (const [v, flag] of maps) if (v !== null) argv.push(flag, v);
  add(u, "Service", "ExecStart", exec(argv));
  waitForSocket(u, t, socket, model);
  // virtiofsd sandboxes itself in new namespaces and must act as any uid on the shared files.
  // No PrivateDevices=: it takes CAP_MKNOD out of the bounding set, and virtiofsd's capset() of the
  // capabilities it keeps (CAP_MKNOD among them) then fails; DevicePolicy=closed still keeps it
  // from any device but the pseudo ones, and from making device nodes.
  harden(u, {
    writable: [vm.paths.virtiofsDir, ...(share.readonly ? [] : [share.path])],
    namespaces: true,
    devices: true,
    caps: ["CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID", "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_MKNOD", "CAP_SETFCAP", "CAP_SYS_ADMIN", "CAP_SYS_CHROOT"],
  });
  // @system-service lacks the mount calls (vmsilo-share-bind's open_tree and move_mount; the mount,
  // umount2 and pivot_root of virtiofsd's namespace sandbox) and seccomp, with which virtiofsd
  // installs its own, narrower filter.
  add(u, "Service", "SystemCallFilter", "@mount seccomp");
  add(u, "Service", "DevicePolicy", "closed");
  add(u, "Service", "ProtectHome", "read-only");
  add(u, "Service", "MemoryDenyWriteExecute", true);
  return u;
}
