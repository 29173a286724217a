/**
 * Disk images the VM service opens as root (and create-disk makes) must sit where only root can
 * change what their path names: the generated check-disks, run for real as root over real
 * directories, refuses a user's directory (a link there to a root-only file would otherwise be the
 * guest's writable disk), a group- or world-writable one, the image's directory reached through a
 * link, an image that is a link, and an image directly in a sticky directory such as /tmp.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { chmodSync, chownSync, mkdirSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { example, render, tempDirRemovedAtExit, writeTree } from "../support/harness.js";
import { skip } from "../e2e/support.js";

const NOBODY = 65534;

test("check-disks refuses every disk image path another user could redirect, and accepts root's", (t) => {
  if (process.getuid?.() !== 0) return skip(t, "check-disks: needs root (directories owned by another user)");
  const dir = tempDirRemovedAtExit("check-disks");
  const config = example("minimal") as any;
  config.programs = { ...config.programs, bash: "/usr", coreutils: "/usr" };
  config.nixosVms.work.additionalDisks = [{ path: join(dir, "root-only", "data.img") }];
  const out = join(dir, "out");
  writeTree(render(config), out);
  const check = (...paths: string[]) => spawnSync(join(out, "libexec", "vmsilo", "check-disks"), ["work", ...paths], { encoding: "utf8" });

  mkdirSync(join(dir, "root-only"), { mode: 0o755 });
  const user = join(dir, "user");
  mkdirSync(user);
  chownSync(user, NOBODY, NOBODY);
  mkdirSync(join(dir, "secret"), { mode: 0o700 });
  writeFileSync(join(dir, "secret", "token"), "root only\n", { mode: 0o600 });
  // The review's attack: the user's directory, the image a link to a root-only file.
  symlinkSync(join(dir, "secret", "token"), join(user, "data.img"));
  mkdirSync(join(dir, "group-writable"));
  chmodSync(join(dir, "group-writable"), 0o775);
  symlinkSync(join(dir, "root-only"), join(dir, "via-link"));
  symlinkSync(join(dir, "secret", "token"), join(dir, "root-only", "link.img"));
  mkdirSync(join(dir, "sticky"));
  chmodSync(join(dir, "sticky"), 0o1777);
  mkdirSync(join(dir, "sticky", "below"), { mode: 0o755 });

  const ok = check(join(dir, "root-only", "data.img"), join(dir, "sticky", "below", "x.img"));
  assert.equal(ok.status, 0, ok.stderr);
  const refusals: Array<[string, RegExp]> = [
    [join(user, "data.img"), new RegExp(`${user} belongs to uid ${NOBODY}, not to root`)],
    [join(dir, "group-writable", "d.img"), /can be written by others than root \(mode 775\)/],
    [join(dir, "via-link", "d.img"), /is reached through a symbolic link \(its real path is .*root-only\)/],
    [join(dir, "root-only", "link.img"), /it is a symbolic link/],
    [join(dir, "sticky", "d.img"), /sticky can be written by others than root \(mode 1777\)/],
    [join(dir, "missing", "d.img"), /its directory .*missing does not exist/],
  ];
  for (const [path, message] of refusals) {
    const r = check(join(dir, "root-only", "data.img"), path);
    assert.equal(r.status, 1, `${path}: ${r.stderr}`);
    assert.match(r.stderr, message, path);
    assert.match(r.stderr, /^vmsilo: VM work: refusing the disk image .* keep them in a directory only root can write/m);
  }
  assert.equal(check().status, 2, "usage");
});
