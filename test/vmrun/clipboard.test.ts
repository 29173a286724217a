/**
 * vm-clipboard, the generated script, for real: vm-run (the vmsilo-run client) reaches a real
 * vmsilo-agent over the unix-socket transport the vm-run tests use, standing in for the guest; on
 * both sides wl-copy and wl-paste are behaving stand-ins (they need a Wayland display, keep the
 * clipboard in a file, and wl-paste fails with "Nothing is copied" on an empty one). Bytes move
 * exactly both ways; an empty or over-limit clipboard, or a side without a display, moves nothing.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { example, render, writeTree } from "../support/harness.js";
import { CLIPBOARD_MAX_BYTES } from "../../src/render/usage.js";
import { Server, buildAgent, missingTools, tempDir } from "./support.js";

const WL_COPY = `#!/bin/sh
[ -n "$WAYLAND_DISPLAY" ] || { echo "Failed to connect to a Wayland server" >&2; exit 1; }
exec cat >"$CLIP_FILE"
`;
const WL_PASTE = `#!/bin/sh
[ -n "$WAYLAND_DISPLAY" ] || { echo "Failed to connect to a Wayland server" >&2; exit 1; }
[ "$1" = --no-newline ] || { echo "wl-paste stand-in: expected --no-newline" >&2; exit 2; }
[ -s "$CLIP_FILE" ] || { echo "Nothing is copied" >&2; exit 1; }
exec cat "$CLIP_FILE"
`;

function pkgDir(dir: string, files: Record<string, string>): string {
  mkdirSync(join(dir, "bin"), { recursive: true });
  for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, "bin", name), text, { mode: 0o755 });
  return dir;
}

test("vm-clipboard copy and paste move the clipboard exactly, and refuse what they must", async (t) => {
  const why = missingTools();
  if (why) return t.skip(why);
  const build = buildAgent(["all"]);
  const dir = tempDir("clipboard");
  const tools = join(dir, "vmsilo-tools");
  mkdirSync(join(tools, "bin"), { recursive: true });
  symlinkSync(build.bin("vmsilo-run"), join(tools, "bin", "vm-run"));
  const host = pkgDir(join(dir, "wl-clipboard"), { "wl-copy": WL_COPY, "wl-paste": WL_PASTE });
  const guestBin = join(pkgDir(join(dir, "guest"), { "wl-copy": WL_COPY, "wl-paste": WL_PASTE }), "bin");
  const hostClip = join(dir, "host-clipboard");
  const guestClip = join(dir, "guest-clipboard");
  const runDir = join(dir, "run");
  mkdirSync(join(runDir, "work"), { recursive: true });
  const agent = await new Server([build.bin("vmsilo-agent"), "--path", `${guestBin}:/usr/bin:/bin`, "--env", "WAYLAND_DISPLAY=wayland-0", "--env", `CLIP_FILE=${guestClip}`, "--listen-unix", join(runDir, "work", "command.socket")]).ready();
  t.after(() => agent.child.kill());

  const config = example("minimal") as Record<string, any>;
  config.programs = { ...config.programs, bash: "/usr", coreutils: "/usr", vmsiloTools: tools, wlClipboard: host };
  const out = join(dir, "out");
  writeTree(render(config, out), out);
  const clip = (args: string[], env: Record<string, string> = { WAYLAND_DISPLAY: "wayland-1" }) =>
    spawnSync(join(out, "bin", "vm-clipboard"), args, { encoding: "utf8", env: { PATH: "/usr/bin:/bin", VMSILO_RUN_DIR: runDir, CLIP_FILE: hostClip, ...env } });

  let r = clip(["copy", "work"]);
  assert.equal(r.status, 1, r.stderr);
  assert.match(r.stderr, /could not read the clipboard of work/);
  assert.ok(!existsSync(hostClip));

  const bytes = Buffer.from("two\nlines\0and a NUL \u00e9\n");
  writeFileSync(guestClip, bytes);
  r = clip(["copy", "work"]);
  assert.equal(r.status, 0, r.stderr);
  assert.deepEqual(readFileSync(hostClip), bytes);

  writeFileSync(hostClip, "from the desktop\n");
  r = clip(["paste", "work"]);
  assert.equal(r.status, 0, r.stderr);
  assert.equal(readFileSync(guestClip, "utf8"), "from the desktop\n");

  writeFileSync(hostClip, Buffer.alloc(CLIPBOARD_MAX_BYTES + 1, 0x61));
  r = clip(["paste", "work"]);
  assert.equal(r.status, 1);
  assert.match(r.stderr, new RegExp(`the desktop's clipboard is larger than ${CLIPBOARD_MAX_BYTES} bytes; nothing was moved`));
  assert.equal(readFileSync(guestClip, "utf8"), "from the desktop\n");
  writeFileSync(guestClip, Buffer.alloc(CLIPBOARD_MAX_BYTES + 1, 0x62));
  r = clip(["copy", "work"]);
  assert.equal(r.status, 1);
  assert.match(r.stderr, /the clipboard of work is larger than/);
  assert.equal(readFileSync(hostClip).length, CLIPBOARD_MAX_BYTES + 1, "the desktop's clipboard is left as it was");

  writeFileSync(guestClip, "small");
  r = clip(["copy", "work"], {});
  assert.equal(r.status, 1);
  assert.match(r.stderr, /could not set the desktop's clipboard/);

  for (const args of [["copy", "nope"], ["cut", "work"], ["copy"]]) assert.equal(clip(args).status, 2, args.join(" "));
});
