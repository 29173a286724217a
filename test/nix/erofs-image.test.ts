/**
 * The guest's root image: nixos-module/rootfs/make-erofs.sh, the builder erofs.nix runs, packs a
 * small fake closure with the real erofs-utils, and the image is read back with fsck.erofs
 * (check and --extract), dump.erofs, blkid and, as root where the kernel has erofs, a loop mount.
 *
 * The script needs a mkfs.erofs with -L and --mount-point (1.6+) built with
 * --enable-multithreading (--workers), as nixpkgs builds it. Debian 12's erofs-utils (1.5) has none
 * of them, so when the mkfs.erofs on PATH lacks --workers this builds Debian 13's erofs-utils
 * source package with --enable-multithreading (as Debian 13 and nixpkgs build it), once, into the
 * e2e cache (about 30 s). Without mkfs.erofs, or without root and apt-get for that build, it
 * prints SKIP.
 */
import { test, type TestContext } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { chmodSync, chownSync, copyFileSync, existsSync, lstatSync, mkdirSync, readFileSync, readdirSync, readlinkSync, renameSync, rmSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { availableParallelism } from "node:os";
import { basename, dirname, join } from "node:path";
import { ROOT, have, skipWithoutTool, tempDir } from "../support/harness.js";
import { CACHE, cached, debianSource, ensureDebs, skip } from "../e2e/support.js";
import { libArg, skipWithoutLib } from "./support.js";

const SCRIPT = join(ROOT, "nixos-module", "rootfs", "make-erofs.sh");
const EROFS_NIX = join(ROOT, "nixos-module", "rootfs", "erofs.nix");
const IS_ROOT = process.getuid?.() === 0;

// ---------------------------------------------------------------------------------------------
// A multithreaded erofs-utils

/** The first Debian release whose erofs-utils (1.8) is built with --enable-multithreading. */
const MT_SOURCE_SUITE = "trixie";
/** What building that source package here needs (also in .ci/run-deps.txt). */
const MT_BUILD_DEBS = ["dpkg-dev", "autoconf", "automake", "libtool", "pkgconf", "liblz4-dev", "gcc", "make", "libc6-dev"];

interface ErofsUtils {
  /** The directory holding mkfs.erofs, fsck.erofs and dump.erofs. */
  bin: string;
  /** `mkfs.erofs -V`, and where the tools come from. */
  describe: string;
}

function run(cmd: string, args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv } = {}) {
  const r = spawnSync(cmd, args, { encoding: "utf8", maxBuffer: 64 << 20, ...opts });
  if (r.error) throw r.error;
  return r;
}

function mustRun(cmd: string, args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): string {
  const r = run(cmd, args, opts);
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(" ")} exited ${r.status}:\n${r.stdout}${r.stderr}`);
  return r.stdout;
}

/** mkfs.erofs has --workers only when built with --enable-multithreading. */
function acceptsWorkers(mkfs: string): boolean {
  return /--workers=/.test(run(mkfs, ["--help"]).stdout);
}

/** Debian 13's erofs-utils source package, built with --enable-multithreading. */
function buildFromDebianSource(tmp: string): void {
  const dir = debianSource("erofs-utils", MT_SOURCE_SUITE, tmp);
  mustRun("autoreconf", ["-fi"], { cwd: dir });
  mustRun("./configure", ["--enable-multithreading", "--disable-fuse", "--without-selinux"], { cwd: dir });
  mustRun("make", [`-j${availableParallelism()}`], { cwd: dir });
  mkdirSync(join(tmp, "bin"));
  for (const tool of ["mkfs/mkfs.erofs", "fsck/fsck.erofs", "dump/dump.erofs"]) copyFileSync(join(dir, tool), join(tmp, "bin", basename(tool)));
  rmSync(join(tmp, "src"), { recursive: true, force: true });
}

/** A multithreaded erofs-utils: the one on PATH when it is, else built (see the top); or why not. */
function multithreadedErofsUtils(): ErofsUtils | string {
  const onPath = run("sh", ["-c", "command -v mkfs.erofs"]).stdout.trim();
  const version = (bin: string) => run(join(bin, "mkfs.erofs"), ["-V"]).stdout.split("\n")[0];
  if (acceptsWorkers(onPath)) return { bin: dirname(onPath), describe: `${version(dirname(onPath))}, installed` };
  if (!IS_ROOT || !have("apt-get")) return `${onPath} has no --workers, and building Debian ${MT_SOURCE_SUITE}'s erofs-utils with multithreading needs root and apt-get`;
  const missing = ensureDebs(MT_BUILD_DEBS);
  if (missing !== null) return missing;
  const bin = join(cached(join(CACHE, `erofs-utils-mt-${MT_SOURCE_SUITE}`), buildFromDebianSource), "bin");
  assert.ok(acceptsWorkers(join(bin, "mkfs.erofs")), `the erofs-utils built in ${bin} has no --workers`);
  return { bin, describe: `${version(bin)}, Debian ${MT_SOURCE_SUITE}'s source built with --enable-multithreading` };
}

