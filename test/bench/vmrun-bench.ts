/**
 * vm-run benchmark: the host-side cost of `vm-run <vm> true` over the local stand-in transport, p50
 * and p99 over BENCH_CALLS calls (default 300), against the original's `echo "$@" | socat` path
 * measured in the same run, calls interleaved so that both see the same machine.
 *
 *   npx tsc -p . && node dist/test/bench/vmrun-bench.js          (BENCH_STATIC=1: static binaries)
 *
 * Paths (each call is one process spawned from here, like a shell would):
 *   baseline        /bin/true, spawned the same way (the cost of spawning anything)
 *   as generated    bin/vm-run (a link to the C client) → command socket → Accept=yes stand-in (fork +
 *                   exec of vmsilo-vsock-proxy per connection, like systemd) → vmsilo-agent --listen-unix
 *                   (fork per connection) → fork + execvp true. The goal line is this path's.
 *   Accept=no       vm-run → vmsilo-vsock-proxy --listen-unix (one fork per connection, no exec)
 *   no proxy        vmsilo-run straight to the agent (what the proxy hop costs)
 *   socket-activate as generated, with systemd-socket-activate --inetd doing the accepts (when installed)
 *   original        bash wrapper (ORIGINAL B20) → echo "$@" | socat - UNIX-CONNECT → socat UNIX-LISTEN,fork
 *                   EXEC of a sh that reads the line and evals it (the guest side the original implies)
 * The agent side is the same for all new paths; in a guest it is started per connection by systemd
 * (Accept=yes) or forked by a long-running agent (--listen-systemd, Accept=no); neither is measured here.
 *
 * Needs gcc, make and socat (Debian: gcc make libc6-dev socat). Goal: vm-run p50 ≤ 5 ms.
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { chmodSync, existsSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { have, ROOT } from "../support/harness.js";

const CALLS = Number(process.env.BENCH_CALLS ?? 300);
const WARMUP = 20;
const GOAL_MS = 5;

function die(msg: string): never {
  console.error(`vmrun-bench: ${msg}`);
  process.exit(1);
}

for (const t of ["make", "cc", "bash"]) if (!have(t)) die(`${t} not found`);
const haveSocat = have("socat");
if (!haveSocat) console.log("SKIP: socat not found (apt-get install socat): the original's path is not measured");

const parent = existsSync("/dev/shm") ? "/dev/shm" : "/tmp";
const dir = mkdtempSync(join(parent, "vmsilo-vmrun-bench-"));
const build = join(dir, "build");
// BENCH_STATIC=1: the statically linked programs (no dynamic loader at each exec).
const STATIC = process.env.BENCH_STATIC === "1";
const mk = spawnSync("make", ["-s", "-C", join(ROOT, "agent"), `BUILD=${build}`, "all", "test-binaries", ...(STATIC ? ["static"] : [])], { encoding: "utf8" });
if (mk.status !== 0) die(`make failed:\n${mk.stderr}`);
const bin = (n: string) => (STATIC && n.startsWith("vmsilo-") ? join(build, "static", n) : join(build, n));

const children: ChildProcess[] = [];
process.on("exit", () => {
  children.forEach((c) => c.kill("SIGTERM"));
  rmSync(dir, { recursive: true, force: true });
});
for (const sig of ["SIGINT", "SIGTERM"] as const) process.on(sig, () => process.exit(130));

async function start(argv: string[], socket: string, quiet = false): Promise<void> {
  const c = spawn(argv[0]!, argv.slice(1), { stdio: ["ignore", "ignore", quiet ? "ignore" : "pipe"] });
  children.push(c);
  const deadline = Date.now() + 5000;
  while (!existsSync(socket)) {
    if (Date.now() > deadline || c.exitCode !== null) die(`${argv.join(" ")} did not create ${socket}`);
    await new Promise((r) => setTimeout(r, 10));
  }
  await new Promise((r) => setTimeout(r, 50));
}

function script(path: string, body: string): string {
  writeFileSync(path, body);
  chmodSync(path, 0o755);
  return path;
}

const run = join(dir, "run");
for (const vm of ["work", "fork", "orig", "sa"]) mkdirSync(join(run, vm), { recursive: true });
const agentSock = join(dir, "agent.sock");
await start([bin("vmsilo-agent"), "--listen-unix", agentSock], agentSock);
await start([bin("test/vmsilo-test-accept"), join(run, "work", "command.socket"), bin("vmsilo-vsock-proxy"), "--unix", agentSock], join(run, "work", "command.socket"));
await start([bin("vmsilo-vsock-proxy"), "--listen-unix", join(run, "fork", "command.socket"), "--unix", agentSock], join(run, "fork", "command.socket"));
// vm-run as the generator writes it: a link to vmsilo-tools' vm-run (the C client, which checks the
// name and finds $VMSILO_RUN_DIR/<vm>/command.socket).
const vmRun = join(dir, "c", "vm-run");
mkdirSync(join(dir, "c"));
symlinkSync(bin("vmsilo-run"), vmRun);

const paths: { name: string; argv: string[] }[] = [
  { name: "baseline (/bin/true)", argv: ["/bin/true"] },
  { name: "vm-run, Accept=yes proxy (as generated)", argv: [vmRun, "work", "true"] },
  { name: "vm-run, Accept=no forking proxy", argv: [vmRun, "fork", "true"] },
  { name: "vmsilo-run, no proxy", argv: [bin("vmsilo-run"), agentSock, "true"] },
];

if (have("systemd-socket-activate")) {
  const sa = join(run, "sa", "command.socket");
  await start(["systemd-socket-activate", "--inetd", "-a", "-l", sa, bin("vmsilo-vsock-proxy"), "--unix", agentSock], sa, true);
  paths.push({ name: "vm-run, systemd-socket-activate", argv: [vmRun, "sa", "true"] });
}

if (haveSocat) {
  // The guest side the original implies: a line, run by a shell.
  const origAgent = script(join(dir, "orig-agent.sh"), '#!/bin/sh\nread -r line\neval "$line"\n');
  const origSock = join(run, "orig", "command.socket");
  await start(["socat", `UNIX-LISTEN:${origSock},fork`, `EXEC:${origAgent}`], origSock);
  // ORIGINAL B20, verbatim apart from the paths.
  const origRun = script(
    join(dir, "vm-run-original"),
    `#!/usr/bin/env bash
if [ $# -lt 2 ]; then echo "Usage: vm-run <vm-name> <command> [args...]" >&2; exit 1; fi
VM_NAME="$1"; shift
SOCKET="${run}/$VM_NAME/command.socket"
if [ ! -S "$SOCKET" ]; then
  echo "Unknown VM or socket not active: $VM_NAME" >&2
  echo "Available VMs: orig" >&2; exit 1; fi
echo "$@" | socat - UNIX-CONNECT:"$SOCKET"
`,
  );
  paths.push({ name: "original: echo | socat → socat EXEC sh", argv: [origRun, "orig", "true"] });
}

const env = { ...process.env, VMSILO_RUN_DIR: run };

// Correctness first: every path runs the command (an echo), so we time real round trips.
for (const p of paths.slice(1)) {
  const r = spawnSync(p.argv[0]!, [...p.argv.slice(1, -1), "echo", "ok"], { encoding: "utf8", env });
  if (r.status !== 0 || r.stdout !== "ok\n") die(`${p.name}: expected "ok", got status ${r.status}, stdout ${JSON.stringify(r.stdout)}, stderr ${r.stderr}`);
}

const samples = paths.map(() => [] as number[]);
for (let i = 0; i < WARMUP + CALLS; i++) {
  paths.forEach((p, k) => {
    const t0 = process.hrtime.bigint();
    const r = spawnSync(p.argv[0]!, p.argv.slice(1), { stdio: ["ignore", "pipe", "pipe"], env });
    const ms = Number(process.hrtime.bigint() - t0) / 1e6;
    if (r.status !== 0) die(`${p.name}: status ${r.status}: ${r.stderr}`);
    if (i >= WARMUP) samples[k]!.push(ms);
  });
}

const q = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)]!;
};
const f = (x: number) => x.toFixed(2).padStart(7);
const base = q(samples[0]!, 50);
console.log(`\n${CALLS} calls per path (after ${WARMUP} warm-up calls), interleaved; milliseconds per call, spawn included`);
console.log(`${"path".padEnd(48)}    p50     p99    mean  p50-baseline`);
paths.forEach((p, k) => {
  const xs = samples[k]!;
  const mean = xs.reduce((a, b) => a + b, 0) / xs.length;
  console.log(`${p.name.padEnd(48)}${f(q(xs, 50))} ${f(q(xs, 99))} ${f(mean)} ${k ? f(q(xs, 50) - base) : "      -"}`);
});
const orig = paths.findIndex((p) => p.name.startsWith("original"));
console.log("");
for (const k of [1]) {
  const p50 = q(samples[k]!, 50);
  const vsOrig = orig > 0 ? `, ${(p50 / q(samples[orig]!, 50)).toFixed(2)} × the original's p50` : "";
  console.log(`goal p50 ≤ ${GOAL_MS} ms: ${paths[k]!.name}: ${p50.toFixed(2)} ms (${(p50 - base).toFixed(2)} ms over the baseline spawn)${vsOrig}: ${p50 <= GOAL_MS ? "met" : "NOT met"}`);
}
process.exit(0);
