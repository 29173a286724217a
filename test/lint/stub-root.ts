/**
 * A fake filesystem root for `systemd-analyze verify` and `systemd-analyze security`: systemd's own
 * units, the generated package installed at its prefix, stub executables for every program the
 * configuration names, and the generated units installed and wired the way the NixOS module wires
 * them (vmsilo.target wanted by multi-user.target, vmsilo-session.target by graphical-session.target).
 *
 * The stubs come from what each package *provides* (PACKAGE_CONTENTS), never from what the units
 * name, so a unit that calls a program the package does not have fails verification.
 */
import { spawnSync } from "node:child_process";
import { chmodSync, cpSync, existsSync, linkSync, mkdirSync, readFileSync, readdirSync, readlinkSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Programs } from "../../src/config/schema.js";
import { OUT, SESSION_TARGET, SYSTEM_TARGET } from "../../src/model/paths.js";
import type { FileTree } from "../../src/render/files.js";
import { parseUnit } from "../../src/systemd/unit.js";
import { regularFiles, tempDir, TEST_PREFIX, writeTree } from "../support/harness.js";

/**
 * What each package of `programs` holds, as nixpkgs lays it out (the programs of bin/, not only
 * those the generator uses today), so a unit naming a program its package lacks fails.
 */
export const PACKAGE_CONTENTS: { readonly [K in keyof Programs]-?: { bin?: readonly string[]; dirs?: readonly string[] } } = {
  bash: { bin: ["bash", "sh"] },
  vmsiloTools: { bin: ["vmsilo-run", "vm-run", "vmsilo-agent", "vmsilo-vsock-proxy", "vmsilo-share-bind", "vmsilo-console-log", "vmsilo-usb-broker", "vmsilo-slot-use", "vmsilo-copy-check", "vmsilo-balloond"] },
  // GNU coreutils 9.x, every program.
  coreutils: {
    bin: (
      "[ b2sum base32 base64 basename basenc cat chcon chgrp chmod chown chroot cksum comm cp csplit cut date dd df dir " +
      "dircolors dirname du echo env expand expr factor false fmt fold groups head hostid id install join kill link ln " +
      "logname ls md5sum mkdir mkfifo mknod mktemp mv nice nl nohup nproc numfmt od paste pathchk pinky pr printenv printf " +
      "ptx pwd readlink realpath rm rmdir runcon seq sha1sum sha224sum sha256sum sha384sum sha512sum shred shuf sleep sort " +
      "split stat stdbuf stty sum sync tac tail tee test timeout touch tr true truncate tsort tty uname unexpand uniq " +
      "unlink uptime users vdir wc who whoami yes"
    ).split(" "),
  },
  systemd: { bin: ["busctl", "journalctl", "loginctl", "systemctl", "systemd-analyze", "systemd-escape", "systemd-notify", "systemd-run", "systemd-socket-activate", "udevadm"] },
  socat: { bin: ["filan", "procan", "socat"] },
  crosvm: { bin: ["crosvm"] },
  cloudHypervisor: { bin: ["cloud-hypervisor", "ch-remote"] },
  // nixpkgs' qemu (x86_64 host): the system emulators and the tools.
  qemu: { bin: ["qemu-system-x86_64", "qemu-system-i386", "qemu-img", "qemu-io", "qemu-nbd", "qemu-storage-daemon", "qemu-pr-helper", "qemu-edid", "qemu-ga"] },
  virtiofsd: { bin: ["virtiofsd"] },
  jq: { bin: ["jq"] },
  wlClipboard: { bin: ["wl-copy", "wl-paste"] },
  openssh: { bin: ["scp", "sftp", "ssh", "ssh-add", "ssh-agent", "ssh-keygen", "ssh-keyscan", "sshd"] },
  iproute2: { bin: ["bridge", "ip", "rtmon", "ss", "tc"] },
  nftables: { bin: ["nft"] },
  vhostDeviceSound: { bin: ["vhost-device-sound"] },
  waylandSeccontext: { bin: ["vmsilo-wayland-seccontext"] },
  vmsiloTray: { bin: ["vmsilo-tray-guest", "vmsilo-tray-host"] },
  vulkanLoader: { dirs: ["lib"] },
};

