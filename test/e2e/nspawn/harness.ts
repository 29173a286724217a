/**
 * Real systemd for a rendered tree: `bootNspawn()` boots a container (systemd as PID 1,
 * systemd-nspawn over this machine's /usr, ../../shared/E2E.md) with the tree installed as NixOS
 * installs it, and runs a driver script in it as root; the driver records a line per check in
 * /results/result ("ok NAME" / "FAIL NAME (why)"), which the test reads after the container powered off.
 *
 * Installed as NixOS does (nixos-module/wiring.nix):
 *  - the tree is bound at its store path (the render prefix); its units are linked from there into
 *    /etc/systemd/system and /etc/systemd/user, its tmpfiles rules into /etc/tmpfiles.d and applied
 *    by systemd-tmpfiles, its polkit rule into /etc/polkit-1/rules.d;
 *  - `programs.*` keep their store paths: each is a bind mount of this machine's /usr (bash,
 *    coreutils, systemd, socat, iproute2, qemu), of Debian's C virtiofsd behind the Rust-flag
 *    stand-in, of the vmsilo-tools built from agent/ (its tray daemons and security-context helper too, the latter talking to the
 *    test compositor of ../../wayland/, which runs as the user on $XDG_RUNTIME_DIR/wayland-0 and
 *    logs what it sees to /results/compositor.log), or of a behaving stand-in (../standins/) for
 *    what cannot run here; a VM's kernel, initrd and root image in the store are placeholders
 *    (the stand-ins check they exist; the qemu guests use the real test guest);
 *  - real dbus, systemd-logind and polkitd (Debian's polkitd, libpam-systemd) run in the container;
 *    the user (programs.vmsilo.user) and another one exist (systemd-sysusers), and `as_user` runs
 *    a command in a new logind session of the user on seat0, local and active (PAM: runuser -l with
 *    pam_systemd), which the generated polkit rule requires; the user lingers, so its manager runs
 *    from the start with the user's session bus on $XDG_RUNTIME_DIR/bus (dbus-user-session), as a
 *    desktop session has it;
 *  - the bridges the VMs' units `BindsTo=` exist, and systemd sees their device units plugged: there
 *    is no udev in the container, so the harness writes the udev database entry (tag `systemd`) and
 *    reloads, which is what udev would have told systemd. /sys is writable for that
 *    (SYSTEMD_NSPAWN_API_VFS_WRITABLE), and the container has its own network namespace.
 *
 * The driver sees: $TREE (the tree's prefix), $BIN ($TREE/bin), $VMSILO_USER / $OTHER_USER,
 * /results/compositor.log (the test compositor's report: contexts, confined clients), and the
 * shell functions of COMMON below (check, until_, as_user, as_other, install_tree).
 */
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { ROOT, TEST_PREFIX, render, writeTree } from "../../support/harness.js";
import { resolve } from "../../../src/generate.js";
import { VMM_DIR, checkCrosvmArgv, loadCrosvmCli, parseSystemdExec } from "../../contract/crosvm-contract.js";
import { CACHE, ensureDebs, have, readOr, unitValues, virtiofsdStandIn, vmsiloToolsPackage, vmsiloTrayPackage } from "../support.js";
import { REPO_IN_CONTAINER, STAGE, VMM_IN_CONTAINER, standIns } from "../standins/index.js";
import { WAYLAND_DEBS, waylandTools, type WaylandTools } from "../../wayland/support.js";

/** What the harness installs from Debian (also in .ci/run-deps.txt). */
export const NSPAWN_DEBS = ["systemd-container", "dbus", "dbus-user-session", "libsystemd-dev", "polkitd", "libpam-systemd", "socat", "iproute2", "nftables", "qemu-system-common", "gcc", "libc6-dev", "jq", ...WAYLAND_DEBS] as const;

/** Programs that are this machine's own, at their store paths. */
const HOST_USR = ["bash", "coreutils", "systemd", "socat", "iproute2", "qemu", "openssh", "jq"];

/** Why the harness cannot run here, or null. */
export function nspawnPrerequisites(): string | null {
  if (process.getuid?.() !== 0) return "systemd-nspawn e2e: needs root";
  const debs = ensureDebs(NSPAWN_DEBS);
  if (debs) return `systemd-nspawn e2e: ${debs}`;
  if (!have("systemd-nspawn")) return "systemd-nspawn e2e: systemd-nspawn not found after installing systemd-container";
  if (!existsSync(VMM_DIR)) return `systemd-nspawn e2e: ${VMM_DIR} (upstream's CLI definitions, which the stand-ins check against) is absent`;
  const w = wayland();
  if (typeof w === "string") return `systemd-nspawn e2e: the Wayland security-context helper and test compositor: ${w}`;
  return null;
}

