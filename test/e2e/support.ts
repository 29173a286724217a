/**
 * End-to-end support: what the e2e tests need to boot real guests with the generated artifacts.
 *
 *  - Debian packages (installed when missing and this runs as root, else a loud SKIP);
 *  - a test kernel: Debian's cloud kernel, fetched with `apt-get download` (never pinned), its
 *    modules, and its uncompressed vmlinux (PVH direct boot: no decompression under TCG);
 *  - the static vm-run agent (`make -C agent static`);
 *  - the test initramfs (busybox, bash, the agent, the modules; /init is test/e2e/guest/init, which
 *    implements the guest protocol, vm-exec's guest side and the seed vm-exec's);
 *  - an erofs root image;
 *  - vmsilo.json configurations whose programs are this machine's (qemu, socat, coreutils …), with
 *    Debian's C virtiofsd behind a stand-in that takes the Rust virtiofsd's flags;
 *  - `bootAgentGuest()`: a guest booted by the generated qemu launcher whose command agent is
 *    reachable through a host unix socket (for the vm-run round trip).
 *
 * Everything built is cached under test/e2e/.cache/ (gitignored), keyed by its inputs.
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { createHash } from "node:crypto";
import { chmodSync, copyFileSync, existsSync, mkdirSync, readFileSync, readdirSync, renameSync, rmSync, statSync, writeFileSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { vmmUserName } from "../../src/model/derive.js";
import { ROOT, example, render, tempDirRemovedAtExit, writeTree } from "../support/harness.js";

export const CACHE = process.env.VMSILO_E2E_CACHE ?? join(ROOT, "test", "e2e", ".cache");

/** Temporary directories of this test process, removed when it exits. */
export const tempDir = tempDirRemovedAtExit;
export const GUEST_INIT = join(ROOT, "test", "e2e", "guest", "init");
export const MODALIAS_MATCH = join(ROOT, "test", "e2e", "guest", "modalias-match.c");
/** The guest's vsock ends for the agent's peer-port tests (vsock-ports.test.ts). */
export const TEST_VSOCK = join(ROOT, "agent", "test", "vmsilo-test-vsock.c");
/** Debian's C virtiofsd (qemu-system-common), behind the Rust-flag stand-in. */
export const C_VIRTIOFSD = "/usr/lib/qemu/virtiofsd";
/** Every qemu of the tests is wrapped in `timeout` with at most this (seconds). */
export const QEMU_TIMEOUT_S = 90;

/** What the e2e layer installs from Debian when missing (also in .ci/run-deps.txt). */
export const E2E_DEBS = ["qemu-system-x86", "qemu-utils", "busybox-static", "socat", "kmod", "cpio", "erofs-utils", "lz4", "gcc", "make", "libc6-dev"] as const;

const sh = (cmd: string, args: string[], opts: { cwd?: string; input?: string } = {}) => spawnSync(cmd, args, { encoding: "utf8", maxBuffer: 64 << 20, ...opts });

export function have(cmd: string): boolean {
  return sh("sh", ["-c", `command -v ${cmd} >/dev/null`]).status === 0;
}

function installed(pkg: string): boolean {
  const r = sh("dpkg-query", ["-W", "-f=${Status}", pkg]);
  return r.status === 0 && r.stdout.includes("install ok installed");
}

let aptUpdated = false;
function aptGet(args: string[]): ReturnType<typeof sh> {
  const run = () => spawnSync("apt-get", ["-o", "DPkg::Lock::Timeout=300", ...args], { encoding: "utf8", env: { ...process.env, DEBIAN_FRONTEND: "noninteractive" }, maxBuffer: 64 << 20 });
  let r = run();
  if (r.status !== 0 && !aptUpdated) {
    aptUpdated = true;
    spawnSync("apt-get", ["-o", "DPkg::Lock::Timeout=300", "update", "-qq"], { encoding: "utf8" });
    r = run();
  }
  return r;
}

/** Installs the missing packages when possible; returns why not, or null when all are there. */
export function ensureDebs(pkgs: readonly string[]): string | null {
  if (!have("dpkg-query")) return "not a Debian system (no dpkg-query), cannot install " + pkgs.join(" ");
  const missing = pkgs.filter((p) => !installed(p));
  if (!missing.length) return null;
  if (process.getuid?.() !== 0 || !have("apt-get")) return `missing Debian packages ${missing.join(" ")} (run as root with apt-get, or install them)`;
  const r = aptGet(["install", "-y", "-qq", "--no-install-recommends", ...missing]);
  if (r.status !== 0) return `apt-get install ${missing.join(" ")} failed: ${(r.stderr || r.stdout).trim().split("\n").slice(-3).join(" | ")}`;
  const still = missing.filter((p) => !installed(p));
  return still.length ? `still missing after apt-get install: ${still.join(" ")}` : null;
}

/** A loud skip: the line names what is missing and why (the test runner shows it too). */
export function skip(t: { skip(msg?: string): void }, why: string): void {
  console.log(`SKIP: ${why}`);
  t.skip(why);
}

const hash = (...parts: Array<string | Buffer>) => {
  const h = createHash("sha256");
  for (const p of parts) h.update(p).update("\0");
  return h.digest("hex").slice(0, 16);
};

