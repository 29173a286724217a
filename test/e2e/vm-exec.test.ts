/**
 * vm-exec for real (SPEC D14): the generated bin/vm-exec boots the test guest under TCG with qemu,
 * shares the store over virtio-fs (Debian's C virtiofsd behind the Rust-flag stand-in), runs the
 * script with bash in the guest and returns its status; 125 when the VM fails; no temporary files.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { renderTree, skip, testGuest, vmExecTestConfig, tempDir, waitFor, VM_EXEC_STORE_MARKER, type TestGuest } from "./support.js";

let tree: { out: string; tmp: string } | undefined;
function setup(t: { skip(msg?: string): void }): { g: TestGuest; out: string; tmp: string } | null {
  const g = testGuest();
  if (typeof g === "string") {
    skip(t, `vm-exec end-to-end: ${g}`);
    return null;
  }
  if (!tree) {
    const out = renderTree(vmExecTestConfig(g, { timeout: 60 }), "vm-exec-e2e");
    // vm-exec's temporary directories go here, so "nothing left behind" is checked exactly.
    const tmp = join(tempDir("vm-exec-tmp"), "t");
    mkdirSync(tmp);
    tree = { out, tmp };
  }
  return { g, ...tree };
}

function vmExec(out: string, tmp: string, args: string[], input?: string) {
  const r = spawnSync("timeout", ["-k", "5", "120", join(out, "bin", "vm-exec"), ...args], { encoding: "utf8", env: { ...process.env, TMPDIR: tmp }, input, maxBuffer: 64 << 20 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

const leftovers = (tmp: string) => readdirSync(tmp);

test("vm-exec 'exit 7' returns 7, and leaves no temporary files", (t) => {
  const s = setup(t);
  if (!s) return;
  const r = vmExec(s.out, s.tmp, ["exit 7"]);
  assert.equal(r.status, 7, r.stderr);
  assert.deepEqual(leftovers(s.tmp), []);
});

test("vm-exec 'echo hi' prints hi; with --quiet exactly its output", (t) => {
  const s = setup(t);
  if (!s) return;
  let r = vmExec(s.out, s.tmp, ["echo hi"]);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /^hi$/m);
  r = vmExec(s.out, s.tmp, ["--quiet", "echo hi; echo to-stderr >&2; printf 'no newline'"]);
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout, "hi\nto-stderr\nno newline");
  assert.equal(r.stderr, "");
  assert.deepEqual(leftovers(s.tmp), []);
});

test("vm-exec runs the script with bash as root, the host store read-only at /nix/store, no stdin", (t) => {
  const s = setup(t);
  if (!s) return;
  const script = [
    'echo "bash=${BASH_VERSION%%.*} uid=$(id -u)"',
    "grep -q ' /nix/store virtiofs ro' /proc/mounts && echo store-ro",
    `cat /nix/store/${VM_EXEC_STORE_MARKER}`,
    `touch /nix/store/new 2>/dev/null || echo store-not-writable`,
    "read -r line; echo \"stdin-status=$?\"",
    "exit 255",
  ].join("\n");
  const r = vmExec(s.out, s.tmp, ["--quiet", script], "this must not reach the guest\n");
  assert.equal(r.status, 255, r.stderr);
  assert.equal(r.stdout, `bash=5 uid=0\nstore-ro\nfrom the host store\nstore-not-writable\nstdin-status=1\n`);
});

test("vm-exec streams long output whole (nothing truncated after the script ends)", (t) => {
  const s = setup(t);
  if (!s) return;
  const r = vmExec(s.out, s.tmp, ["--quiet", "seq 1 20000; exit 3"]);
  assert.equal(r.status, 3, r.stderr);
  const expected = Array.from({ length: 20000 }, (_, i) => `${i + 1}\n`).join("");
  assert.equal(r.stdout.length, expected.length);
  assert.equal(r.stdout, expected);
});

test("vm-exec --shared=DIR: the guest reads and writes DIR at /tmp/shared", (t) => {
  const s = setup(t);
  if (!s) return;
  const dir = tempDir("vm-exec-shared");
  writeFileSync(join(dir, "from-host"), "host data\n");
  const r = vmExec(s.out, s.tmp, ["--quiet", `--shared=${dir}`, "cat /tmp/shared/from-host; echo guest data > /tmp/shared/from-guest"]);
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout, "host data\n");
  assert.equal(readFileSync(join(dir, "from-guest"), "utf8"), "guest data\n");
  assert.deepEqual(leftovers(s.tmp), []);
});

test("vm-exec: extra qemu arguments after -- reach qemu", (t) => {
  const s = setup(t);
  if (!s) return;
  // A second serial-less virtio-blk disk, seen by the guest with its serial.
  const disk = join(tempDir("vm-exec-extra"), "extra.img");
  writeFileSync(disk, Buffer.alloc(1 << 20));
  const r = vmExec(s.out, s.tmp, ["--quiet", 'for f in /sys/block/vd*/serial; do echo "$(cat "$f")"; done | sort', "--", "-drive", `file=${disk},format=raw,if=none,id=x`, "-device", "virtio-blk-device,drive=x,serial=from-cli"]);
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout, "from-cli\nvmsilo-script\nvmsilo-status\n");
});