// ---------------------------------------------------------------------------------------------
// A fake closure, shaped like a store: 0444/0555 files, 0555 directories, links between paths

const STORE = "/nix/store";
const HELLO = "11111111111111111111111111111111-hello-2.12";
const LIBGREET = "22222222222222222222222222222222-libgreet-1.0";
const GREETING = "33333333333333333333333333333333-greeting.txt";
const HELLO_LINK = "44444444444444444444444444444444-hello-link";
const UNLISTED = "55555555555555555555555555555555-not-in-closure";
const LISTED = [HELLO, LIBGREET, GREETING, HELLO_LINK];
/** The owner of one file, when the test can chown: --all-root must still make it root's. */
const FOREIGN = { uid: 1234, gid: 5678 };

/** Text that compresses (about 400 KiB of seeded pseudo-random words), so lz4hc has work to do. */
function compressibleText(): string {
  const words = ["alpha", "beta", "gamma", "delta", "store", "nix", "path", "erofs", "image", "kernel", "vmsilo", "guest"];
  let seed = 1;
  const next = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31);
  const lines: string[] = [];
  for (let i = 0; i < 5000; i++) lines.push(Array.from({ length: 12 }, () => `${words[next() % words.length]}${next() % 100}`).join(" "));
  return lines.join("\n") + "\n";
}

/** Writes the fake store under `dir`; returns the store-paths file (the listed paths only). */
function fakeClosure(dir: string): { store: string; storePaths: string } {
  const store = join(dir, "store");
  const file = (rel: string, content: string, mode: number) => {
    mkdirSync(dirname(join(store, rel)), { recursive: true });
    writeFileSync(join(store, rel), content);
    chmodSync(join(store, rel), mode);
  };
  file(`${HELLO}/bin/hello`, "#!/bin/sh\necho hello\n", 0o555);
  symlinkSync("hello", join(store, HELLO, "bin", "hi"));
  file(`${HELLO}/share/doc/hello/README`, "hello, the program\n", 0o444);
  mkdirSync(join(store, HELLO, "share", "empty"));
  symlinkSync(`${STORE}/${LIBGREET}/lib`, join(store, HELLO, "lib"));
  file(`${LIBGREET}/lib/libgreet.so.1`, compressibleText(), 0o555);
  symlinkSync("libgreet.so.1", join(store, LIBGREET, "lib", "libgreet.so"));
  file(`${LIBGREET}/share/greetings`, "hi\nhello\n", 0o444);
  if (IS_ROOT) chownSync(join(store, LIBGREET, "share", "greetings"), FOREIGN.uid, FOREIGN.gid);
  file(GREETING, "a store path that is a single file\n", 0o444);
  symlinkSync(`${STORE}/${HELLO}`, join(store, HELLO_LINK));
  file(`${UNLISTED}/data`, "not in the closure\n", 0o444);
  // Directories read-only last, deepest first, as in a store.
  const dirs: string[] = [];
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) if (e.isDirectory()) walk(join(d, e.name));
    dirs.push(d);
  };
  for (const p of [...LISTED, UNLISTED]) if (lstatSync(join(store, p)).isDirectory()) walk(join(store, p));
  for (const d of dirs) chmodSync(d, 0o555);
  const storePaths = join(dir, "store-paths");
  writeFileSync(storePaths, LISTED.map((p) => join(store, p) + "\n").join(""));
  return { store, storePaths };
}

/** Removes a tree holding read-only directories (the fake store, an extracted image). */
function removeTree(dir: string): void {
  spawnSync("chmod", ["-R", "u+w", dir]);
  rmSync(dir, { recursive: true, force: true });
}

// ---------------------------------------------------------------------------------------------
// Reading trees back

interface Entry {
  type: "file" | "dir" | "link";
  /** Permission bits (mode & 0o7777). */
  perms: number;
  uid: number;
  gid: number;
  mtimeMs: number;
  /** A file's bytes (as latin1) or a link's target. */
  data: string;
}