/** The real vmsilo-wayland-seccontext and the test compositor it talks to (../../wayland/). */
let built: WaylandTools | string | undefined;
const wayland = (): WaylandTools | string => (built ??= waylandTools());
/** Where the container sees the test compositor's directory. */
const WAYLAND_IN_CONTAINER = `${STAGE}/wayland`;

const COMMON = String.raw`
R=/results
check() {
  if eval "$2"; then echo "ok $1" >>"$R/result"; else echo "FAIL $1 ($2)" >>"$R/result"; fi
}
note() { echo "$*" >>"$R/result"; }
# Wait up to $2 seconds for the condition $1.
until_() {
  local end=$((SECONDS + $2))
  until eval "$1"; do
    [ "$SECONDS" -ge "$end" ] && return 1
    sleep 0.1
  done
}
# A command line run in a new logind session of a user on seat0 (PAM: pam_systemd).
as() {
  local user=$1
  shift
  XDG_SEAT=seat0 runuser -l "$user" -c "$*"
}
as_user() { as "$VMSILO_USER" "$@"; }
as_other() { as "$OTHER_USER" "$@"; }
# Install a tree as NixOS does: its units linked into /etc/systemd, its tmpfiles rules applied, its
# polkit rule in place; links of an earlier tree that the new one lacks are removed.
install_tree() {
  local tree=$1 l
  mkdir -p /etc/systemd/user /etc/tmpfiles.d /etc/polkit-1/rules.d
  for l in /etc/systemd/system/vmsilo* /etc/systemd/user/vmsilo*; do
    [ -L "$l" ] && rm -f "$l"
  done
  ln -sfn "$tree"/lib/systemd/system/* /etc/systemd/system/
  [ -d "$tree/lib/systemd/user" ] && ln -sfn "$tree"/lib/systemd/user/* /etc/systemd/user/
  ln -sfn "$tree/lib/tmpfiles.d/vmsilo.conf" /etc/tmpfiles.d/vmsilo.conf
  ln -sfn "$tree/share/polkit-1/rules.d/60-vmsilo.rules" /etc/polkit-1/rules.d/60-vmsilo.rules
  # The one difference from NixOS: the programs at the store paths are Debian's, linked against
  # /usr/lib, so a unit with an empty root (TemporaryFileSystem=/, the GPU's) gets those too.
  rm -rf /etc/systemd/system/vmsilo*.d
  for l in $(grep -l '^TemporaryFileSystem=/$' "$tree"/lib/systemd/system/*.service); do
    l=/etc/systemd/system/$(basename "$l").d
    mkdir -p "$l"
    printf '[Service]\nBindReadOnlyPaths=/usr /usr/lib:/lib /usr/lib64:/lib64\n' >"$l/vmsilo-e2e-fhs.conf"
  done
  systemd-tmpfiles --create /etc/tmpfiles.d/vmsilo.conf
  systemctl daemon-reload
}
`;

