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
import http from "node:http";
import { createServer } from "node:net";
import { join } from "node:path";
import { tempDir } from "../support/harness.js";
import { buildAgent } from "../vmrun/support.js";

const MIB = 1024 * 1024;
/** The daemon's arguments of the latest setup() (spawnAsync runs them). */
let lastArgs: string[] | undefined;
const build = buildAgent(["all", "test-binaries"]);
const daemon = join(build.dir, "vmsilo-balloond");

function setup(floor: number, memoryMiB = 1024) {
  const dir = tempDir("balloond");
  const socket = join(dir, "control.socket");
  const manifest = join(dir, "manifest.json");
  writeFileSync(manifest, JSON.stringify({ vms: { cv: { id: 5, balloon: { control: "crosvm", socket, memory: memoryMiB, floor } }, off: { balloon: null } } }));
  writeFileSync(join(dir, "meminfo"), "MemTotal:       16000000 kB\nMemFree:         7000000 kB\nMemAvailable:    8000000 kB\n");
  writeFileSync(join(dir, "psi"), "some avg10=0.00 avg60=0.00 avg300=0.00 total=0\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=0\n");
  const args = (extra: string[]) => ["--manifest", manifest, "--meminfo-path", join(dir, "meminfo"), "--psi-path", join(dir, "psi"), "--guest-available-bias", "256M", "--critical-guest-available", "96M", "--once", "--log-level", "debug", ...extra];
  const once = (...extra: string[]) => {
    lastArgs = args(extra);
    return spawnSync(daemon, lastArgs, { encoding: "utf8", timeout: 10000 });
  };
  lastArgs = args([]);
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

/** A QMP server (stream socket, lines of JSON): the greeting, then answers as qemu gives them; `hostile` sends a line without end instead of query-balloon's answer. */
function qmpPeer(socket: string, hostile: boolean) {
  const got: string[] = [];
  const server = createServer((c) => {
    c.write('{"QMP": {"version": {"qemu": {"micro": 0, "minor": 2, "major": 7}}, "capabilities": []}}\r\n');
    let buf = "";
    c.on("data", (d) => {
      buf += d;
      for (let i = buf.indexOf("\n"); i >= 0; i = buf.indexOf("\n")) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 1);
        got.push(line);
        const cmd = JSON.parse(line).execute as string;
        if (cmd === "query-balloon" && hostile) c.write("{".padEnd(300 * 1024, " "));
        else if (cmd === "query-balloon") c.write('{"event": "BALLOON_CHANGE", "data": {"actual": 1073741824}, "timestamp": {"seconds": 1, "microseconds": 2}}\r\n{"return": {"actual": 1073741824}}\r\n');
        else if (cmd === "qom-get") c.write('{"return": {"stats": {"stat-available-memory": 838860800, "stat-free-memory": 18446744073709551615}, "last-update": 1700000001}}\r\n');
        else c.write('{"return": {}}\r\n');
      }
    });
    c.on("error", () => {});
  });
  return new Promise<{ got: string[]; close(): void }>((resolve) => server.listen(socket, () => resolve({ got, close: () => server.close() })));
}

test("qemu: QMP capabilities, the guest's statistics every second, then the balloon's target as the guest's new size; an endless line moves nothing", async () => {
  for (const hostile of [false, true]) {
    const { dir, manifest } = setup(256);
    const socket = join(dir, "qmp.socket");
    writeFileSync(manifest, JSON.stringify({ vms: { qe: { balloon: { control: "qmp", socket, memory: 1024, floor: 256 } } } }));
    const p = await qmpPeer(socket, hostile);
    try {
      const res = await spawnAsync();
      assert.equal(res.status, 0, res.stderr);
      assert.deepEqual(p.got.slice(0, 2).map((l) => JSON.parse(l).execute), ["qmp_capabilities", "qom-set"]);
      assert.equal(JSON.parse(p.got[1]!).arguments.property, "guest-stats-polling-interval");
      if (hostile) {
        assert.ok(!p.got.some((l) => l.includes('"balloon"')), p.got.join("\n"));
        assert.match(res.stderr, /a QMP line longer than 262144 bytes|not answering|QMP sent a line/);
      } else {
        // 800 MiB available, 256 MiB bias: a balloon of 544 MiB, so the guest keeps 480 MiB.
        assert.ok(p.got.includes(`{"execute":"balloon","arguments":{"value":${480 * MIB}}}`), p.got.join("\n"));
      }
    } finally {
      p.close();
    }
  }
});

test("cloud-hypervisor: vm.info read, the balloon grown only when the host is critical (no guest statistics), through vm.resize", async () => {
  const { dir, manifest } = setup(256, 512);
  const socket = join(dir, "api.socket");
  writeFileSync(manifest, JSON.stringify({ vms: { ch: { balloon: { control: "cloud-hypervisor", socket, memory: 512, floor: 128 } } } }));
  const got: string[] = [];
  const server = http.createServer((req, res) => {
    let body = "";
    req.on("data", (d) => (body += d));
    req.on("end", () => {
      got.push(`${req.method} ${req.url} ${body}`);
      const text = req.url === "/api/v1/vm.info" ? JSON.stringify({ config: { memory: { size: 512 * MIB }, balloon: { size: 0 } }, state: "Running", memory_actual_size: 512 * MIB }) : "";
      res.writeHead(req.url === "/api/v1/vm.info" ? 200 : 204, { "content-length": Buffer.byteLength(text) }).end(text);
    });
  });
  await new Promise<void>((r) => server.listen(socket, () => r()));
  try {
    let res = await spawnAsync();
    assert.equal(res.status, 0, res.stderr);
    assert.deepEqual(got, ["GET /api/v1/vm.info "], "calm host: read, nothing moved");
    writeFileSync(join(dir, "psi"), "some avg10=60.00 avg60=30.00 avg300=10.00 total=9\nfull avg10=40.00 avg60=20.00 avg300=5.00 total=6\n");
    res = await spawnAsync();
    assert.equal(res.status, 0, res.stderr);
    assert.equal(got.at(-1), `PUT /api/v1/vm.resize {"desired_balloon":${64 * MIB}}`);
  } finally {
    server.close();
  }
});

/** The daemon with the latest setup()'s arguments; spawnSync would block the event loop that serves the peers above. */
function spawnAsync(): Promise<{ status: number | null; stderr: string }> {
  return new Promise((resolve) => {
    const args = lastArgs!;
    const c = spawn(daemon, args, { stdio: ["ignore", "ignore", "pipe"] });
    let stderr = "";
    c.stderr.setEncoding("utf8").on("data", (d: string) => (stderr += d));
    c.on("close", (status) => resolve({ status, stderr }));
  });
}
