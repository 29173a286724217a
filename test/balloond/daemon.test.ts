/**
 * vmsilo-balloond against a crosvm control socket (agent/test/vmsilo-test-crosvm-control.c: crosvm's
 * wire format, SOCK_SEQPACKET with one JSON VmRequest per packet): one poll (`--once`) with stand-in
 * /proc files. It asks for statistics, sets the balloon to what the guest has beyond the bias, never
 * past the floor; a hostile VMM's answers (oversized, not JSON, a balloon larger than the VM) move
 * nothing; bad options and a manifest vmsilo-gen would not write are refused.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { tempDir } from "../support/harness.js";
import { buildAgent } from "../vmrun/support.js";

const MIB = 1024 * 1024;
const build = buildAgent(["all", "test-binaries"]);
const daemon = join(build.dir, "vmsilo-balloond");

function setup(floor: number, memoryMiB = 1024) {
  const dir = tempDir("balloond");
  const socket = join(dir, "control.socket");
  const manifest = join(dir, "manifest.json");
  writeFileSync(manifest, JSON.stringify({ vms: { cv: { id: 5, balloon: { control: "crosvm", socket, memory: memoryMiB, floor } }, off: { balloon: null } } }));
  writeFileSync(join(dir, "meminfo"), "MemTotal:       16000000 kB\nMemFree:         7000000 kB\nMemAvailable:    8000000 kB\n");
  writeFileSync(join(dir, "psi"), "some avg10=0.00 avg60=0.00 avg300=0.00 total=0\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=0\n");
  const once = (...extra: string[]) =>
    spawnSync(daemon, ["--manifest", manifest, "--meminfo-path", join(dir, "meminfo"), "--psi-path", join(dir, "psi"), "--guest-available-bias", "256M", "--critical-guest-available", "96M", "--once", "--log-level", "debug", ...extra], { encoding: "utf8", timeout: 10000 });
  return { dir, socket, manifest, once };
}

/** The control socket's peer; `out()` is every request it got, one per line. */
async function peer(socket: string, memory: number, avail: number, mode = "normal") {
  let out = "";
  let err = "";
  const child = spawn(join(build.dir, "test", "vmsilo-test-crosvm-control"), [socket, String(memory), String(avail), mode], { stdio: ["ignore", "pipe", "pipe"] });
  child.stdout.setEncoding("utf8").on("data", (d: string) => (out += d));
  child.stderr.setEncoding("utf8").on("data", (d: string) => (err += d));
  const deadline = Date.now() + 5000;
  while (!err.includes("listening on")) {
    if (Date.now() > deadline || child.exitCode !== null) throw new Error(`the control socket's peer did not start: ${err}`);
    await new Promise((r) => setTimeout(r, 10));
  }
  // Its last line may still be in the pipe when the daemon has exited.
  const settle = () => new Promise((r) => setTimeout(r, 100));
  return { out: () => out, settle, stop: () => child.kill() };
}

test("crosvm: stats, then the balloon set to the guest's memory beyond the bias, in crosvm's own JSON", async () => {
  const { socket, once } = setup(256);
  const p = await peer(socket, 1024 * MIB, 800 * MIB);
  try {
    const r = once();
    await p.settle();
    assert.equal(r.status, 0, r.stderr);
    assert.match(p.out(), /^\{"BalloonCommand":"Stats"\}$/m);
    assert.match(p.out(), new RegExp(`^\\{"BalloonCommand":\\{"Adjust":\\{"num_bytes":${544 * MIB},"wait_for_success":false\\}\\}\\}$`, "m"));
    assert.match(r.stderr, /cv: balloon 0 -> 544 MiB \(inflate/);
  } finally {
    p.stop();
  }
});

test("crosvm: never past the floor", async () => {
  const { socket, once } = setup(900);
  const p = await peer(socket, 1024 * MIB, 800 * MIB);
  try {
    const r = once();
    await p.settle();
    assert.equal(r.status, 0, r.stderr);
    assert.match(p.out(), new RegExp(`"num_bytes":${124 * MIB},`));
  } finally {
    p.stop();
  }
});

for (const [mode, said] of [["huge", /more than 262144: ignored/], ["garbage", /not JSON within the limits/], ["lie", /not answering|cv: running/]] as const) {
  test(`crosvm: a hostile VMM's answer (${mode}) moves no balloon`, async () => {
    const { socket, once } = setup(256);
    const p = await peer(socket, 1024 * MIB, 800 * MIB, mode);
    try {
      const r = once();
      await p.settle();
      assert.equal(r.status, 0, r.stderr);
      assert.match(p.out(), /"Stats"/);
      assert.doesNotMatch(p.out(), /Adjust/, r.stderr);
      if (mode !== "lie") assert.match(r.stderr, said);
    } finally {
      p.stop();
    }
  });
}

test("refused: bad option values (exit 2, a usage line) and a manifest entry vmsilo-gen would not write (exit 1)", () => {
  const { manifest, dir, once } = setup(256);
  for (const bad of [["--poll-interval", "2 s"], ["--psi-ceiling", "0"], ["--guest-available-bias", "10X"], ["--bogus", "x"], ["--min-poll-interval", "5s"]]) {
    const r = once(...bad);
    assert.equal(r.status, 2, `${bad.join(" ")}: ${r.stderr}`);
    assert.match(r.stderr, /usage: vmsilo-balloond|must not be longer/);
  }
  writeFileSync(manifest, JSON.stringify({ vms: { cv: { balloon: { control: "crosvm", socket: join(dir, "s"), memory: 100, floor: 200 } } } }));
  let r = once();
  assert.equal(r.status, 1);
  assert.match(r.stderr, /not as vmsilo-gen writes it/);
  writeFileSync(manifest, '{"vms": {"cv": {"balloon": {"control": "xen"');
  r = once();
  assert.equal(r.status, 1);
  assert.match(r.stderr, /not JSON within the limits/);
});