const SETUP = String.raw`
set -u
. "$STAGE_RUN/env"
. "$STAGE_RUN/common.sh"
# Directories laid over the container's own mounts (nspawn's /sys/bus would cover a bind of its own).
while read -r source target; do
  check "late-bind:$target" "mount --bind $source $target"
done <"$STAGE_RUN/late-binds"
install_tree "$TREE"
check tmpfiles-applied "test -d /run/vmsilo && test -d /var/lib/vmsilo"
for u in "$VMSILO_USER" "$OTHER_USER"; do
  home=$(getent passwd "$u" | cut -d: -f6)
  install -d -o "$u" -g "$(id -g "$u")" "$home"
done
while read -r d; do
  [ -n "$d" ] || continue
  install -d -o "$VMSILO_USER" -g "$(id -g "$VMSILO_USER")" "$d"
done <"$STAGE_RUN/share-dirs"
while read -r d; do
  [ -n "$d" ] || continue
  mkdir -p "$(dirname "$d")"
  truncate -s 16M "$d"
  chmod 0600 "$d"
done <"$STAGE_RUN/disks"
# /dev/net/tun as systemd's udev rules leave it (50-udev-default.rules: mode 0666), for the qemu
# VMs that open their taps as their own user; the container has no udev, and its node is its own.
chmod 0666 /dev/net/tun
# The bridges, with what udev would have recorded for them (tag systemd: a device unit).
mkdir -p /run/udev/data /run/udev/tags/systemd
for b in $BRIDGES; do
  ip link add "$b" type bridge && ip link set "$b" up
  idx=$(cat "/sys/class/net/$b/ifindex")
  # 99-systemd.rules: the net device's alias, which the VM units' BindsTo= names.
  printf 'I:%s\nE:SYSTEMD_ALIAS=/sys/subsystem/net/devices/%s\nG:systemd\nQ:systemd\nV:1\n' "$(($(cut -d' ' -f1 /proc/uptime | tr -d .) * 10000))" "$b" >"/run/udev/data/n$idx"
  : >"/run/udev/tags/systemd/n$idx"
done
systemctl daemon-reload
for b in $BRIDGES; do
  check "bridge-$b-plugged" "systemctl is-active -q \"sys-subsystem-net-devices-$(systemd-escape "$b").device\""
done
systemctl start dbus.socket systemd-logind.service polkit.service
check polkit-running "systemctl is-active -q polkit.service"
# The user's runtime directory outlives each session (XDG_RUNTIME_DIR of the sound and Wayland
# units), and a compositor with the security-context protocol listens there for the helper.
loginctl enable-linger "$VMSILO_USER"
check runtime-dir "until_ 'test -d /run/user/$(id -u "$VMSILO_USER")' 10"
: >"$R/compositor.log"
chown "$VMSILO_USER" "$R/compositor.log"
systemd-run -q --unit=e2e-compositor --uid="$VMSILO_USER" --gid="$(id -g "$VMSILO_USER")" -p StandardOutput=append:$R/compositor.log "$WAYLAND/vmsilo-test-compositor" --socket "/run/user/$(id -u "$VMSILO_USER")/wayland-0"
check compositor-listening "until_ 'grep -q ^listening $R/compositor.log' 10"
# What NixOS starts at boot (multi-user.target wants it): the command sockets, the autoStart VMs.
systemctl start vmsilo.target
as_user 'loginctl show-session "$XDG_SESSION_ID" -p Active -p Remote -p Seat' >"$R/session.txt" 2>&1
check session-active-local-seat0 "grep -qx Active=yes $R/session.txt && grep -qx Remote=no $R/session.txt && grep -qx Seat=seat0 $R/session.txt"
`;

const FINISH = String.raw`
journalctl -q --no-pager -o short-monotonic >/results/journal.txt 2>&1
echo done >>/results/result
systemctl poweroff --no-block
`;

export interface ExtraTree {
  /** The store path it is rendered for and bound at. */
  prefix: string;
  config: Record<string, any>;
}

export interface NspawnOptions {
  label: string;
  /** vmsilo.json; its `programs.*` are store paths (see the header). */
  config: Record<string, any>;
  /** bash, run as root after the setup, with COMMON's functions; or made from the rendered tree. */
  driver: string | ((out: string) => string);
  /** More files for the run directory ($STAGE_RUN in the container); or made from the rendered tree. */
  files?: Record<string, string> | ((out: string) => Record<string, string>);
  /** Trees rendered besides the main one (e.g. the configuration after a switch). */
  extraTrees?: ExtraTree[];
  /** `[host, container]` directories bound writable over what the container has mounted there by
   * the time the driver runs (a fake /sys/bus/pci), before the tree is installed. */
  lateBinds?: Array<[string, string]>;
  timeoutS?: number;
}

export interface NspawnRun {
  /** The result file: one line per check. */
  readonly result: string;
  readonly results: string;
  readonly out: string;
  /** The "FAIL …" lines, and whether the driver got to its end. */
  readonly failed: string[];
  readonly done: boolean;
  /** Removes the run's directory (the rendered trees, the results). */
  remove(): void;
  /** What to print when an assertion fails: the result, the container's journal tail, nspawn's output. */
  context(): string;
}

/** Where the container sees the run directory. */
const STAGE_RUN = `${STAGE}/run`;

const storeRoot = (p: string) => /^\/nix\/store\/[^/]+/.exec(p)?.[0] ?? null;

/** The `[host, container]` binds that put programs.* at their store paths. */
function programBinds(config: Record<string, any>, dir: string): Array<[string, string]> {
  const w = wayland();
  if (typeof w === "string") throw new Error(w);
  const pkgs: Record<string, string> = { virtiofsd: virtiofsdStandIn(), vmsiloTools: vmsiloToolsPackage(), nftables: debianNftables(dir), ...standIns(), waylandSeccontext: w.prefix };
  // Built only for a tree that has the tray (it needs libsystemd's headers).
  if (config.programs.vmsiloTray) pkgs.vmsiloTray = vmsiloTrayPackage();
  const binds: Array<[string, string]> = [];
  for (const [key, path] of Object.entries(config.programs as Record<string, string>)) {
    if (!path.startsWith("/nix/store/")) continue;
    let host = HOST_USR.includes(key) ? "/usr" : pkgs[key];
    if (host === undefined) {
      // A library path only (vulkanLoader): an empty package.
      host = join(dir, "empty", key);
      mkdirSync(host, { recursive: true });
    }
    binds.push([host, path]);
  }
  return binds;
}

