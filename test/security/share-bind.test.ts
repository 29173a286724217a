/**
 * A root virtiofsd must never serve anything but the share's own directory, however the user (who
 * owns the share's parent: their home, /shared) swaps the share's path for a link to a root
 * directory while the service starts. The unit runs virtiofsd through vmsilo-share-bind, which
 * binds the directory it opened without following links; this races it for real, as root in
 * private mount namespaces, against a user process that keeps replacing the share with a link.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { chmodSync, chownSync, mkdirSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { ROOT, have } from "../support/harness.js";
import { buildAgent, missingTools, tempDir } from "../vmrun/support.js";
import { skip } from "../e2e/support.js";

const NOBODY = 65534;
const RUNS = 300;

/** The shim that refuses openat2 as systemd does under RestrictSUIDSGID= (no-openat2.c), or why it cannot be built. */
function noOpenat2(): { LD_PRELOAD: string } | string {
  if (process.arch !== "x64") return `no-openat2.c issues x86_64 system calls; this is ${process.arch}`;
  const so = join(tempDir("no-openat2"), "no-openat2.so");
  const r = spawnSync("cc", ["-O2", "-shared", "-fPIC", "-o", so, join(ROOT, "test", "security", "no-openat2.c")], { encoding: "utf8" });
  return r.status === 0 ? { LD_PRELOAD: so } : `cc no-openat2.c failed: ${r.stderr}`;
}

for (const variant of ["openat2", "openat2 refused with ENOSYS (a unit with RestrictSUIDSGID=): the walk without it"]) {
  test(`vmsilo-share-bind, ${variant}: a share swapped for a link to a root directory is refused, never served (raced ${RUNS} times)`, async (t) => {
    if (process.getuid?.() !== 0) return skip(t, "share-bind race: needs root (mount namespaces, a second user)");
    const missing = missingTools() ?? (["unshare", "setpriv", "/usr/bin/python3"].find((c) => !have(c)) ?? null);
    if (missing) return skip(t, `share-bind race: ${missing}`);
    const shim = variant === "openat2" ? {} : noOpenat2();
    if (typeof shim === "string") return skip(t, shim);
    await race(join(buildAgent(["all"]).dir, "vmsilo-share-bind"), { ...process.env, ...shim });
  });
}

async function race(shareBind: string, env: NodeJS.ProcessEnv): Promise<void> {
  const dir = tempDir("share-bind");
  chmodSync(dir, 0o755);
  // /home/user-like: the user owns the parent of the share; the secret is root's.
  const home = join(dir, "home");
  const share = join(home, "share");
  const secret = join(dir, "secret");
  const target = join(dir, "run", "mnt");
  mkdirSync(share, { recursive: true });
  mkdirSync(secret, { mode: 0o700 });
  mkdirSync(target, { recursive: true, mode: 0o755 });
  writeFileSync(join(secret, "shadow"), "root only\n", { mode: 0o600 });
  chownSync(home, NOBODY, NOBODY);
  chownSync(share, NOBODY, NOBODY);
  // stat(1)'s %d:%i is st_dev:st_ino, as node reports them.
  const id = (p: string) => `${statSync(p).dev}:${statSync(p).ino}`;
  const shareId = id(share);
  const secretId = id(secret);

  // The user's side: the share is gone, a link to the secret, gone, the share back, over and over.
  const racer = spawn(
    "setpriv",
    ["--reuid", String(NOBODY), "--regid", String(NOBODY), "--clear-groups", "/usr/bin/python3", "-c",
      `import os\nS, R, L = ${JSON.stringify(share)}, ${JSON.stringify(join(home, "real"))}, ${JSON.stringify(secret)}\nn = 0\nwhile True:\n  os.rename(S, R); os.symlink(L, S); os.unlink(S); os.rename(R, S)\n  n += 1\n  if n % 100 == 0: open(${JSON.stringify(join(home, "swaps"))}, "w").write(str(n))\n`],
    { stdio: "ignore" },
  );
  const outcomes = { served: 0, refused: 0 };
  try {
    for (let i = 0; i < RUNS; i++) {
      const r = spawnSync("unshare", ["-m", "--propagation", "private", shareBind, share, target, "/usr/bin/stat", "-c", "%d:%i", target], { encoding: "utf8", env });
      if (r.status === 0) {
        const served = r.stdout.trim();
        assert.notEqual(served, secretId, `run ${i}: the root directory behind the link was served`);
        assert.equal(served, shareId, `run ${i}: served something other than the share`);
        outcomes.served++;
      } else {
        assert.equal(r.status, 1, `run ${i}: ${r.stderr}`);
        assert.match(r.stderr, /refusing to share|cannot open the shared directory/, `run ${i}`);
        outcomes.refused++;
      }
    }
  } finally {
    racer.kill("SIGKILL");
  }
  // Both outcomes happened: the race was real, and the share still works between swaps.
  assert.ok(outcomes.served > 0 && outcomes.refused > 0, JSON.stringify(outcomes));
  // A plain link at the share's path is refused with a message that says what to do.
  spawnSync("rm", ["-rf", share]);
  spawnSync("ln", ["-s", secret, share]);
  const r = spawnSync("unshare", ["-m", "--propagation", "private", shareBind, share, target, "/bin/true"], { encoding: "utf8", env });
  assert.equal(r.status, 1);
  assert.match(r.stderr, /refusing to share .*symbolic link; share the directory it points to by its real path/);
}
