/**
 * Every virtiofsd command line vmsilo generates — the share units (crosvm, qemu) and vm-exec's two
 * daemons — parsed against the Rust virtiofsd's documented CLI (the "Usage" section of its README,
 * virtiofsd 1.13, gitlab.com/virtio-fs/virtiofsd; clap: `--opt value` and `--opt=value` both work for
 * options, flags take no value). The end-to-end tests run these command lines through a stand-in
 * mapping them onto Debian's C virtiofsd (its flags differ); this test is what ties them to the
 * daemon the NixOS module really installs.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, readFileSync, readdirSync, writeFileSync } from "node:fs";
import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { example, regularFiles, render, tempDir, writeTree } from "../support/harness.js";
import { execArgv, unitValues } from "../e2e/support.js";

/** Switches: no value. */
const FLAGS = new Set([
  "-h", "--help", "-V", "--version", "--syslog", "--print-capabilities", "--allow-direct-io", "--announce-submounts", "--no-announce-submounts",
  "--no-killpriv-v2", "--killpriv-v2", "--no-readdirplus", "--writeback", "--xattr", "--posix-acl", "--security-label", "--preserve-noatime",
  "--readonly", "--allow-mmap", "--migration-verify-handles", "--migration-confirm-paths",
]);
/** Options with a value; `null`: any value, else the documented choices. */
const OPTIONS: Record<string, readonly string[] | null> = {
  "--shared-dir": null,
  "--tag": null,
  "--socket-group": null,
  "--socket-path": null,
  "--fd": null,
  "--log-level": ["error", "warn", "info", "debug", "trace", "off"],
  "--thread-pool-size": null,
  "--rlimit-nofile": null,
  "--modcaps": null,
  "--sandbox": ["namespace", "chroot", "none"],
  "--seccomp": ["none", "kill", "log", "trap"],
  "--cache": ["auto", "always", "metadata", "never"],
  "--inode-file-handles": ["never", "prefer", "mandatory"],
  "--xattrmap": null,
  "--uid-map": null,
  "--gid-map": null,
  "--translate-uid": null,
  "--translate-gid": null,
  "--migration-mode": ["find-paths", "file-handles"],
  "--migration-on-error": ["abort", "guest-error"],
};

/** Problems of one argv (without the program) under the Rust CLI; [] when it parses. */
export function rustVirtiofsdProblems(args: readonly string[]): string[] {
  const problems: string[] = [];
  const seen = new Set<string>();
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    const eq = a.indexOf("=");
    const name = a.startsWith("--") && eq > 0 ? a.slice(0, eq) : a;
    if (FLAGS.has(name)) {
      if (name !== a) problems.push(`${a}: ${name} takes no value`);
      seen.add(name);
      continue;
    }
    if (!(name in OPTIONS)) {
      problems.push(`${a}: not an option of the Rust virtiofsd`);
      continue;
    }
    const value = name !== a ? a.slice(eq + 1) : args[++i];
    if (value === undefined) problems.push(`${name}: missing its value`);
    else if (OPTIONS[name] && !OPTIONS[name]!.includes(value)) problems.push(`${name} ${value}: must be one of ${OPTIONS[name]!.join(", ")}`);
    seen.add(name);
  }
  if (!seen.has("--shared-dir")) problems.push("--shared-dir is required");
  if (!seen.has("--socket-path") && !seen.has("--fd")) problems.push("--socket-path or --fd is required");
  return problems;
}

test("the table rejects what the Rust virtiofsd rejects", () => {
  assert.deepEqual(rustVirtiofsdProblems(["--shared-dir", "/s", "--socket-path", "/x"]), []);
  assert.deepEqual(rustVirtiofsdProblems(["-o", "source=/s", "--socket-path=/x"]), ["-o: not an option of the Rust virtiofsd", "source=/s: not an option of the Rust virtiofsd", "--shared-dir is required"]);
  assert.deepEqual(rustVirtiofsdProblems(["--shared-dir=/s", "--socket-path", "/x", "--cache", "none", "--xattr=1"]), ["--cache none: must be one of auto, always, metadata, never", "--xattr=1: --xattr takes no value"]);
});

const VIRTIOFSD = "/nix/store/8v1rfs2b0m5x4r5g7y0w6q3s1m2n3b4c-virtiofsd-1.13.2";