/** Every entry under `root` by path relative to it ("" is `root`), through lstat. */
function entries(root: string): Map<string, Entry> {
  const out = new Map<string, Entry>();
  const visit = (rel: string) => {
    const p = rel === "" ? root : join(root, rel);
    const s = lstatSync(p);
    const type = s.isSymbolicLink() ? "link" : s.isDirectory() ? "dir" : "file";
    const data = type === "link" ? readlinkSync(p) : type === "file" ? readFileSync(p).toString("latin1") : "";
    out.set(rel, { type, perms: s.mode & 0o7777, uid: s.uid, gid: s.gid, mtimeMs: s.mtimeMs, data });
    if (type === "dir") for (const e of readdirSync(p).sort()) visit(rel === "" ? e : join(rel, e));
  };
  visit("");
  return out;
}

/** What the image root must hold: each listed store path at top level, as in the fake store. */
function expectedEntries(store: string): Map<string, Entry> {
  const all = entries(store);
  const keep = new Map<string, Entry>();
  for (const [rel, e] of all) if (LISTED.some((p) => rel === p || rel.startsWith(`${p}/`))) keep.set(rel, e);
  return keep;
}

/** The checks of one view of the image (the extracted tree, the mounted filesystem). */
async function checkTree(t: TestContext, view: string, root: string, store: string): Promise<void> {
  const got = entries(root);
  const want = expectedEntries(store);

  await t.test(`${view}: each listed store path at the top level, nothing else; the root is 0755`, () => {
    assert.deepEqual([...got.keys()].filter((k) => k !== "").sort(), [...want.keys()].sort());
    assert.equal(got.get("")?.type, "dir");
    assert.equal(got.get("")?.perms, 0o755, "the image root (the guest's /nix/store lower layer) is not 0755");
  });

  await t.test(`${view}: contents, symlink targets and permission bits (exec bits too) preserved`, () => {
    for (const [rel, w] of want) {
      const g = got.get(rel);
      assert.ok(g, `${rel}: missing`);
      assert.equal(g.type, w.type, `${rel}: type`);
      assert.equal(g.perms.toString(8), w.perms.toString(8), `${rel}: permission bits`);
      assert.ok(g.data === w.data, `${rel}: ${g.type === "link" ? `link target ${g.data}, want ${w.data}` : "content differs"}`);
    }
    assert.equal(got.get(`${HELLO}/bin/hello`)?.perms, 0o555, "the executable lost its exec bits");
  });

  await t.test(`${view}: absolute links into /nix/store resolve inside the image (mounted at /nix/store)`, () => {
    const links = [...got].filter(([, e]) => e.type === "link" && e.data.startsWith(`${STORE}/`));
    assert.ok(links.length >= 2, "the fixture has absolute store links");
    for (const [rel, e] of links) assert.ok(existsSync(join(root, e.data.slice(STORE.length + 1))), `${rel} -> ${e.data} does not resolve in the image`);
  });

  await t.test(`${view}: everything owned by root:root`, (st) => {
    if (view === "fsck.erofs --extract" && !IS_ROOT) return skip(st, "fsck.erofs --extract keeps owners only as root");
    const notRoot = [...got].filter(([, e]) => e.uid !== 0 || e.gid !== 0).map(([rel, e]) => `${rel || "/"} ${e.uid}:${e.gid}`);
    assert.deepEqual(notRoot, []);
    if (IS_ROOT) assert.equal(want.get(`${LIBGREET}/share/greetings`)?.uid, FOREIGN.uid, "the fixture has a file not owned by root");
  });

  await t.test(`${view}: every mtime is 0`, () => {
    const dated = [...got].filter(([, e]) => e.mtimeMs !== 0).map(([rel, e]) => `${rel || "/"} ${new Date(e.mtimeMs).toISOString()}`);
    assert.deepEqual(dated, []);
  });
}

function kernelHasErofs(): boolean {
  const listed = () => /\terofs$/m.test(readFileSync("/proc/filesystems", "utf8"));
  return listed() || (spawnSync("modprobe", ["-q", "erofs"]).status === 0 && listed());
}

// ---------------------------------------------------------------------------------------------

test("make-erofs.sh is shellcheck-clean", (t) => {
  if (skipWithoutTool(t, "shellcheck", "shellcheck")) return;
  const r = run("shellcheck", ["--severity=style", "--format=gcc", SCRIPT]);
  assert.equal(r.status, 0, r.stdout + r.stderr);
});

