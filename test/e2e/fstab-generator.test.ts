/**
 * The guest side of the shares, under systemd's own generator: the guest's systemd-fstab-generator
 * (`systemd.mount-extra=`, systemd 254 and later) is run on the kernel command line the generator
 * writes for each VM, and must produce exactly one mount unit per share, at its mount point, of its
 * file-system type, with its options, pulled in by local-fs.target. (The busybox test guest of the
 * boot tests parses the same parameters itself; this is what stands behind that stand-in.)
 *
 * Debian 12's systemd (252) predates `systemd.mount-extra=`: there the generator comes from
 * `<release>-backports` (254), fetched with `apt-get download` through a private apt configuration
 * and cached under test/e2e/.cache; a newer system's own generator is used as it is.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, readdirSync, readlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { buildModel } from "../../src/model/model.js";
import { validate } from "../../src/config/validate.js";
import { example } from "../support/harness.js";
import { CACHE, cached, skip, tempDir } from "./support.js";

/** The first systemd whose fstab generator reads `systemd.mount-extra=`. */
const MOUNT_EXTRA_SINCE = 254;
const SYSTEM_GENERATOR = "/usr/lib/systemd/system-generators/systemd-fstab-generator";

interface Generator {
  readonly program: string;
  readonly env: NodeJS.ProcessEnv;
  readonly describe: string;
}

function run(cmd: string, args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv } = {}) {
  const r = spawnSync(cmd, args, { encoding: "utf8", maxBuffer: 64 << 20, ...opts });
  if (r.error) throw r.error;
  return r;
}

function mustRun(cmd: string, args: string[], opts: { cwd?: string } = {}): string {
  const r = run(cmd, args, opts);
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(" ")} exited ${r.status}:\n${r.stdout}${r.stderr}`);
  return r.stdout;
}

/** The running system's systemd version ("systemd 252 (252.39-1~deb12u2)"), or 0. */
function systemVersion(): number {
  const r = spawnSync("systemctl", ["--version"], { encoding: "utf8" });
  return Number(/^systemd (\d+)/.exec(r.stdout ?? "")?.[1] ?? 0);
}

/** systemd and libsystemd-shared of `<codename>-backports`, unpacked (dpkg-deb -x) into tmp/root. */
function fetchBackports(codename: string, tmp: string): void {
  // A private apt configuration: Debian's archive as this machine's sources name it, the backports
  // suite only; the system's apt sources, lists and cache stay untouched.
  const archive = mustRun("apt-get", ["indextargets", "--format", "$(REPO_URI)", "Label: Debian"]).split("\n")[0];
  if (!archive) throw new Error("apt's sources name no Debian archive");
  const apt = join(tmp, "apt");
  for (const d of ["lists/partial", "cache/archives/partial", "debs"]) mkdirSync(join(apt, d), { recursive: true });
  writeFileSync(join(apt, "sources.list"), `deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] ${archive} ${codename}-backports main\n`);
  const aptOpts = ["-q", "-o", `Dir::Etc::SourceList=${join(apt, "sources.list")}`, "-o", "Dir::Etc::SourceParts=/dev/null", "-o", `Dir::State::Lists=${join(apt, "lists")}`, "-o", `Dir::Cache=${join(apt, "cache")}`];
  mustRun("apt-get", [...aptOpts, "update"]);
  mustRun("apt-get", [...aptOpts, "download", `systemd/${codename}-backports`, `libsystemd-shared/${codename}-backports`], { cwd: join(apt, "debs") });
  for (const deb of readdirSync(join(apt, "debs"))) mustRun("dpkg-deb", ["-x", join(apt, "debs", deb), join(tmp, "root")]);
  const version = mustRun("dpkg-deb", ["-f", join(apt, "debs", readdirSync(join(apt, "debs")).find((d) => d.startsWith("systemd_"))!), "Version"]).trim();
  writeFileSync(join(tmp, "version"), version);
  run("rm", ["-rf", apt]);
}

/** A systemd-fstab-generator that reads `systemd.mount-extra=`, or why there is none here. */
function fstabGenerator(): Generator | string {
  const version = systemVersion();
  if (version >= MOUNT_EXTRA_SINCE && existsSync(SYSTEM_GENERATOR)) return { program: SYSTEM_GENERATOR, env: {}, describe: `this system's, systemd ${version}` };
  const codename = /^VERSION_CODENAME=(.+)$/m.exec(existsSync("/etc/os-release") ? readFileSync("/etc/os-release", "utf8") : "")?.[1];
  if (!codename || spawnSync("sh", ["-c", "command -v apt-get dpkg-deb"]).status !== 0) {
    return `this system's systemd ${version} predates systemd.mount-extra= (${MOUNT_EXTRA_SINCE}), and this is no Debian release with apt-get to fetch a newer one`;
  }
  const dir = cached(join(CACHE, `systemd-fstab-generator-${codename}-backports`), (tmp) => fetchBackports(codename, tmp));
  const root = join(dir, "root");
  const program = [join(root, "lib", "systemd", "system-generators", "systemd-fstab-generator"), join(root, "usr", "lib", "systemd", "system-generators", "systemd-fstab-generator")].find(existsSync);
  if (!program) throw new Error(`no systemd-fstab-generator in ${root}`);
  // Its RUNPATH names the system's libsystemd-shared directory; the package's own comes first.
  return { program, env: { LD_LIBRARY_PATH: join(root, "usr", "lib", "x86_64-linux-gnu", "systemd") }, describe: `Debian ${codename}-backports' systemd ${readFileSync(join(dir, "version"), "utf8").trim()}` };
}

interface MountUnit {
  readonly file: string;
  readonly keys: Map<string, string>;
}

