/**
 * Hostile but valid values (per src/config/grammar.ts) in every place a path, argument or kernel
 * parameter reaches a generated artifact:
 *   (a) every generated script parses (`bash -n`);
 *   (b) each launcher, run for real with a stub crosvm, hands crosvm exactly `launchCommand(vm, model).flat()`;
 *       a launcher with a passed-through PCI device stops at the IOMMU check without running anything;
 *   (c) every Exec*= line of every unit reads back (systemd unquoting) and carries the share paths intact;
 *   (d) without pass-through arguments, every crosvm command line still meets the upstream contract.
 */
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { chmodSync, existsSync, mkdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import fc from "fast-check";
import { resolve } from "../../src/generate.js";
import { driverFor } from "../../src/hypervisors/index.js";
import { parseUnit } from "../../src/systemd/unit.js";
import { absPathProblem, ANY_ARG, KERNEL_PARAM } from "../../src/config/grammar.js";
import { example, normalisedPath, regularFiles, render, scripts, tempDir, writeTree } from "../support/harness.js";
import { checkCrosvmArgv, loadCrosvmCli, parseSystemdExec } from "../contract/crosvm-contract.js";

const NUM_RUNS = 30;

// ------------------------------------------------------------------------------------------------
// Values

/** Printable characters that mean something to bash, systemd, serde_keyvalue, argh or a kernel command line. */
const SPECIAL = [..."'\"$`\\;|&*?[]{}()<>!#~%=,:@+-^"];
const ALNUM = [..."abcXYZ0189_./"];
const nonControl = fc.string({ unit: "binary", minLength: 1, maxLength: 1 }).filter((c) => !/[\x00-\x20\x7f]/.test(c));
const pathChar = fc.oneof({ weight: 4, arbitrary: fc.constantFrom(...SPECIAL, " ") }, { weight: 4, arbitrary: fc.constantFrom(...ALNUM) }, { weight: 1, arbitrary: nonControl });
/** `"` is no kernel-parameter character (the kernel reads it as quoting). */
const PARAM_SPECIAL = SPECIAL.filter((c) => c !== '"');
const paramChar = fc.oneof({ weight: 4, arbitrary: fc.constantFrom(...PARAM_SPECIAL) }, { weight: 4, arbitrary: fc.constantFrom(...ALNUM) }, { weight: 1, arbitrary: nonControl.filter((c) => c !== '"') });
const anyChar = fc.oneof(
  { weight: 4, arbitrary: fc.constantFrom(...SPECIAL, " ", "\n", "\t", "\r", "\x01", "\x1b", "\x7f") },
  { weight: 3, arbitrary: fc.constantFrom(...ALNUM) },
  { weight: 1, arbitrary: fc.string({ unit: "binary", minLength: 1, maxLength: 1 }).filter((c) => c !== "\0") },
);

/**
 * Strings over `chars`: either a free mixture, or mostly harmless characters with one to three special ones
 * (a word that is "safe but for one `$`" is what finds a quoting function that leaves too much bare).
 */
function hostileString(chars: fc.Arbitrary<string>, specials: readonly string[], maxLength: number): fc.Arbitrary<string> {
  const mostlySafe = fc
    .subarray([...specials], { minLength: 1, maxLength: 3 })
    .chain((few) => fc.string({ unit: fc.oneof({ weight: 3, arbitrary: fc.constantFrom(...ALNUM) }, { weight: 1, arbitrary: fc.constantFrom(...few) }), maxLength }));
  return fc.oneof(fc.string({ unit: chars, maxLength }), mostlySafe);
}

/** ABS_PATH: normalised and absolute, no control characters (spaces inside names, quotes, `$`, backticks,
 * `\`, `;`, `|`, `*`, `,`, `=` welcome): the string's names, without empty, `.` and `..` ones, edge spaces trimmed. */
const hostilePath = hostileString(pathChar, [...SPECIAL, " "], 30).map(normalisedPath);
/** KERNEL_PARAM: no whitespace, `"` or control characters, not starting with '-'. */
const kernelParam = fc.tuple(paramChar.filter((c) => c !== "-"), hostileString(paramChar, PARAM_SPECIAL, 20)).map(([a, b]) => a + b);
/** ANY_ARG: anything but NUL, newlines included. */
const anyArg = hostileString(anyChar, [...SPECIAL, " ", "\n", "\t", "\r", "\x1b"], 20);
const args = fc.array(anyArg, { maxLength: 4 });
/** A vhost-user device type crosvm knows (the schema only asks for [a-z][a-z0-9-]*). */
const vhostType = fc.constantFrom("net", "block", "console", "rng", "vsock", "fs", "scmi", "wl");

interface Hostile {
  kernel: string;
  initramfs: string;
  rootDisk: string;
  disks: string[];
  share: string;
  sharedHome: string;
  kernelParams: string[];
  vhostSockets: Array<[string, string]>;
  pciPath: string;
  globalExtraArgs: string[];
  globalExtraRunArgs: string[];
  vmExtraArgs: string[];
  vmExtraRunArgs: string[];
}

const hostile: fc.Arbitrary<Hostile> = fc.record({
  kernel: hostilePath,
  initramfs: hostilePath,
  rootDisk: hostilePath,
  disks: fc.array(hostilePath, { minLength: 1, maxLength: 3 }),
  share: hostilePath,
  sharedHome: hostilePath,
  kernelParams: fc.array(kernelParam, { maxLength: 4 }),
  vhostSockets: fc.array(fc.tuple(vhostType, hostilePath), { maxLength: 2 }),
  pciPath: hostilePath.filter((p) => p !== "/"),
  globalExtraArgs: args,
  globalExtraRunArgs: args,
  vmExtraArgs: args,
  vmExtraRunArgs: args,
});

test("the generators produce values the grammars accept", () => {
  fc.assert(
    fc.property(hostile, (h) => {
      for (const p of [h.kernel, h.initramfs, h.rootDisk, ...h.disks, h.share, h.sharedHome, h.pciPath, ...h.vhostSockets.map((v) => v[1])]) assert.equal(absPathProblem(p), null, p);
      for (const k of h.kernelParams) assert.match(k, KERNEL_PARAM);
      for (const a of [...h.globalExtraArgs, ...h.globalExtraRunArgs, ...h.vmExtraArgs, ...h.vmExtraRunArgs]) assert.match(a, ANY_ARG);
    }),
    { numRuns: 200 },
  );
});

// ------------------------------------------------------------------------------------------------
// Stub programs

const root = tempDir("property");
after(() => rmSync(root, { recursive: true, force: true }));

/** crosvm that records its argv ($0 first), NUL-separated, to $STUB_ARGV. */
const crosvmPkg = join(root, "crosvm");
mkdirSync(join(crosvmPkg, "bin"), { recursive: true });
writeFileSync(join(crosvmPkg, "bin", "crosvm"), `#!/bin/bash\nprintf '%s\\0' "$0" "$@" > "$STUB_ARGV"\n`);
chmodSync(join(crosvmPkg, "bin", "crosvm"), 0o755);

/** coreutils: the real tools, by symlink. */
const coreutilsPkg = join(root, "coreutils");
mkdirSync(join(coreutilsPkg, "bin"), { recursive: true });
for (const tool of ["rm", "timeout", "tail", "sleep", "readlink", "true", "install", "truncate", "cp"]) {
  const found = spawnSync("sh", ["-c", `command -v ${tool}`], { encoding: "utf8" }).stdout.trim();
  symlinkSync(found, join(coreutilsPkg, "bin", tool));
}

/** examples/desktop.json with the hostile values in place; `pass` false leaves the pass-through arguments out. */
function hostileConfig(h: Hostile, pass = true): any {
  const c = example("desktop") as any;
  c.programs.bash = "/usr";
  c.programs.crosvm = crosvmPkg;
  c.programs.coreutils = coreutilsPkg;
  c.crosvm.extraArgs = pass ? h.globalExtraArgs : [];
  c.crosvm.extraRunArgs = pass ? h.globalExtraRunArgs : [];
  const work = c.nixosVms.work;
  work.kernel = h.kernel;
  work.initramfs = h.initramfs;
  work.rootDisk.path = h.rootDisk;
  work.additionalDisks = h.disks.map((path, i) => ({ path, id: `d${i}`, options: i === 0 ? { "block-size": 4096 } : {} }));
  work.sharedDirectories.projects.path = h.share;
  work.sharedHome = h.sharedHome;
  work.kernelParams = h.kernelParams;
  work.vhostUser = h.vhostSockets.map(([type, socket]) => ({ type, socket }));
  work.crosvm = { logLevel: null, extraArgs: pass ? h.vmExtraArgs : [], extraRunArgs: pass ? h.vmExtraRunArgs : [] };
  const banking = c.nixosVms.banking;
  banking.kernel = h.initramfs;
  banking.rootDisk.path = h.kernel;
  banking.sharedDirectories.downloads.path = h.sharedHome;
  banking.kernelParams = [...h.kernelParams].reverse();
  c.nixosVms.net.pciDevices = [{ path: "03:00.0" }, { path: h.pciPath, options: { iommu: "viommu" } }];
  // The crosvm VMs only: the cloud-hypervisor VM's hostile corpus, launched through its stubs, is in
  // test/contract/cloud-hypervisor.test.ts.
  delete c.nixosVms.dev;
  return c;
}

// ------------------------------------------------------------------------------------------------
// The properties

test("(a)(b) hostile values: scripts parse, launchers hand crosvm exactly the modelled argv", () => {
  let n = 0;
  fc.assert(
    fc.property(hostile, (h) => {
      const config = hostileConfig(h);
      const model = resolve(config);
      const tree = render(config);
      const out = join(root, `run-${n++}`);
      writeTree(tree, out);
      try {
        // (a) every script parses.
        const files = scripts(tree).map((p) => join(out, p));
        const syntax = spawnSync("bash", ["-c", 'for f; do bash -n -- "$f" 2>&1 || echo "FAILED: $f"; done', "_", ...files], { encoding: "utf8" });
        assert.equal(syntax.stdout, "", `bash -n:\n${syntax.stdout}`);
        assert.ok(files.length >= 6);

        // (b) the launchers run.
        for (const vm of model.vms) {
          const launch = join(out, "libexec/vmsilo", vm.name, "launch");
          const argvFile = join(out, `${vm.name}.argv`);
          const r = spawnSync(launch, [], { encoding: "utf8", env: { PATH: process.env.PATH ?? "/usr/bin:/bin", STUB_ARGV: argvFile } });
          if (vm.pciSysfsPaths.length) {
            // No IOMMU here: the check must stop the launcher before anything else runs.
            assert.equal(r.status, 1, r.stderr);
            assert.match(r.stderr, /IOMMU not enabled or PCI device .* not found/);
            assert.equal(existsSync(argvFile), false, "crosvm ran despite the failed IOMMU check");
            continue;
          }
          assert.equal(r.status, 0, `${vm.name} launch: ${r.stderr}`);
          const got = readFileSync(argvFile, "utf8").split("\0").slice(0, -1);
          assert.deepEqual(got, driverFor(vm.config.hypervisor).launchCommand(vm, model).flat());
        }
      } finally {
        rmSync(out, { recursive: true, force: true });
      }
    }),
    { numRuns: NUM_RUNS },
  );
});

test("(c) hostile values: every Exec*= line reads back, share paths intact", () => {
  fc.assert(
    fc.property(hostile, (h) => {
      const config = hostileConfig(h);
      const tree = render(config);
      const sharedDirs: string[] = [];
      for (const f of regularFiles(tree)) {
        if (!f.path.startsWith("lib/systemd/")) continue;
        for (const e of parseUnit(f.content)) {
          if (!e.key.startsWith("Exec")) continue;
          let cmds;
          try {
            cmds = parseSystemdExec(e.value);
          } catch (err) {
            assert.fail(`${f.path} ${e.key}=${e.value}: ${(err as Error).message}`);
          }
          assert.equal(cmds.length, 1, `${f.path} ${e.key}=${e.value}`);
          const a = cmds[0]!.argv;
          // The user's path reaches vmsilo-share-bind (its first argument); virtiofsd serves the mount point.
          const b = a.findIndex((w) => w.endsWith("/bin/vmsilo-share-bind"));
          const i = a.indexOf("--shared-dir");
          if (b >= 0) sharedDirs.push(a[b + 1]!);
          else if (i >= 0) sharedDirs.push(a[i + 1]!);
        }
      }
      assert.deepEqual(sharedDirs.sort(), [h.share, h.sharedHome, h.sharedHome].sort());
    }),
    { numRuns: NUM_RUNS },
  );
});

const cli = loadCrosvmCli();

test("(d) hostile values: without pass-through arguments every crosvm command line meets the upstream contract", () => {
  fc.assert(
    fc.property(hostile, (h) => {
      const config = hostileConfig(h, false);
      const model = resolve(config);
      for (const vm of model.vms) {
        const d = driverFor(vm.config.hypervisor);
        for (const argv of [d.launchCommand(vm, model).flat(), d.gracefulStopArgv(vm, model), d.forceStopArgv(vm, model)]) {
          assert.deepEqual(checkCrosvmArgv(argv, cli), [], JSON.stringify(argv));
        }
      }
    }),
    { numRuns: 200 },
  );
});