/** Where systemd's own units live on this machine (merged /usr or not). */
function hostUnitDir(scope: "system" | "user"): string {
  for (const d of [`/usr/lib/systemd/${scope}`, `/lib/systemd/${scope}`]) if (existsSync(join(d, scope === "system" ? "multi-user.target" : "default.target"))) return d;
  throw new Error(`systemd's own ${scope} units not found under /usr/lib/systemd/${scope} or /lib/systemd/${scope}`);
}

/** One copy of systemd's own units per process; every root hard-links it (roots never write there). */
const hostUnitCache = new Map<string, string>();
function hostUnits(scope: "system" | "user"): string {
  let cached = hostUnitCache.get(scope);
  if (!cached) {
    cached = join(tempDir(`lint-${scope}-units`), "units");
    cpSync(hostUnitDir(scope), cached, { recursive: true, verbatimSymlinks: true });
    hostUnitCache.set(scope, cached);
    process.once("exit", () => rmSync(join(cached!, ".."), { recursive: true, force: true }));
  }
  return cached;
}

/** Recreate `from` at `to`: directories made, symlinks copied verbatim, files hard-linked. */
function linkTree(from: string, to: string): void {
  mkdirSync(to, { recursive: true });
  for (const e of readdirSync(from, { withFileTypes: true })) {
    const a = join(from, e.name);
    const b = join(to, e.name);
    if (e.isDirectory()) linkTree(a, b);
    else if (e.isSymbolicLink()) symlinkSync(readlinkSync(a), b);
    else linkSync(a, b);
  }
}

export interface StubRoot {
  /** The root directory (pass as --root=). */
  readonly dir: string;
  /** Names of the generated system units, as installed in <root>/etc/systemd/system. */
  readonly systemUnits: string[];
  /** Names of the generated user units. */
  readonly userUnits: string[];
  /** <root>/etc/systemd/system */
  readonly systemUnitDir: string;
  /** <root>/etc/systemd/user: the generated user units as installed. */
  readonly userUnitDir: string;
  /** Remove the root. */
  cleanup(): void;
}

const STUB = "#!/bin/sh\n# stub installed by test/lint/stub-root.ts\nexit 0\n";

/** systemd warns about (and so the tests would fail on) world-writable unit files: set the mode whatever the umask. */
function writeUnit(path: string, text: string): void {
  writeFileSync(path, text);
  chmodSync(path, 0o644);
}

/** Every stub is a hard link to one file (creating files is what makes a root slow to build). */
function stub(root: string, path: string): void {
  const original = join(root, ".stub");
  if (!existsSync(original)) {
    writeFileSync(original, STUB);
    chmodSync(original, 0o755);
  }
  mkdirSync(join(path, ".."), { recursive: true });
  linkSync(original, path);
}

/**
 * Build a root for `config` (the vmsilo.json the tree was rendered from) and its rendered `tree`.
 * `prefix` is the install prefix the tree was rendered with.
 */
export function buildStubRoot(config: { programs: Record<string, string | null>; user: { name: string; uid: number; gid: number; group: string; home: string } }, tree: FileTree, prefix = TEST_PREFIX): StubRoot {
  const dir = tempDir("lint-root");
  // systemd's own units: the targets the generated units are ordered against.
  for (const scope of ["system", "user"] as const) linkTree(hostUnits(scope), join(dir, "usr/lib/systemd", scope));
  // The generated package at its store path (the real scripts, so ExecStart= of the launchers resolve).
  writeTree(tree, join(dir, prefix));
  // Every program of `programs`, as stubs.
  for (const [key, storePath] of Object.entries(config.programs)) {
    if (storePath === null) continue;
    const contents = PACKAGE_CONTENTS[key as keyof Programs];
    if (!contents) throw new Error(`stub-root: no PACKAGE_CONTENTS entry for programs.${key}`);
    for (const b of contents.bin ?? []) stub(dir, join(dir, storePath, "bin", b));
    for (const d of contents.dirs ?? []) mkdirSync(join(dir, storePath, d), { recursive: true });
  }
  // Accounts, so User=/SocketUser= resolve should a check look them up.
  const { name, uid, gid, group, home } = config.user;
  mkdirSync(join(dir, "etc"), { recursive: true });
  writeFileSync(join(dir, "etc/passwd"), `root:x:0:0:root:/root:/bin/sh\n${name}:x:${uid}:${gid}::${home}:/bin/sh\n`);
  writeFileSync(join(dir, "etc/group"), `root:x:0:\n${group}:x:${gid}:\n`);
  // Install the units as systemd.packages does, and wire the two fixed targets as wiring.nix does.
  const install = (scope: "system" | "user", from: string, wantedBy: string, target: string): string[] => {
    const to = join(dir, "etc/systemd", scope);
    mkdirSync(to, { recursive: true });
    const names: string[] = [];
    for (const f of regularFiles(tree)) {
      if (!f.path.startsWith(`${from}/`)) continue;
      const n = f.path.slice(from.length + 1);
      writeUnit(join(to, n), f.content);
      names.push(n);
    }
    mkdirSync(join(to, `${wantedBy}.wants`), { recursive: true });
    symlinkSync(`../${target}`, join(to, `${wantedBy}.wants`, target));
    return names.sort();
  };
  const systemUnits = install("system", OUT.systemUnits, "multi-user.target", SYSTEM_TARGET);
  const userUnits = install("user", OUT.userUnits, "graphical-session.target", SESSION_TARGET);
  return {
    dir,
    systemUnits,
    userUnits,
    systemUnitDir: join(dir, "etc/systemd/system"),
    userUnitDir: join(dir, "etc/systemd/user"),
    cleanup: () => rmSync(dir, { recursive: true, force: true }),
  };
}