/** Runs the generator on `cmdline` as the main system's (not the initrd's) and reads its mount units. */
function generate(g: Generator, cmdline: readonly string[]): { units: MountUnit[]; required: string[] } {
  const out = tempDir("fstab-generator");
  const dirs = ["normal", "early", "late"].map((d) => join(out, d));
  for (const d of dirs) mkdirSync(d);
  const r = run(g.program, dirs, {
    env: { ...process.env, ...g.env, SYSTEMD_PROC_CMDLINE: cmdline.join(" "), SYSTEMD_FSTAB: "/dev/null", SYSTEMD_IN_INITRD: "0", SYSTEMD_LOG_LEVEL: "info" },
  });
  assert.equal(r.status, 0, `systemd-fstab-generator exited ${r.status}: ${r.stderr}`);
  const units = readdirSync(dirs[0]!)
    .filter((f) => f.endsWith(".mount"))
    .sort()
    .map((file) => {
      const keys = new Map<string, string>();
      for (const line of readFileSync(join(dirs[0]!, file), "utf8").split("\n")) {
        const m = /^(What|Where|Type|Options)=(.*)$/.exec(line);
        if (m) keys.set(m[1]!, m[2]!);
      }
      return { file, keys };
    });
  const req = join(dirs[0]!, "local-fs.target.requires");
  const required = existsSync(req) ? readdirSync(req).filter((f) => f.endsWith(".mount") && readlinkSync(join(req, f)) === `../${f}`).sort() : [];
  return { units, required };
}

/** systemd's unit name for a mount point (`systemd-escape --path --suffix=mount`). */
const unitName = (where: string) => mustRun("systemd-escape", ["--path", "--suffix=mount", where]).trim();

/** What the guest must mount, read from the generator's own parameters. */
function expectedMounts(cmdline: readonly string[]) {
  return cmdline
    .filter((p) => p.startsWith("systemd.mount-extra="))
    .map((p) => {
      const [what, where, type, options] = p.slice("systemd.mount-extra=".length).split(":");
      return { what: what!, where: where!, type: type!, options: options! };
    });
}

function modelOf(config: unknown) {
  const v = validate(config);
  assert.deepEqual(v.issues, []);
  const built = buildModel(v.config!);
  assert.deepEqual(built.issues, []);
  return built.model!;
}

/** A qemu VM with a virtio-fs share on a chosen mount point and two 9p shares, one read-only. */
function qemuSharesConfig(): Record<string, unknown> {
  const c = structuredClone(example("minimal")) as Record<string, any>;
  c.programs = { ...c.programs, crosvm: null, qemu: "/nix/store/7q3ma1k6lq7w0b4j5b5n7m5ax9w5q2yz-qemu-10.1.2", virtiofsd: "/nix/store/7m2p0x5v8n6r9h1y3zk2b4w6q8d0f1g3-virtiofsd-1.13.2" };
  c.nixosVms.work = {
    ...c.nixosVms.work,
    hypervisor: "qemu",
    sharedHome: true,
    sharedDirectories: { src: { path: "/home/alice/src", mountPoint: "/home/user/src" } },
    qemu: { machine: "q35", shares9p: { media: { path: "/srv/media", readonly: true, mountPoint: "/srv/media" }, scratch: { path: "/srv/scratch" } } },
  };
  return c;
}

test("systemd-fstab-generator turns each VM's systemd.mount-extra= into one mount unit per share, required by local-fs.target", (t) => {
  let g: Generator | string;
  try {
    g = fstabGenerator();
  } catch (e) {
    g = `cannot fetch a systemd-fstab-generator with systemd.mount-extra=: ${(e as Error).message}`;
  }
  if (typeof g === "string") return skip(t, `fstab generator: ${g}`);
  t.diagnostic(`systemd-fstab-generator: ${g.describe}`);
  const vms = [...modelOf(example("desktop")).vms, ...modelOf(qemuSharesConfig()).vms];
  let checked = 0;
  for (const vm of vms) {
    const mounts = expectedMounts(vm.kernelParams);
    // Every share of the VM, virtio-fs and 9p, is on its command line, at its mount point.
    assert.deepEqual(
      mounts.map((m) => `${m.what} ${m.where}`).sort(),
      [...vm.shares.map((s) => `${s.tag} ${s.mountPoint}`), ...Object.keys(vm.config.qemu.shares9p).map((tag) => `${tag} ${vm.config.qemu.shares9p[tag]!.mountPoint ?? `/mnt/${tag}`}`)].sort(),
      `${vm.name}: the kernel command line mounts every share`,
    );
    const { units, required } = generate(g, vm.kernelParams);
    const want = mounts.map((m) => unitName(m.where)).sort();
    assert.deepEqual(units.map((u) => u.file), want, `${vm.name}: exactly one mount unit per share`);
    assert.deepEqual(required, want, `${vm.name}: local-fs.target requires each`);
    for (const m of mounts) {
      const u = units.find((x) => x.file === unitName(m.where))!;
      assert.deepEqual(
        Object.fromEntries(u.keys),
        { What: m.what, Where: m.where, Type: m.type, ...(m.options ? { Options: m.options } : {}) },
        `${vm.name}: ${u.file}`,
      );
      checked++;
    }
  }
  // desktop: work's home and projects, dev's home, banking's downloads (read-only); the qemu VM: home, src, media, scratch.
  assert.equal(checked, 8);
  const q = generate(g, modelOf(qemuSharesConfig()).vms[0]!.kernelParams).units;
  assert.equal(q.find((u) => u.file === "srv-media.mount")?.keys.get("Options"), "trans=virtio,version=9p2000.L,ro");
  assert.equal(q.find((u) => u.file === "home-user-src.mount")?.keys.get("Type"), "virtiofs");
});