/** Debian's nft (in /usr/sbin) as a package with bin/nft. */
function debianNftables(dir: string): string {
  const pkg = join(dir, "nftables");
  mkdirSync(join(pkg, "bin"), { recursive: true });
  if (!existsSync(join(pkg, "bin", "nft"))) symlinkSync("/usr/sbin/nft", join(pkg, "bin", "nft"));
  return pkg;
}

/** Placeholders for the VMs' kernels, initrds and root images in the store. */
function imageBinds(config: Record<string, any>, dir: string, taken: Set<string>): Array<[string, string]> {
  const roots = new Map<string, string>();
  for (const vm of Object.values(config.nixosVms as Record<string, any>)) {
    for (const p of [vm.kernel, vm.initramfs, vm.rootDisk?.path]) {
      const root = typeof p === "string" ? storeRoot(p) : null;
      if (!root || taken.has(root)) continue;
      const host = join(dir, "store", root.slice("/nix/store/".length));
      mkdirSync(join(host, dirname(p.slice(root.length))), { recursive: true });
      writeFileSync(join(host, p.slice(root.length)), "");
      roots.set(root, host);
    }
  }
  return [...roots].map(([root, host]) => [host, root]);
}

/**
 * The command lines of `device gpu` in the tree's units, each checked against upstream's CLI
 * definition, for the crosvm stand-in's list of what it accepts (it runs with an empty root, where
 * the checker cannot run: helper.c). Throws with the checker's problems.
 */
function acceptedGpuArgv(out: string, crosvm: string, into: string): void {
  mkdirSync(into, { recursive: true });
  const cli = loadCrosvmCli();
  const dir = join(out, "lib", "systemd", "system");
  let n = 0;
  for (const f of readdirSync(dir).sort()) {
    for (const line of unitValues(readFileSync(join(dir, f), "utf8"), "Service", "ExecStart")) {
      for (const c of parseSystemdExec(line)) {
        if (c.path !== `${crosvm}/bin/crosvm`) continue;
        const problems = checkCrosvmArgv(c.argv, cli);
        if (problems.length) throw new Error(`${f}: upstream's crosvm CLI definition refuses ${JSON.stringify(c.argv)}: ${problems.join("; ")}`);
        writeFileSync(join(into, String(n++)), c.argv.slice(1).map((a) => `${a}\0`).join(""));
      }
    }
  }
}

const bridgesOf = (config: Record<string, any>) =>
  [...new Set(Object.values(config.nixosVms as Record<string, any>).flatMap((vm) => Object.values((vm.network?.interfaces ?? {}) as Record<string, any>).flatMap((i) => (i.tap?.bridge ? [i.tap.bridge as string] : []))))].sort();

/** A user of the container: programs.vmsilo.user, and another one the polkit rule must refuse. */
function sysusers(config: Record<string, any>): string {
  const u = config.user;
  // The VMM users the model names, as the NixOS module declares them (nixos-module/wiring.nix).
  const vmm = resolve(config).vms.flatMap((vm) => (vm.vmmUser === null ? [] : [`u ${vm.vmmUser} - "vmsilo VMM" - -`]));
  return [`g ${u.group} ${u.gid}`, `u ${u.name} ${u.uid}:${u.gid} "vmsilo user" ${u.home} /bin/bash`, `u mallory ${u.uid + 1}:${u.gid} "another user" /home/mallory /bin/bash`, ...(vmm.length ? ["g kvm -", ...vmm] : []), ""].join("\n");
}