test("erofs.nix builds the image by running make-erofs.sh on the closure's store-paths, with a multithreaded erofs-utils", (t) => {
  if (skipWithoutLib(t)) return;
  // erofs.nix with stand-ins for what it takes from pkgs; the runCommand's arguments come back.
  const expr = `
    let
      lib = ${libArg()};
      erofsUtils = flags: {
        configureFlags = flags;
        overrideAttrs = f: erofsUtils (f { configureFlags = flags; }).configureFlags;
      };
      build = flags: import ${JSON.stringify(EROFS_NIX)} {
        inherit lib;
        name = "work";
        rootPaths = [ "${STORE}/00000000000000000000000000000000-toplevel" ];
        closureInfo = { rootPaths }: "${STORE}/11111111111111111111111111111111-closure-info";
        erofs-utils = erofsUtils flags;
        runCommand = name: attrs: command: {
          inherit name command;
          configureFlags = map (p: p.configureFlags) attrs.nativeBuildInputs;
        };
      };
    in {
      builds = [ (build [ "MAX_BLOCK_SIZE=4096" ]) (build [ "--enable-multithreading" ]) ];
      # The repository's script as Nix names it in the store (the hash is of its content).
      script = "\${/. + ${JSON.stringify(SCRIPT)}}";
    }`;
  const r = run("nix-instantiate", ["--eval", "--strict", "--json", "--option", "substituters", "", "-E", expr]);
  assert.equal(r.status, 0, r.stderr);
  const { builds, script } = JSON.parse(r.stdout) as { builds: Array<{ name: string; command: string; configureFlags: string[][] }>; script: string };
  const [plain, alreadyMt] = builds;
  assert.equal(plain!.command, `bash ${script} ${STORE}/11111111111111111111111111111111-closure-info/store-paths "$out"\n`);
  assert.equal(plain!.name, "vmsilo-rootfs-work.erofs");
  assert.deepEqual(plain!.configureFlags, [["MAX_BLOCK_SIZE=4096", "--enable-multithreading"]]);
  assert.deepEqual(alreadyMt!.configureFlags, [["--enable-multithreading"]]);
});