/** Build `dir` with `build(tmp)` once: into a temporary sibling, then renamed (a racing build loses quietly). */
export function cached(dir: string, build: (tmp: string) => void): string {
  if (existsSync(join(dir, ".done"))) return dir;
  mkdirSync(dirname(dir), { recursive: true });
  const tmp = `${dir}.tmp-${process.pid}`;
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp, { recursive: true });
  try {
    build(tmp);
    writeFileSync(join(tmp, ".done"), "");
    try {
      renameSync(tmp, dir);
    } catch {
      if (!existsSync(join(dir, ".done"))) throw new Error(`cannot move ${tmp} to ${dir}`);
    }
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
  return dir;
}

/**
 * Unpacks the source package `pkg` of Debian release `suite` (Debian's patches applied) into `dir`
 * and returns its tree, through a private apt configuration: Debian's archive as this machine's
 * sources name it, with that release's sources only; the system's apt sources and lists stay
 * untouched. For what Debian 12 has too old, built or read from a newer release's source.
 */
export function debianSource(pkg: string, suite: string, dir: string): string {
  const must = (args: string[], cwd?: string) => {
    const r = sh("apt-get", args, { cwd });
    if (r.status !== 0) throw new Error(`apt-get ${args.join(" ")} exited ${r.status}:\n${r.stdout}${r.stderr}`);
    return r.stdout;
  };
  const archive = must(["indextargets", "--format", "$(REPO_URI)", "Label: Debian"]).split("\n")[0];
  if (!archive) throw new Error("apt's sources name no Debian archive");
  const apt = join(dir, "apt");
  for (const d of ["lists/partial", "cache/archives/partial"]) mkdirSync(join(apt, d), { recursive: true });
  writeFileSync(join(apt, "sources.list"), `deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] ${archive} ${suite} main\n`);
  const opts = ["-q", "-o", `Dir::Etc::SourceList=${join(apt, "sources.list")}`, "-o", "Dir::Etc::SourceParts=/dev/null", "-o", `Dir::State::Lists=${join(apt, "lists")}`, "-o", `Dir::Cache=${join(apt, "cache")}`];
  must([...opts, "update"]);
  const src = join(dir, "src");
  mkdirSync(src);
  must([...opts, "source", pkg], src);
  rmSync(apt, { recursive: true, force: true });
  const tree = readdirSync(src).find((e) => e.startsWith(`${pkg}-`) && statSync(join(src, e)).isDirectory());
  if (!tree) throw new Error(`apt-get source ${pkg} unpacked nothing into ${src}`);
  return join(src, tree);
}

export interface Kernel {
  /** The bzImage as Debian ships it. */
  vmlinuz: string;
  /** The uncompressed ELF vmlinux (qemu boots it through PVH: no decompression in the guest). */
  vmlinux: string;
  /** A root for modprobe -d (lib/modules/<version>, depmod run). */
  modulesRoot: string;
  version: string;
}

/** Debian's `linux-image-<flavour>-amd64` dependency (not pinned), downloaded and unpacked once. */
export function testKernel(flavour: "cloud" | "generic" = "cloud"): Kernel {
  const meta = flavour === "cloud" ? "linux-image-cloud-amd64" : "linux-image-amd64";
  const depends = () => sh("apt-cache", ["depends", meta]).stdout;
  let deps = depends();
  if (!/Depends: linux-image-/.test(deps)) {
    aptGet(["update", "-qq"]);
    deps = depends();
  }
  const pkg = /Depends: (linux-image-[^\s]+)/.exec(deps)?.[1];
  if (!pkg) throw new Error(`apt-cache depends ${meta} names no kernel package (is there an apt source?)`);
  const dir = cached(join(CACHE, `kernel-${pkg}`), (tmp) => {
    const dl = join(tmp, "dl");
    mkdirSync(dl);
    const r = sh("apt-get", ["download", "-q", pkg], { cwd: dl });
    if (r.status !== 0) throw new Error(`apt-get download ${pkg} failed: ${r.stderr}`);
    const deb = readdirSync(dl).find((f) => f.endsWith(".deb"))!;
    const x = sh("dpkg-deb", ["-x", join(dl, deb), join(tmp, "root")]);
    if (x.status !== 0) throw new Error(`dpkg-deb -x failed: ${x.stderr}`);
    rmSync(dl, { recursive: true, force: true });
    const version = readdirSync(join(tmp, "root", "lib", "modules"))[0]!;
    const d = sh("depmod", ["-b", join(tmp, "root"), version]);
    if (d.status !== 0) throw new Error(`depmod failed: ${d.stderr}`);
    const vmlinuz = join(tmp, "root", "boot", `vmlinuz-${version}`);
    extractVmlinux(vmlinuz, join(tmp, "vmlinux"));
    writeFileSync(join(tmp, "version"), version);
  });
  const version = readFileSync(join(dir, "version"), "utf8").trim();
  return { vmlinuz: join(dir, "root", "boot", `vmlinuz-${version}`), vmlinux: join(dir, "vmlinux"), modulesRoot: join(dir, "root"), version };
}