test("every virtiofsd unit of every configuration speaks the Rust CLI (every share option set)", () => {
  const desktop = example("desktop") as any;
  const everything = example("minimal") as any;
  everything.programs.virtiofsd = VIRTIOFSD;
  everything.nixosVms.work.sharedHome = true;
  everything.nixosVms.work.sharedDirectories = {
    all: {
      path: "/srv/all", threadPoolSize: 4, inodeFileHandles: "prefer", cache: "never", logLevel: "debug", xattr: true, posixAcl: true, readonly: true,
      allowMmap: true, enableReaddirplus: false, writeback: true, allowDirectIo: true, killprivV2: true, preserveNoatime: true,
      uidMap: ":0:1000:1:", gidMap: ":0:100:1:", translateUid: "map:0:1000:1", translateGid: "map:0:100:1",
    },
    plain: { path: "/srv/plain" },
  };
  const qemu = example("minimal") as any;
  qemu.programs = { ...qemu.programs, crosvm: null, qemu: "/nix/store/q-qemu", virtiofsd: VIRTIOFSD };
  Object.assign(qemu.nixosVms.work, { hypervisor: "qemu", sharedDirectories: { data: { path: "/srv/data", cache: "metadata" } } });
  // A host user whose ids are not the guest user's: the shares translate them.
  const otherIds = example("minimal") as any;
  Object.assign(otherIds.user, { uid: 1001, gid: 1002 });
  otherIds.programs.virtiofsd = VIRTIOFSD;
  Object.assign(otherIds.nixosVms.work, { sharedHome: true, sharedDirectories: { data: { path: "/srv/data" } } });
  let checked = 0;
  let translated = 0;
  for (const config of [desktop, everything, qemu, otherIds]) {
    for (const f of regularFiles(render(config))) {
      if (!/virtiofsd-.*\.service$/.test(f.path)) continue;
      for (const line of unitValues(f.content, "Service", "ExecStart")) {
        // vmsilo-share-bind SOURCE TARGET virtiofsd ARGS: virtiofsd serves only the bound TARGET.
        const argv = execArgv(line);
        assert.match(argv[0]!, /\/bin\/vmsilo-share-bind$/);
        assert.match(argv[3]!, /\/bin\/virtiofsd$/);
        assert.deepEqual(rustVirtiofsdProblems(argv.slice(4)), [], `${f.path}: ${line}`);
        assert.equal(argv[argv.indexOf("--shared-dir") + 1], argv[2], `${f.path}: virtiofsd serves the bound mount point`);
        checked++;
        if (line.includes("--translate-uid map:1000:1001:1 --translate-gid map:100:1002:1")) translated++;
      }
    }
  }
  assert.ok(checked >= 7, `checked ${checked} units`);
  assert.equal(translated, 2, "the home and data shares of the other user translate the guest user's ids");
});

test("vm-exec's virtiofsd daemons (store, --shared=DIR; as root and as a user) speak the Rust CLI", () => {
  const dir = tempDir("vmexec-virtiofsd-contract");
  // Stubs: virtiofsd records its argv and exits; qemu is never reached (the socket never appears).
  const stub = (name: string, body: string) => {
    mkdirSync(join(dir, name, "bin"), { recursive: true });
    writeFileSync(join(dir, name, "bin", name === "qemu" ? "qemu-system-x86_64" : name), `#!/bin/bash\n${body}\n`, { mode: 0o755 });
    return join(dir, name);
  };
  // One file per call: the two daemons start at once.
  const log = join(dir, "argv");
  mkdirSync(log);
  const config = example("minimal") as any;
  config.nixosVms = {};
  config.programs = { ...config.programs, bash: "/usr", coreutils: "/usr", crosvm: null, qemu: stub("qemu", "exit 1"), virtiofsd: stub("virtiofsd", `printf '%s\\0' "$@" >'${log}/'$$; sleep 0.3; exit 3`) };
  config.startTimeout = 1;
  config.vmExec = { enable: true, kernel: "/k", initramfs: "/i" };
  const out = join(dir, "out");
  writeTree(render(config, out), out);
  const shared = join(dir, "shared");
  mkdirSync(shared);
  const r = spawnSync(join(out, "bin", "vm-exec"), [`--shared=${shared}`, "true"], { encoding: "utf8", env: { ...process.env, TMPDIR: dir } });
  assert.equal(r.status, 125, r.stderr);
  const calls = readdirSync(log).map((f) => readFileSync(join(log, f), "utf8").split("\0").slice(0, -1));
  assert.equal(calls.length, 2, JSON.stringify(calls));
  for (const argv of calls) assert.deepEqual(rustVirtiofsdProblems(argv), [], argv.join(" "));
  const store = calls.find((a) => a.includes("nix-store"))!;
  assert.deepEqual(store.slice(0, 10), ["--shared-dir", "/nix/store", "--tag", "nix-store", "--readonly", "--cache", "always", "--log-level", "error", "--socket-path"]);
  const sharedCall = calls.find((a) => a.includes("shared") && !a.includes("nix-store"))!;
  assert.ok(sharedCall.includes(shared));
  // As root the daemon keeps its namespace sandbox; as another user it runs without (docs/vm-exec.md).
  for (const argv of calls) {
    if (process.getuid?.() === 0) assert.ok(!argv.includes("--sandbox"), argv.join(" "));
    else assert.deepEqual(argv.slice(-2), ["--sandbox", "none"]);
  }
});