test("make-erofs.sh: the image of a fake closure, read back with erofs-utils, blkid and the kernel", async (t) => {
  if (skipWithoutTool(t, "mkfs.erofs", "erofs-utils")) return;
  const tools = multithreadedErofsUtils();
  if (typeof tools === "string") return skip(t, tools);
  console.log(`erofs-utils: ${tools.describe}`);
  const tool = (name: string) => join(tools.bin, name);

  const dir = tempDir("erofs-image");
  try {
    const { store, storePaths } = fakeClosure(dir);
    // Records mkfs.erofs's argv, then runs the real one.
    const shim = join(dir, "shim");
    mkdirSync(shim);
    writeFileSync(join(shim, "mkfs.erofs"), `#!/bin/sh\nprintf '%s\\n' "$@" > "$MKFS_ARGV"\nexec '${tool("mkfs.erofs")}' "$@"\n`, { mode: 0o755 });
    /** Runs the script as erofs.nix does (`bash make-erofs.sh STORE_PATHS OUT`); returns mkfs.erofs's argv. */
    const makeErofs = (out: string, cores: string | undefined): string[] => {
      const tmp = join(dir, `tmp-${basename(out)}`);
      mkdirSync(tmp, { recursive: true });
      const env: NodeJS.ProcessEnv = { ...process.env, PATH: `${shim}:${process.env.PATH}`, TMPDIR: tmp, MKFS_ARGV: join(dir, "argv") };
      delete env.NIX_BUILD_CORES;
      if (cores !== undefined) env.NIX_BUILD_CORES = cores;
      mustRun("bash", [SCRIPT, storePaths, out], { env });
      assert.deepEqual(readdirSync(tmp), [], "the script left its staging copy behind");
      return readFileSync(join(dir, "argv"), "utf8").trimEnd().split("\n");
    };

    const image = join(dir, "nixos.erofs");
    const argv = makeErofs(image, "2");

    await t.test("mkfs.erofs gets the design's flags, the image and the staged closure", () => {
      // Most flags are checked by their effect below; --mount-point only prefixes the paths
      // SELinux file contexts are matched against, which no reader shows.
      const uuid = createHash("sha256").update(image).digest("hex").replace(/^(.{8})(.{4})(.{4})(.{4})(.{12}).*$/, "$1-$2-$3-$4-$5");
      const flags = ["--quiet", "-zlz4hc", "--workers=2", "-T", "0", "-U", uuid, "--all-root", "-L", "vmsilo-store", "--mount-point=/nix/store"];
      assert.deepEqual(argv.slice(0, -1), [...flags, image]);
      // mktemp -d under TMPDIR, then store/ in it.
      const staged = argv.at(-1)!;
      const tmp = join(dir, "tmp-nixos.erofs");
      assert.ok(staged.startsWith(`${tmp}/`) && /^tmp\.\w+\/store$/.test(staged.slice(tmp.length + 1)), `staged closure: ${staged}`);
    });

    await t.test("the mkfs.erofs it runs is multithreaded and gets --workers from NIX_BUILD_CORES, else every core", () => {
      assert.ok(acceptsWorkers(tool("mkfs.erofs")));
      const nproc = mustRun("nproc", []).trim();
      for (const cores of [undefined, "0"]) {
        const a = makeErofs(join(dir, `workers-${cores ?? "unset"}.erofs`), cores);
        assert.ok(a.includes(`--workers=${nproc}`), `NIX_BUILD_CORES=${cores ?? "(unset)"}: ${a.join(" ")}`);
      }
    });

    await t.test("the same closure into the same output path gives the same bytes, with several workers", () => {
      const first = join(dir, "first.erofs");
      renameSync(image, first);
      makeErofs(image, "2");
      assert.ok(readFileSync(first).equals(readFileSync(image)), "two builds of one closure differ");
      const probe = (p: string) => /^UUID=(.*)$/m.exec(mustRun("blkid", ["-p", "-o", "export", p]))?.[1];
      assert.notEqual(probe(join(dir, "workers-unset.erofs")), probe(image), "another output path, yet the same filesystem UUID");
    });

    await t.test("fsck.erofs: the image is valid erofs", () => {
      const r = run(tool("fsck.erofs"), [image]);
      assert.equal(r.status, 0, r.stdout + r.stderr);
    });

    await t.test("blkid: an erofs filesystem labelled vmsilo-store (what /dev/disk/by-label/ is made from)", () => {
      const probe = mustRun("blkid", ["-p", "-o", "export", image]);
      assert.match(probe, /^TYPE=erofs$/m);
      assert.match(probe, /^LABEL=vmsilo-store$/m);
    });

    await t.test("dump.erofs: built at time 0", () => {
      const sb = mustRun(tool("dump.erofs"), ["-s", image], { env: { ...process.env, TZ: "UTC" } });
      assert.match(sb, /^Filesystem created: +Thu Jan {2}1 00:00:00 1970$/m);
    });

    const extracted = join(dir, "extracted");
    // Extraction decompresses and checks every file; as root it keeps owners, modes and mtimes.
    mustRun(tool("fsck.erofs"), [`--extract=${extracted}`, image]);

    await t.test("dump.erofs: lz4-compressed, and smaller than plain lz4 from the same tree (lz4hc)", () => {
      const sb = mustRun(tool("dump.erofs"), ["-s", image]);
      // Without compr_cfgs the only algorithm an image can use is lz4 (lz4hc writes lz4 streams).
      assert.match(sb, /^Filesystem lz4_max_distance:/m);
      assert.doesNotMatch(sb, /compr_algs/);
      const compressed = /^Filesystem compressed files: +(\d+)$/m.exec(mustRun(tool("dump.erofs"), ["-S", image]));
      assert.ok(Number(compressed?.[1]) >= 1, "no compressed file in the image");
      const lz4 = join(dir, "lz4.erofs");
      mustRun(tool("mkfs.erofs"), ["--quiet", "-zlz4", "-T", "0", "--all-root", lz4, extracted]);
      assert.ok(statSync(image).size < statSync(lz4).size, `image ${statSync(image).size} B, plain lz4 ${statSync(lz4).size} B: not lz4hc`);
    });

    await checkTree(t, "fsck.erofs --extract", extracted, store);

    const mount = join(dir, "mnt");
    mkdirSync(mount);
    const mounted = IS_ROOT && kernelHasErofs() ? run("timeout", ["30", "mount", "-t", "erofs", "-o", "loop,ro", image, mount]) : null;
    if (mounted === null || mounted.status !== 0) {
      await t.test("mount -t erofs -o loop", (st) => skip(st, mounted ? `mount failed: ${mounted.stderr.trim()}` : "needs root and a kernel with erofs"));
      return;
    }
    try {
      await checkTree(t, "mount -t erofs -o loop", mount, store);
    } finally {
      mustRun("umount", [mount]);
    }
  } finally {
    removeTree(dir);
  }
});