/** The kernel's own payload: find the compressed stream in the bzImage and decompress it (as extract-vmlinux does). */
function extractVmlinux(bzImage: string, out: string): void {
  const data = readFileSync(bzImage);
  const formats: Array<[Buffer, string[]]> = [
    [Buffer.from([0x02, 0x21, 0x4c, 0x18]), ["lz4", "-dc"]],
    [Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]), ["xz", "-dc", "--single-stream"]],
    [Buffer.from([0x28, 0xb5, 0x2f, 0xfd]), ["zstd", "-dc"]],
    [Buffer.from([0x1f, 0x8b, 0x08]), ["gzip", "-dc"]],
  ];
  for (const [magic, cmd] of formats) {
    for (let at = data.indexOf(magic); at >= 0; at = data.indexOf(magic, at + 1)) {
      const r = spawnSync(cmd[0]!, cmd.slice(1), { input: data.subarray(at), maxBuffer: 512 << 20 });
      const elf = r.stdout;
      if (elf && elf.length > 1 << 20 && elf.subarray(0, 4).equals(Buffer.from([0x7f, 0x45, 0x4c, 0x46]))) {
        writeFileSync(out, elf);
        return;
      }
    }
  }
  throw new Error(`no vmlinux found in ${bzImage} (tried lz4, xz, zstd, gzip)`);
}

/**
 * The modules the test guest loads, per role (the guest's /init picks by the kernel command line):
 * a vmsilo VM's guest (`vm`), vm-exec's initrd (`exec`: only what it needs, as vmsilo's vm-exec
 * initrd), and the seed vm-exec's (`seedexec`: 9p). `vm` and `seedexec` then load drivers for every
 * device the VMM exposes (COLDPLUG, matched on modalias), as udev does in a NixOS guest, so a VMM
 * that exposes more devices costs its guest what it would cost a real one.
 */
export const MODULE_SETS = {
  vm: ["virtio_mmio", "virtio_pci", "virtio_blk", "virtio_console", "virtio_net", "erofs", "overlay", "virtiofs", "button", "evdev", "9pnet_virtio", "9p"],
  exec: ["virtio_mmio", "virtio_blk", "virtiofs"],
  seedexec: ["virtio_mmio", "virtio_pci", "virtio_blk", "9pnet_virtio", "9p"],
  // Not a role: vsock's loopback transport (host↔guest vsock is missing here), which tests load
  // in the guest with insmod when they need it (vsock-ports.test.ts).
  vsock: ["vsock_loopback"],
  // Not a role: what a network VM's table needs (conntrack, NAT, masquerade), loaded by the guest
  // when it acts as one (vmsilo.test.netvm=1, netvm.test.ts).
  netfilter: ["nf_tables", "nf_conntrack", "nf_nat", "nft_ct", "nft_chain_nat", "nft_masq"],
} as const;
export const COLDPLUG = ["virtio_pci", "virtio_rng", "virtio_input", "virtio_net", "virtio_console", "virtio_balloon", "uhci_hcd", "ehci_pci", "xhci_pci", "usbhid", "hid_generic", "ahci", "i2c_i801", "lpc_ich", "bochs"];

/** A module's insmod chain (its dependencies first), or null when this kernel lacks it. */
function moduleChain(k: Kernel, m: string): string[] | null {
  const r = sh("modprobe", ["-d", k.modulesRoot, "-S", k.version, "--show-depends", m]);
  if (r.status !== 0) return null; // absent from this kernel (the cloud kernel has no 9p)
  const chain: string[] = [];
  for (const line of r.stdout.split("\n")) {
    const f = /^insmod (\S+)/.exec(line)?.[1];
    if (f && !chain.includes(f)) chain.push(f);
  }
  return chain.length ? chain : null;
}

function moduleOrder(k: Kernel, names: readonly string[]): string[] {
  const order: string[] = [];
  for (const m of names) for (const f of moduleChain(k, m) ?? []) if (!order.includes(f)) order.push(f);
  return order;
}

/** agent/'s programs, linked statically for the initramfs: the directory holding them. */
export function staticPrograms(): string {
  const src = join(ROOT, "agent");
  const inputs = readdirSync(src)
    .filter((f) => /\.(c|h)$|^Makefile$/.test(f))
    .sort()
    .map((f) => readFileSync(join(src, f)));
  const dir = cached(join(CACHE, `agent-${hash(...inputs)}`), (tmp) => {
    const r = sh("make", ["-s", "-C", src, `BUILD=${tmp}/build`, "static"]);
    if (r.status !== 0) throw new Error(`make -C agent static failed: ${r.stderr}`);
  });
  return join(dir, "build", "static");
}

/** programs.vmsiloTools: agent/'s programs built for this machine, laid out as the package is (bin/). */
export function vmsiloToolsPackage(): string {
  const src = join(ROOT, "agent");
  const inputs = readdirSync(src)
    .filter((f) => /\.(c|h)$|^Makefile$/.test(f))
    .sort()
    .map((f) => readFileSync(join(src, f)));
  return cached(join(CACHE, `vmsilo-tools-${hash(...inputs)}`), (tmp) => {
    const r = sh("make", ["-s", "-C", src, `BUILD=${tmp}/build`, `PREFIX=${tmp}`, "install"]);
    if (r.status !== 0) throw new Error(`make -C agent install failed: ${r.stderr}`);
  });
}

/** The tray daemons as vmsilo-tools' `tray` output lays them out (bin/vmsilo-tray-host, bin/vmsilo-tray-guest). */
export function vmsiloTrayPackage(): string {
  const src = join(ROOT, "agent");
  const inputs = readdirSync(src)
    .filter((f) => /\.(c|h)$|^Makefile$/.test(f))
    .sort()
    .map((f) => readFileSync(join(src, f)));
  return cached(join(CACHE, `vmsilo-tray-${hash(...inputs)}`), (tmp) => {
    const r = sh("make", ["-s", "-C", src, `BUILD=${tmp}/build`, `TRAY_PREFIX=${tmp}`, "install-tray"]);
    if (r.status !== 0) throw new Error(`make -C agent install-tray failed: ${r.stderr}`);
  });
}