export interface ToolResult {
  readonly status: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/**
 * `systemd-analyze verify` of `units` in the root's system manager, together with the boot target
 * that pulls vmsilo.target in, so ordering cycles against systemd's own targets are found.
 */
export function verifySystem(root: StubRoot, units: readonly string[]): ToolResult {
  const r = spawnSync("systemd-analyze", ["verify", "--no-pager", `--root=${root.dir}`, "--man=no", "--generators=no", "multi-user.target", ...units], {
    encoding: "utf8",
    cwd: root.dir,
    env: { ...process.env, SYSTEMD_COLORS: "0" },
  });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/**
 * `systemd-analyze verify --user` of the user units. systemd 252 refuses `--root` for the user
 * scope ("Failed to initialize unit search paths for root directory …: Invalid argument"), so the
 * user manager gets an explicit SYSTEMD_UNIT_PATH (the installed units, then systemd's own user
 * units copied into the root), and copies of the units whose store paths point into the root
 * (`/nix/store/` → `<root>/nix/store/`, the only change) so Exec*= paths are checked against it.
 */
export function verifyUser(root: StubRoot, units: readonly string[]): ToolResult {
  const relocated = join(root.dir, ".user-units-relocated");
  rmSync(relocated, { recursive: true, force: true });
  mkdirSync(relocated);
  if (/[\s"'\\$%]/.test(root.dir)) throw new Error(`stub-root: temporary directory ${root.dir} needs quoting`);
  for (const n of readdirSync(root.userUnitDir, { withFileTypes: true })) {
    const from = join(root.userUnitDir, n.name);
    if (n.isDirectory()) cpSync(from, join(relocated, n.name), { recursive: true, verbatimSymlinks: true });
    else writeUnit(join(relocated, n.name), readFileSync(from, "utf8").replaceAll("/nix/store/", `${root.dir}/nix/store/`));
  }
  const r = spawnSync("systemd-analyze", ["verify", "--no-pager", "--user", "--man=no", "--generators=no", "graphical-session.target", ...units], {
    encoding: "utf8",
    cwd: root.dir,
    env: userManagerEnv(root, relocated),
  });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/**
 * Environment for `systemd-analyze --user` (no --root in the user scope): units from `unitDir`, then
 * systemd's own user units from the root, and a private runtime directory.
 */
export function userManagerEnv(root: StubRoot, unitDir: string): NodeJS.ProcessEnv {
  const runtime = join(root.dir, "run/user/0");
  mkdirSync(runtime, { recursive: true, mode: 0o700 });
  return {
    ...process.env,
    SYSTEMD_UNIT_PATH: `${unitDir}:${join(root.dir, "usr/lib/systemd/user")}`,
    XDG_RUNTIME_DIR: runtime,
    XDG_CONFIG_HOME: join(root.dir, "home/.config"),
    HOME: join(root.dir, "home"),
    SYSTEMD_COLORS: "0",
  };
}

/** Unescape one quoted word of an Exec*= line the way systemd does for the executable (no `$$` undoubling: systemd does not do it there). */
function firstExecWord(line: string): string {
  let s = line.replace(/^[-@:+!|]+/, "");
  let out = "";
  if (s.startsWith('"')) {
    s = s.slice(1);
    for (let i = 0; i < s.length; i++) {
      const c = s[i]!;
      if (c === '"') break;
      if (c === "\\") {
        const n = s[++i]!;
        out += ({ n: "\n", t: "\t", r: "\r" } as Record<string, string>)[n] ?? n;
      } else out += c;
    }
  } else out = s.split(/\s/, 1)[0]!;
  return out.replace(/%%/g, "%");
}

/** The executable of every Exec*= line of a unit (the path systemd will run). */
export function execPaths(unitText: string): string[] {
  return parseUnit(unitText)
    .filter((e) => /^Exec[A-Za-z]*$/.test(e.key))
    .map((e) => firstExecWord(e.value));
}

/** Every character the schema lets through in paths and free arguments that means something to a shell or to systemd. */
/** The unusual characters a store path may hold (programs are limited to them, see STORE_PATH). */
export const HOSTILE_STORE = "-a+b?c=d._e";

export const HOSTILE = ` sp'q "dq" $HOME \`id\` \\b %i %% !x *g ?g ;s &a |p (x) {b} [c] <r >r ~t #h =e ,c :c`;

/**
 * A configuration (the desktop example) with hostile-but-valid values wherever the schema allows
 * them: every user path (kernel, initrd, disks, shares, shared home, vhost-user sockets, sysfs paths,
 * home and runtime dir; init without whitespace, as it is a kernel parameter), global and per-VM
 * crosvm arguments (any text but NUL, newlines included) and kernel parameters (no whitespace, not
 * starting with '-'). `programSuffix`, when given, is appended to every program's store path except
 * bash's (a shebang cannot hold a space).
 */
export function hostileConfig(base: Record<string, unknown>, programSuffix: string | null): any {
  const c = structuredClone(base) as any;
  const p = (leaf: string) => `/srv/hostile${HOSTILE}/${leaf}`;
  if (programSuffix !== null) for (const k of Object.keys(c.programs)) if (k !== "bash" && c.programs[k] !== null) c.programs[k] = `${c.programs[k]}${programSuffix}`;
  c.user.home = p("home/alice");
  c.user.runtimeDir = p("run/user/1000");
  c.crosvm = { ...c.crosvm, extraArgs: [HOSTILE, "--x=$(reboot)", "a\nb", "'", '"', "\\", "`", "$", "%", "-", ""], extraRunArgs: ["--extra", HOSTILE] };
  // No `"`: the kernel reads it as quoting, so the grammar refuses it on the command line.
  const params = ["a=$HOME", "b=`id`", "c='q'", "d={q}", "e=%i", "f=;&|()<>", "g=\\x", "h=*?[a]", "i=#", "j=!"];
  for (const vm of Object.values(c.nixosVms) as any[]) {
    vm.kernel = p("bzImage");
    vm.initramfs = p("initrd");
    vm.init = `/srv/hostile${HOSTILE.replace(/[\s"]/g, "")}/init`; // a kernel parameter: no whitespace or `"`
    vm.rootDisk = { ...vm.rootDisk, path: p("root.erofs") };
    vm.kernelParams = params;
    if (vm.hypervisor === "cloud-hypervisor") {
      // crosvm's options are refused for cloud-hypervisor VMs; its own pass-through arguments get the hostile values.
      vm.cloudHypervisor = { ...vm.cloudHypervisor, extraArgs: [HOSTILE, "--x=$(reboot)", `${HOSTILE}\n${HOSTILE}`] };
    } else {
      vm.crosvm = { logLevel: null, extraArgs: [HOSTILE], extraRunArgs: ["--y", `${HOSTILE}\n${HOSTILE}`] };
      vm.vhostUser = [{ type: "net", socket: p("vhost.sock") }];
    }
    for (const s of Object.values(vm.sharedDirectories ?? {}) as any[]) s.path = p("share");
    for (const d of vm.additionalDisks ?? []) d.path = p("disk.img");
    if (vm.pciDevices) vm.pciDevices = [...vm.pciDevices, { path: p("sys/0000:05:00.0") }];
  }
  c.nixosVms.work.sharedHome = p("shared/work");
  return c;
}