export function bootNspawn(o: NspawnOptions): NspawnRun {
  const dir = join(CACHE, `nspawn-${o.label}-${process.pid}`);
  rmSync(dir, { recursive: true, force: true });
  const results = join(dir, "results");
  mkdirSync(results, { recursive: true });
  const out = join(dir, "out");
  writeTree(render(o.config, TEST_PREFIX), out);
  const binds: Array<[string, string]> = [[out, TEST_PREFIX]];
  for (const [i, t] of (o.extraTrees ?? []).entries()) {
    const extra = join(dir, `out-${i}`);
    writeTree(render(t.config, t.prefix), extra);
    binds.push([extra, t.prefix]);
  }
  const programs = programBinds(o.config, dir);
  binds.push(...programs);
  binds.push(...imageBinds(o.config, dir, new Set(programs.map(([, c]) => c))));
  const crosvm = o.config.programs.crosvm as string | undefined;
  if (crosvm) {
    acceptedGpuArgv(out, crosvm, join(dir, "accepted"));
    binds.push([join(dir, "accepted"), `${crosvm}/share/vmsilo-e2e/accepted`]);
  }
  const vms = Object.values(o.config.nixosVms as Record<string, any>);
  const run = join(dir, "run");
  mkdirSync(run);
  const files: Record<string, string> = {
    "common.sh": COMMON,
    "run.sh": `${SETUP}\n. "$STAGE_RUN/driver.sh"\n`,
    "finish.sh": FINISH,
    "driver.sh": typeof o.driver === "string" ? o.driver : o.driver(out),
    env: [`STAGE_RUN=${STAGE_RUN}`, `WAYLAND=${WAYLAND_IN_CONTAINER}`, `TREE=${TEST_PREFIX}`, `BIN=${TEST_PREFIX}/bin`, `VMSILO_USER=${o.config.user.name}`, "OTHER_USER=mallory", `BRIDGES="${bridgesOf(o.config).join(" ")}"`, ""].join("\n"),
    "share-dirs": vms.flatMap((vm) => Object.values((vm.sharedDirectories ?? {}) as Record<string, any>).map((s) => `${s.path}\n`)).join(""),
    disks: vms.flatMap((vm) => ((vm.additionalDisks ?? []) as any[]).filter((d) => !d.createSize).map((d) => `${d.path}\n`)).join(""),
    sysusers: sysusers(o.config),
    "late-binds": (o.lateBinds ?? []).map(([, c], i) => `${STAGE}/late/${i} ${c}\n`).join(""),
    "e2e-driver.service": ["[Unit]", "Description=vmsilo e2e driver", "After=basic.target", "", "[Service]", "Type=oneshot", `Environment=STAGE_RUN=${STAGE_RUN}`, `ExecStart=/bin/bash ${STAGE_RUN}/run.sh`, `ExecStopPost=/bin/bash ${STAGE_RUN}/finish.sh`, "StandardOutput=journal", ""].join("\n"),
    ...(typeof o.files === "function" ? o.files(out) : o.files),
  };
  for (const [name, text] of Object.entries(files)) writeFileSync(join(run, name), text, { mode: 0o755 });

  const args = [
    "-k", "10", String(o.timeoutS ?? 300),
    "systemd-nspawn", "--quiet", "--register=no", "--keep-unit", "--directory=/", "--volatile=yes", "--private-network",
    `--bind-ro=${ROOT}:${REPO_IN_CONTAINER}`,
    `--bind-ro=${VMM_DIR}:${VMM_IN_CONTAINER}`,
    `--bind-ro=${CACHE}:${STAGE}/cache`,
    `--bind-ro=${run}:${STAGE_RUN}`,
    `--bind-ro=${dirname((wayland() as WaylandTools).compositor)}:${WAYLAND_IN_CONTAINER}`,
    `--bind=${results}:/results`,
    "--bind-ro=/etc/pam.d", "--bind-ro=/etc/security",
    `--bind-ro=${join(run, "sysusers")}:/etc/sysusers.d/vmsilo-e2e.conf`,
    `--bind-ro=${join(run, "e2e-driver.service")}:/etc/systemd/system/e2e-driver.service`,
    ...binds.map(([h, c]) => `--bind-ro=${h}:${c}`),
    ...(o.lateBinds ?? []).map(([h], i) => `--bind=${h}:${STAGE}/late/${i}`),
    "--boot", "--", "systemd.unit=e2e-driver.service", "systemd.firstboot=off",
  ];
  const r = spawnSync("timeout", args, { encoding: "utf8", maxBuffer: 64 << 20, env: { ...process.env, SYSTEMD_NSPAWN_API_VFS_WRITABLE: "1" } });
  const result = readOr(join(results, "result"));
  return {
    result,
    results,
    out,
    failed: result.split("\n").filter((l) => l.startsWith("FAIL")),
    done: /^done$/m.test(result),
    remove: () => rmSync(dir, { recursive: true, force: true }),
    context: () =>
      `nspawn exit ${r.status}\n--- result\n${result}\n--- journal (tail)\n${readOr(join(results, "journal.txt")).split("\n").slice(-150).join("\n")}\n--- nspawn\n${(r.stdout + r.stderr).slice(-3000)}`,
  };
}