test("vm-exec: a VM that cannot boot returns 125 with a message; no temporary files", (t) => {
  const s = setup(t);
  if (!s) return;
  const bad = join(tempDir("vm-exec-bad"), "not-an-initrd");
  writeFileSync(bad, "this is no cpio archive\n");
  const out = renderTree(vmExecTestConfig(s.g, { timeout: 60, initramfs: bad }), "vm-exec-bad");
  let r = vmExec(out, s.tmp, ["--quiet", "echo unreachable"]);
  assert.equal(r.status, 125);
  assert.equal(r.stdout, "");
  assert.match(r.stderr, /vm-exec: the VM failed before SCRIPT finished: no exit status came back .*--initrd-console shows the boot/);
  // Without --quiet the kernel's errors are on the console: the panic (panic=-1 ends the VM at once).
  r = vmExec(out, s.tmp, ["echo unreachable"]);
  assert.equal(r.status, 125);
  assert.match(r.stdout, /Kernel panic/);
  assert.doesNotMatch(r.stdout, /unreachable/);
  // qemu itself failing (a kernel that does not exist) is 125 too.
  const out2 = renderTree(vmExecTestConfig(s.g, { timeout: 60, kernel: "/nonexistent/vmlinux" }), "vm-exec-nokernel");
  r = vmExec(out2, s.tmp, ["true"]);
  assert.equal(r.status, 125);
  assert.match(r.stderr, /qemu exited with status 1/);
  assert.deepEqual(leftovers(s.tmp), []);
});

test("vm-exec: usage errors exit 2 before anything starts", (t) => {
  const s = setup(t);
  if (!s) return;
  const cases: Array<[string[], RegExp]> = [
    [[], /SCRIPT is missing/],
    [["--bogus", "true"], /unknown option: '--bogus'/],
    [["--quiet=1", "true"], /unknown option: '--quiet=1'/],
    [["--shared", "/tmp", "true"], /--shared needs its directory as --shared=DIR/],
    [["--shared=/nonexistent-dir", "true"], /not a directory/],
    [["true", "false"], /one SCRIPT only/],
  ];
  for (const [args, message] of cases) {
    const r = vmExec(s.out, s.tmp, args);
    assert.equal(r.status, 2, args.join(" "));
    assert.match(r.stderr, message);
    assert.match(r.stderr, /^usage: vm-exec \[--quiet\] \[--initrd-console\] \[--shared=DIR\] SCRIPT \[-- EXTRA-QEMU-ARGS\.\.\.\]$/m);
  }
  assert.equal(vmExec(s.out, s.tmp, ["--help"]).status, 0);
  assert.deepEqual(leftovers(s.tmp), []);
});

test("vm-exec: a SIGTERM mid-run stops qemu and virtiofsd and removes the temporary directory", async (t) => {
  const s = setup(t);
  if (!s) return;
  const child = spawn(join(s.out, "bin", "vm-exec"), ["--quiet", "echo started; sleep 60"], { env: { ...process.env, TMPDIR: s.tmp }, stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  child.stdout.setEncoding("utf8").on("data", (d: string) => (out += d));
  const closed = new Promise<number | null>((resolve) => child.on("close", (code) => resolve(code)));
  await waitFor("the script to start", () => out.includes("started"), 60000);
  const [dir] = leftovers(s.tmp);
  assert.ok(dir && existsSync(join(s.tmp, dir)), "a temporary directory while running");
  child.kill("SIGTERM");
  assert.equal(await closed, 143);
  assert.deepEqual(leftovers(s.tmp), []);
  // Nothing of that run is left: no qemu or virtiofsd naming its directory.
  const ps = spawnSync("ps", ["-eo", "args"], { encoding: "utf8" }).stdout;
  assert.ok(!ps.includes(join(s.tmp, dir!)), `processes left:\n${ps.split("\n").filter((l) => l.includes(dir!)).join("\n")}`);
});