/** Shared libraries a dynamic program needs (ldd), loader included. */
function libsOf(program: string): string[] {
  const r = sh("ldd", [program]);
  return [...r.stdout.matchAll(/(\/\S+) \(0x/g)].map((m) => m[1]!);
}

/** The test initramfs (an uncompressed newc cpio: the kernel unpacks it without decompressing). */
export function testInitramfs(k: Kernel): string {
  const programs = staticPrograms();
  const guestPrograms = ["vmsilo-agent", "vmsilo-vsock-proxy", "vmsilo-run"];
  const bash = "/bin/bash";
  const busybox = "/bin/busybox";
  const sets = Object.fromEntries(Object.entries(MODULE_SETS).map(([role, names]) => [role, moduleOrder(k, names)])) as Record<keyof typeof MODULE_SETS, string[]>;
  const coldplug = COLDPLUG.flatMap((m) => {
    const chain = moduleChain(k, m);
    return chain ? [[m, chain] as const] : [];
  });
  const modules = [...new Set([...Object.values(sets).flat(), ...coldplug.flatMap(([, c]) => c)])];
  const key = hash(readFileSync(GUEST_INIT), readFileSync(MODALIAS_MATCH), readFileSync(TEST_VSOCK), ...guestPrograms.map((p) => readFileSync(join(programs, p))), readFileSync(busybox), readFileSync(bash), k.version, JSON.stringify([sets, coldplug]));
  const dir = cached(join(CACHE, `initramfs-${key}`), (tmp) => {
    const r = join(tmp, "root");
    for (const d of ["bin", "sbin", "etc", "proc", "sys", "dev", "tmp", "run", "mnt", "root", "lib/modules", "nix/store"]) mkdirSync(join(r, d), { recursive: true });
    copyFileSync(busybox, join(r, "bin", "busybox"));
    copyFileSync(bash, join(r, "bin", "bash"));
    for (const p of guestPrograms) copyFileSync(join(programs, p), join(r, "bin", p));
    for (const [src, name] of [[MODALIAS_MATCH, "modalias-match"], [TEST_VSOCK, "vmsilo-test-vsock"]] as const) {
      const cc = sh("cc", ["-O2", "-static", "-o", join(r, "bin", name), src]);
      if (cc.status !== 0) throw new Error(`cc ${basename(src)} failed: ${cc.stderr}`);
    }
    for (const lib of libsOf(bash)) {
      mkdirSync(join(r, dirname(lib)), { recursive: true });
      copyFileSync(lib, join(r, lib));
    }
    for (const m of modules) copyFileSync(m, join(r, "lib", "modules", basename(m)));
    const names = (files: readonly string[]) => files.map((m) => basename(m).replace(/\.ko$/, "")).join("\n") + "\n";
    for (const [role, files] of Object.entries(sets)) writeFileSync(join(r, "etc", `modules-${role}`), names(files));
    // Coldplug: "<modalias glob> <module>" lines from the kernel's modules.alias, each module's
    // chain, and the matcher (fnmatch, in C: what udev's kmod builtin costs a NixOS guest).
    mkdirSync(join(r, "etc", "modules.d"));
    const wanted = new Map(coldplug.map(([m, chain]) => [m, chain]));
    const aliases = readFileSync(join(k.modulesRoot, "lib", "modules", k.version, "modules.alias"), "utf8")
      .split("\n")
      .map((l) => /^alias (\S+) (\S+)$/.exec(l))
      .filter((m): m is RegExpExecArray => m !== null && wanted.has(m[2]!))
      .map((m) => `${m[1]} ${m[2]}`);
    writeFileSync(join(r, "etc", "coldplug"), aliases.join("\n") + "\n");
    for (const [m, chain] of wanted) writeFileSync(join(r, "etc", "modules.d", m), names(chain));
    // The guest user as a NixOS guest has it (guest/home.nix: uid 1000, group users).
    writeFileSync(join(r, "etc", "passwd"), "root:x:0:0:root:/root:/bin/sh\nuser:x:1000:100:user:/home/user:/bin/sh\n");
    writeFileSync(join(r, "etc", "group"), "root:x:0:\nusers:x:100:\n");
    copyFileSync(GUEST_INIT, join(r, "init"));
    for (const f of ["init", "bin/busybox", "bin/bash", ...guestPrograms.map((p) => `bin/${p}`)]) chmodSync(join(r, f), 0o755);
    const c = spawnSync("sh", ["-c", "find . | LC_ALL=C sort | cpio -o -H newc --quiet -R 0:0 > ../initramfs.cpio"], { cwd: r, encoding: "utf8" });
    if (c.status !== 0) throw new Error(`cpio failed: ${c.stderr}`);
    rmSync(r, { recursive: true, force: true });
  });
  return join(dir, "initramfs.cpio");
}

/** What a network VM's test guest adds from Debian: the real nft and dnsmasq (also in .ci/run-deps.txt). */
export const NETVM_DEBS = ["nftables", "dnsmasq-base"] as const;
const NETVM_PROGRAMS = ["/usr/sbin/nft", "/usr/sbin/dnsmasq"];

/**
 * The test initramfs with a network VM's programs appended: Debian's nft and dnsmasq with the
 * libraries ldd lists, and `etc` (name → content) under /etc/vmsilo-netvm, which the guest's /init
 * loads when it acts as a network VM. A second newc archive after the first: the kernel unpacks both.
 */
export function netvmInitramfs(k: Kernel, etc: Record<string, string>): string {
  const base = testInitramfs(k);
  const libs = [...new Set(NETVM_PROGRAMS.flatMap(libsOf))].sort();
  const key = hash(base, ...[...NETVM_PROGRAMS, ...libs].map((f) => readFileSync(f)), JSON.stringify(etc));
  const dir = cached(join(CACHE, `initramfs-netvm-${key}`), (tmp) => {
    const r = join(tmp, "root");
    for (const f of [...NETVM_PROGRAMS, ...libs]) {
      mkdirSync(join(r, dirname(f)), { recursive: true });
      copyFileSync(f, join(r, f));
    }
    mkdirSync(join(r, "etc", "vmsilo-netvm"), { recursive: true });
    for (const [name, text] of Object.entries(etc)) writeFileSync(join(r, "etc", "vmsilo-netvm", name), text);
    const c = spawnSync("sh", ["-c", "find . | LC_ALL=C sort | cpio -o -H newc --quiet -R 0:0 > ../extra.cpio"], { cwd: r, encoding: "utf8" });
    if (c.status !== 0) throw new Error(`cpio failed: ${c.stderr}`);
    writeFileSync(join(tmp, "initramfs.cpio"), Buffer.concat([readFileSync(base), readFileSync(join(tmp, "extra.cpio"))]));
    rmSync(r, { recursive: true, force: true });
    rmSync(join(tmp, "extra.cpio"));
  });
  return join(dir, "initramfs.cpio");
}

/** An erofs image holding the marker file vmsilo-test-root (the guest reports its content). */
export function testRootImage(): string {
  const dir = cached(join(CACHE, "root-erofs-1"), (tmp) => {
    const src = join(tmp, "src");
    mkdirSync(src);
    writeFileSync(join(src, "vmsilo-test-root"), "erofs-root-ok\n");
    const r = sh("mkfs.erofs", ["--quiet", "--all-root", "-T0", join(tmp, "root.erofs"), src]);
    if (r.status !== 0) throw new Error(`mkfs.erofs failed: ${r.stderr}`);
    rmSync(src, { recursive: true, force: true });
  });
  return join(dir, "root.erofs");
}

/**
 * A package directory whose bin/virtiofsd takes the Rust virtiofsd's flags (what the generator
 * writes) and runs Debian's C virtiofsd with its equivalents; any other flag fails loudly, and each
 * call's argv is logged (NUL-separated) to $VMSILO_VIRTIOFSD_LOG when set. test/contract/virtiofsd
 * checks the generated flags against the Rust CLI itself.
 */
export function virtiofsdStandIn(): string {
  const script = `#!/bin/bash
# Test stand-in: the Rust virtiofsd's command line, run by Debian's C virtiofsd.
[ -n "\${VMSILO_VIRTIOFSD_LOG:-}" ] && printf '%s\\0' "$@" $'\\n' >>"$VMSILO_VIRTIOFSD_LOG"
args=()
opts=()
while [ $# -gt 0 ]; do
  case "$1" in
    --shared-dir) opts+=("source=$2"); shift ;;
    --socket-path) args+=("--socket-path=$2"); shift ;;
    --socket-group) args+=("--socket-group=$2"); shift ;;
    --tag) shift ;;
    --thread-pool-size) args+=("--thread-pool-size=$2"); shift ;;
    --cache)
      case "$2" in never) opts+=(cache=none) ;; metadata) opts+=(cache=auto) ;; *) opts+=("cache=$2") ;; esac
      shift
      ;;
    --log-level)
      case "$2" in error | off) opts+=(log_level=err) ;; trace) opts+=(log_level=debug) ;; *) opts+=("log_level=$2") ;; esac
      shift
      ;;
    --sandbox) shift ;;
    --inode-file-handles=*) ;;
    --readonly | --allow-mmap | --preserve-noatime) ;;
    --xattr) opts+=(xattr) ;;
    --posix-acl) opts+=(posix_acl) ;;
    --writeback) opts+=(writeback) ;;
    --allow-direct-io) opts+=(allow_direct_io) ;;
    --no-readdirplus) opts+=(no_readdirplus) ;;
    --killpriv-v2) opts+=(killpriv_v2) ;;
    --uid-map | --gid-map | --translate-uid | --translate-gid) shift ;;
    *)
      echo "virtiofsd stand-in: unexpected argument: $1" >&2
      exit 2
      ;;
  esac
  shift
done
IFS=,
exec ${C_VIRTIOFSD} "\${args[@]}" -o "\${opts[*]}"
`;
  const dir = cached(join(CACHE, `virtiofsd-standin-${hash(script)}`), (tmp) => {
    mkdirSync(join(tmp, "bin"));
    writeFileSync(join(tmp, "bin", "virtiofsd"), script, { mode: 0o755 });
  });
  return dir;
}

/** This machine's host CPU rate, for tsc_early_khz= (microvm under TCG; docs/qemu.md). */
export function hostKhz(): number {
  const m = /cpu MHz\s*:\s*([0-9.]+)/.exec(readFileSync("/proc/cpuinfo", "utf8"));
  return m ? Math.round(Number(m[1]) * 1000) : 0;
}

/** Why the qemu e2e tests cannot run here, or null (installs what it can first). */
export function qemuPrerequisites(): string | null {
  if (process.platform !== "linux" || process.arch !== "x64") return `the e2e guests need x86_64 Linux, this is ${process.platform}/${process.arch}`;
  if (process.getuid?.() !== 0) return "the e2e tests run as root (they use /run/vmsilo and /var/lib/vmsilo as the units do, Debian's C virtiofsd needs root, and they install their Debian packages)";
  const debs = ensureDebs(E2E_DEBS);
  if (debs) return debs;
  if (!existsSync(C_VIRTIOFSD)) return `${C_VIRTIOFSD} is missing (Debian's qemu-system-common ships it)`;
  return null;
}

export interface TestGuest {
  kernel: Kernel;
  initramfs: string;
  root: string;
}

const guestCache = new Map<string, TestGuest | string>();
/**
 * The kernel, initramfs and root image of the test guest, or why they cannot exist here. The cloud
 * kernel boots fastest; the generic one also has 9p.
 */
export function testGuest(flavour: "cloud" | "generic" = "cloud"): TestGuest | string {
  const known = guestCache.get(flavour);
  if (known !== undefined) return known;
  let g: TestGuest | string;
  const why = qemuPrerequisites();
  if (why) g = why;
  else {
    try {
      const kernel = testKernel(flavour);
      g = { kernel, initramfs: testInitramfs(kernel), root: testRootImage() };
    } catch (e) {
      g = `cannot make the test guest: ${(e as Error).message}`;
    }
  }
  guestCache.set(flavour, g);
  return g;
}

let vmCounter = 0;
/** A VM name of this process (tests of several processes may run at once). */
export function uniqueVmName(label: string): string {
  return `${label}${process.pid.toString(36)}${(vmCounter++).toString(36)}`.slice(0, 32);
}

export interface QemuVmOptions {
  kernelParams?: string[];
  extraArgs?: string[];
  rootOverlay?: { type: "tmpfs" | "raw"; size?: string };
  sharedDirectories?: Record<string, Record<string, unknown>>;
  shares9p?: Record<string, Record<string, unknown>>;
  console?: "virtio" | "serial";
  /** The VM's `qemu.machine` (null: the global microvm). */
  machine?: "microvm" | "q35" | "pc";
  memory?: number;
  stopTimeout?: number;
  [key: string]: unknown;
}

/**
 * A vmsilo.json with one qemu VM `name` booting the test guest under TCG (the documented knob,
 * `qemu.accel`), vsock off (no vhost-vsock here), programs from this machine.
 */
export function qemuTestConfig(g: TestGuest, name: string, o: QemuVmOptions = {}): Record<string, unknown> {
  const base = example("minimal") as Record<string, any>;
  const { kernelParams, extraArgs, rootOverlay, sharedDirectories, shares9p, console, machine, memory, stopTimeout, ...rest } = o;
  return {
    schemaVersion: 1,
    user: base.user,
    programs: { bash: "/usr", coreutils: "/usr", systemd: "/usr", socat: "/usr", qemu: "/usr", iproute2: "/usr", virtiofsd: virtiofsdStandIn(), vmsiloTools: vmsiloToolsPackage() },
    startTimeout: 20,
    stopTimeout: stopTimeout ?? 20,
    qemu: { accel: "tcg", machine: "microvm", extraArgs: [] },
    nixosVms: {
      [name]: {
        hypervisor: "qemu",
        memory: memory ?? 256,
        cpus: 1,
        kernel: g.kernel.vmlinux,
        initramfs: g.initramfs,
        rootDisk: { path: g.root },
        rootOverlay: rootOverlay ?? { type: "tmpfs" },
        kernelParams: [`tsc_early_khz=${hostKhz()}`, ...(kernelParams ?? [])],
        sharedDirectories: sharedDirectories ?? {},
        qemu: { vsock: false, console: console ?? "serial", machine: machine ?? null, shares9p: shares9p ?? {}, extraArgs: extraArgs ?? [] },
        ...rest,
      },
    },
  };
}

/** Render `config` into a fresh directory (the tree's prefix is that directory). */
export function renderTree(config: unknown, label: string): string {
  const out = join(tempDir(label), "out");
  mkdirSync(out, { recursive: true });
  writeTree(render(config, out), out);
  return out;
}

/** A child process with its output collected, killed (whole process group) by `stop()`. */
export class Proc {
  readonly child: ChildProcess;
  out = "";
  err = "";
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  constructor(argv: string[], opts: { env?: NodeJS.ProcessEnv; cwd?: string } = {}) {
    this.child = spawn(argv[0]!, argv.slice(1), { stdio: ["ignore", "pipe", "pipe"], detached: true, env: opts.env ?? process.env, cwd: opts.cwd });
    this.child.stdout!.setEncoding("utf8").on("data", (d: string) => (this.out += d));
    this.child.stderr!.setEncoding("utf8").on("data", (d: string) => (this.err += d));
    this.exited = new Promise((resolve) => this.child.on("close", (code, signal) => resolve({ code, signal })));
  }
  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }
  kill(signal: NodeJS.Signals = "SIGTERM"): void {
    if (!this.running || this.child.pid === undefined) return;
    try {
      process.kill(-this.child.pid, signal);
    } catch {
      /* already gone */
    }
  }
  async stop(graceMs = 3000): Promise<void> {
    if (!this.running) return;
    this.kill("SIGTERM");
    const t = setTimeout(() => this.kill("SIGKILL"), graceMs);
    await this.exited;
    clearTimeout(t);
  }
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Wait until `cond()` holds (polling), or throw with `what` after `ms`. */
export async function waitFor(what: string, cond: () => boolean, ms: number): Promise<void> {
  const start = Date.now();
  while (!cond()) {
    if (Date.now() - start > ms) throw new Error(`timed out after ${Date.now() - start} ms waiting for ${what}`);
    await sleep(25);
  }
}

/** A file's content, or "" when it does not exist. */
export const readOr = (path: string): string => (existsSync(path) ? readFileSync(path, "utf8") : "");

/**
 * The console of a VM run outside systemd: listens where the console relay would
 * (/run/vmsilo/<vm>/console-backend.socket) and appends what qemu sends to a file.
 */
export class ConsoleCapture {
  readonly log: string;
  readonly proc: Proc;
  constructor(
    readonly socket: string,
    dir: string,
  ) {
    this.log = join(dir, "console.log");
    mkdirSync(dirname(socket), { recursive: true });
    rmSync(socket, { force: true });
    this.proc = new Proc(["socat", "-u", `UNIX-LISTEN:${socket},fork`, `OPEN:${this.log},creat,append`]);
  }
  async ready(): Promise<this> {
    await waitFor(`the console listener at ${this.socket}`, () => existsSync(this.socket), 5000);
    return this;
  }
  text(): string {
    return readOr(this.log);
  }
  async stop(): Promise<void> {
    await this.proc.stop();
    rmSync(this.socket, { force: true });
  }
}

/** Run the generated launcher of `vm` from `out`, wrapped in `timeout`. */
export function runLauncher(out: string, vm: string, seconds = QEMU_TIMEOUT_S): Proc {
  return new Proc(["timeout", "-k", "5", String(seconds), join(out, "libexec", "vmsilo", vm, "launch")]);
}

/** Remove what a VM run outside systemd may leave in the fixed runtime paths. */
export function cleanRuntime(vm: string): void {
  rmSync(`/run/vmsilo/${vm}`, { recursive: true, force: true });
  rmSync(`/var/lib/vmsilo/${vm}`, { recursive: true, force: true });
}

/** A clean start, with the directory of the VMM's own sockets, which the VM unit's RuntimeDirectory= makes. */
export function freshRuntime(vm: string): void {
  cleanRuntime(vm);
  mkdirSync(`/run/vmsilo/${vm}/vmm`, { recursive: true, mode: 0o700 });
}

/** The host end of the test guest's agent port (agent-relay.ts): a unix socket taking one vm-run session at a time. */
export const RELAY = join(dirname(fileURLToPath(import.meta.url)), "agent-relay.js");

export interface AgentGuest {
  /** The vm-run protocol's socket: `vmsilo-run <socket> CMD…` reaches the guest's agent. */
  readonly socket: string;
  readonly vm: string;
  /** The guest's console output so far. */
  console(): string;
  stop(): Promise<void>;
}

/**
 * Boots the test guest with the generated qemu launcher (TCG) and returns a host unix socket on which
 * the guest's command agent (vmsilo-agent, static, in the initramfs) answers the vm-run protocol.
 *
 * There is no host↔guest vsock on these machines, so the agent serves a virtio-serial port named
 * `vmsilo.agent` (added with `qemu.extraArgs`, the documented knob); qemu exposes that port as a unix
 * socket, and a small relay (agent-relay.ts) turns it into a socket that accepts one vm-run
 * connection at a time: it holds a client's bytes until a fresh agent's preamble has arrived, so a
 * session never reaches the agent of the previous one. Throws with the reason when the guest cannot
 * boot here (call `testGuest()` first to skip instead).
 */
export async function bootAgentGuest(opts: { name?: string; bootTimeoutMs?: number; machine?: "microvm" | "q35" } = {}): Promise<AgentGuest> {
  const g = testGuest();
  if (typeof g === "string") throw new Error(g);
  const vm = opts.name ?? uniqueVmName("agent");
  const dir = tempDir("agent-guest");
  const port = join(dir, "agent-port.socket");
  const socket = join(dir, "agent.socket");
  const config = qemuTestConfig(g, vm, {
    machine: opts.machine,
    kernelParams: ["console=ttyS0", "quiet"],
    extraArgs: [
      // microvm has virtio-mmio only; a PC machine has PCI.
      "-device", `${opts.machine === "q35" ? "virtio-serial-pci" : "virtio-serial-device"},id=agentbus`,
      "-chardev", `socket,id=agent,path=${port.replace(/,/g, ",,")},server=on,wait=off`,
      "-device", "virtserialport,bus=agentbus.0,chardev=agent,name=vmsilo.agent",
    ],
  });
  const out = renderTree(config, "agent-guest-tree");
  freshRuntime(vm);
  const consoleCapture = await new ConsoleCapture(`/run/vmsilo/${vm}/console-backend.socket`, dir).ready();
  const launcher = runLauncher(out, vm, 900);
  const relay = new Proc([process.execPath, RELAY, socket, port]);
  const stop = async () => {
    await relay.stop();
    await launcher.stop();
    await consoleCapture.stop();
    cleanRuntime(vm);
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    await waitFor(`the guest's agent (console: ${dir}/console.log)`, () => {
      if (!launcher.running) throw new Error(`the launcher exited: ${launcher.err}`);
      return consoleCapture.text().includes("VMSILO-TEST ready") && existsSync(socket);
    }, opts.bootTimeoutMs ?? 60000);
  } catch (e) {
    await stop();
    throw e;
  }
  return { socket, vm, console: () => consoleCapture.text(), stop };
}

/** Size of a file, or -1. */
export const sizeOf = (p: string) => (existsSync(p) ? statSync(p).size : -1);

/** The file vmExecTestConfig's store holds. */
export const VM_EXEC_STORE_MARKER = "vmsilo-e2e-marker";

/** A vmsilo.json whose only product of interest is vm-exec (TCG, the test guest's kernel and initramfs). */
export function vmExecTestConfig(g: TestGuest, o: { timeout?: number; kernelParams?: string[]; extraArgs?: string[]; kernel?: string; initramfs?: string; machine?: string } = {}): Record<string, unknown> {
  const base = example("minimal") as Record<string, any>;
  // The store vm-exec shares is made here (a fresh machine has no /nix/store), holding one
  // file the guest can be asked to read.
  const storeDir = tempDir("vm-exec-store");
  writeFileSync(join(storeDir, VM_EXEC_STORE_MARKER), "from the host store\n");
  return {
    schemaVersion: 1,
    user: base.user,
    programs: { bash: "/usr", coreutils: "/usr", systemd: "/usr", socat: "/usr", qemu: "/usr", virtiofsd: virtiofsdStandIn(), vmsiloTools: vmsiloToolsPackage() },
    startTimeout: 20,
    qemu: { accel: "tcg", machine: "microvm", extraArgs: [] },
    vmExec: {
      enable: true,
      kernel: o.kernel ?? g.kernel.vmlinux,
      initramfs: o.initramfs ?? g.initramfs,
      memory: 256,
      cpus: 1,
      machine: o.machine ?? null,
      storeDir,
      timeout: o.timeout ?? 60,
      kernelParams: o.kernelParams ?? [],
      extraArgs: o.extraArgs ?? [],
    },
    nixosVms: {},
  };
}

/**
 * The argv of a systemd Exec*= line as src/shell/quote.ts writes it (bare words, or double-quoted
 * words with C escapes; `%%` and `$$` undone, as systemd does), so a test runs what the unit runs.
 */
export function execArgv(line: string): string[] {
  const words: string[] = [];
  // A leading `-`, `@`, `:`, `+` or `!` is a prefix of the command, not part of it.
  let i = /^[-@:+!]*/.exec(line)![0].length;
  while (i < line.length) {
    if (line[i] === " ") {
      i++;
      continue;
    }
    let w = "";
    if (line[i] === '"') {
      i++;
      while (i < line.length && line[i] !== '"') {
        if (line[i] === "\\") {
          const c = line[++i]!;
          w += ({ n: "\n", t: "\t", r: "\r" } as Record<string, string>)[c] ?? c;
        } else w += line[i];
        i++;
      }
      i++;
    } else {
      while (i < line.length && line[i] !== " ") w += line[i++];
    }
    words.push(w);
  }
  return words.map((w, n) => (n === 0 ? w.replace(/%%/g, "%") : w.replace(/%%/g, "%").replace(/\$\$/g, "$")));
}

/** The values of `key` in `[section]` of a unit's text. */
export function unitValues(text: string, section: string, key: string): string[] {
  let current = "";
  const out: string[] = [];
  for (const line of text.split("\n")) {
    const m = /^\[(.+)\]$/.exec(line);
    if (m) current = m[1]!;
    else if (current === section && line.startsWith(`${key}=`)) out.push(line.slice(key.length + 1));
  }
  return out;
}

/** The pid of the only child of `pid` (the VMM `exec`ed by the launcher under `timeout`). */
export function onlyChild(pid: number): number | null {
  const p = `/proc/${pid}/task/${pid}/children`;
  const kids = readOr(p).trim().split(/\s+/).filter(Boolean).map(Number);
  return kids.length === 1 ? kids[0]! : null;
}

/**
 * A share's virtiofsd unit's ExecStart, as systemd runs it: in a private mount namespace
 * (PrivateMounts=), where vmsilo-share-bind binds the share at its mount point (made here, as the
 * prep unit makes it) and runs virtiofsd there.
 */
export function virtiofsdCommand(out: string, vm: string, tag: string): string[] {
  const unit = readFileSync(join(out, "lib", "systemd", "system", `vmsilo-${vm}-virtiofsd-${tag}.service`), "utf8");
  mkdirSync(`/run/vmsilo/${vm}/virtiofs/${tag}`, { recursive: true, mode: 0o755 });
  // The socket's group (--socket-group) is the qemu VM's own, which the NixOS module declares: here,
  // a group file in the daemon's mount namespace that has it.
  const group = join(tempDir("vmm-group"), "group");
  writeFileSync(group, `${readFileSync("/etc/group", "utf8").trimEnd()}\n${vmmUserName(vm)}:x:64999:\n`);
  return ["unshare", "-m", "--propagation", "private", "sh", "-c", 'mount --bind "$0" /etc/group && exec "$@"', group, ...execArgv(unitValues(unit, "Service", "ExecStart")[0]!)];
}
