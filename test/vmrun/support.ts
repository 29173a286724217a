/**
 * Support for the vm-run tests: build agent/ with make into a temporary directory, start the agent,
 * the Accept=yes stand-in and the proxy, run vmsilo-run, and talk the wire protocol by hand.
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { existsSync } from "node:fs";
import { createConnection } from "node:net";
import { join } from "node:path";
import { ROOT, have, tempDirRemovedAtExit } from "../support/harness.js";

/** Temporary directories of this test process, removed when it exits. */
export const tempDir = tempDirRemovedAtExit;

export const AGENT_SRC = join(ROOT, "agent");

export interface Build {
  dir: string;
  bin: (name: "vmsilo-run" | "vmsilo-agent" | "vmsilo-vsock-proxy") => string;
  accept: string;
}

/** Why the tests cannot run here, or null. */
export function missingTools(): string | null {
  const missing = ["make", "cc"].filter((t) => !have(t));
  return missing.length ? `${missing.join(" and ")} not found` : null;
}

/** `make all test-binaries` (and `static` when asked) into a fresh temporary directory. */
export function buildAgent(targets: string[] = ["all", "test-binaries"]): Build {
  const dir = tempDir("vmrun-build");
  const r = spawnSync("make", ["-s", "-C", AGENT_SRC, `BUILD=${dir}`, ...targets], { encoding: "utf8" });
  if (r.status !== 0) throw new Error(`make ${targets.join(" ")} failed (${r.status}):\n${r.stdout}\n${r.stderr}`);
  return { dir, bin: (name) => join(dir, name), accept: join(dir, "test", "vmsilo-test-accept") };
}

/** A long-running helper (agent, accept loop) that announces itself on stderr with "listening on". */
export class Server {
  readonly child: ChildProcess;
  stderr = "";
  constructor(argv: string[]) {
    this.child = spawn(argv[0]!, argv.slice(1), { stdio: ["ignore", "ignore", "pipe"] });
    this.child.stderr!.setEncoding("utf8");
    this.child.stderr!.on("data", (d: string) => (this.stderr += d));
  }
  async ready(timeoutMs = 5000): Promise<this> {
    const deadline = Date.now() + timeoutMs;
    while (!this.stderr.includes("listening on")) {
      if (this.child.exitCode !== null) throw new Error(`server exited ${this.child.exitCode}: ${this.stderr}`);
      if (Date.now() > deadline) throw new Error(`server not ready: ${this.stderr}`);
      await sleep(10);
    }
    return this;
  }
  stop(): void {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill("SIGTERM");
  }
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export interface Run {
  status: number | null;
  signal: NodeJS.Signals | null;
  stdout: Buffer;
  stderr: string;
  ms: number;
}

/** Run a program asynchronously (the event loop stays free for in-process fake servers). */
export async function run(argv: string[], input?: Buffer | string, opts: { timeoutMs?: number; onSpawn?: (c: ChildProcess) => void } = {}): Promise<Run> {
  const start = Date.now();
  const child = spawn(argv[0]!, argv.slice(1), { stdio: ["pipe", "pipe", "pipe"] });
  opts.onSpawn?.(child);
  const out: Buffer[] = [];
  let err = "";
  child.stdout!.on("data", (d: Buffer) => out.push(d));
  child.stderr!.setEncoding("utf8");
  child.stderr!.on("data", (d: string) => (err += d));
  child.stdin!.on("error", () => {}); // the command may exit without reading all of it
  if (input !== undefined) child.stdin!.end(input);
  else child.stdin!.end();
  const timer = setTimeout(() => child.kill("SIGKILL"), opts.timeoutMs ?? 30000);
  const [status, signal] = (await once(child, "close")) as [number | null, NodeJS.Signals | null];
  clearTimeout(timer);
  return { status, signal, stdout: Buffer.concat(out), stderr: err, ms: Date.now() - start };
}

// ---- the wire protocol, by hand ----

export const PREAMBLE = Buffer.from([0x56, 0x4d, 0x52, 0x01]);
export const T = { EXEC: 0x01, STDIN: 0x02, STDIN_EOF: 0x03, STDOUT: 0x81, STDERR: 0x82, EXIT: 0x83, ERROR: 0x84 } as const;

export function frame(type: number, payload: Buffer | string = Buffer.alloc(0), declaredLength?: number): Buffer {
  const p = typeof payload === "string" ? Buffer.from(payload, "binary") : payload;
  const h = Buffer.alloc(5);
  h[0] = type;
  h.writeUInt32BE(declaredLength ?? p.length, 1);
  return Buffer.concat([h, p]);
}

export const argvPayload = (argv: string[]) => Buffer.concat(argv.map((a) => Buffer.concat([Buffer.from(a), Buffer.from([0])])));

export interface Frame {
  type: number;
  payload: Buffer;
}

/** Split an agent's answer into its preamble and frames (throws on a malformed answer). */
export function parseAnswer(data: Buffer): { preamble: Buffer; frames: Frame[]; rest: Buffer } {
  const preamble = data.subarray(0, 4);
  const frames: Frame[] = [];
  let off = 4;
  while (off + 5 <= data.length) {
    const len = data.readUInt32BE(off + 1);
    if (off + 5 + len > data.length) break;
    frames.push({ type: data[off]!, payload: data.subarray(off + 5, off + 5 + len) });
    off += 5 + len;
  }
  return { preamble, frames, rest: data.subarray(off) };
}

/**
 * Connect to a unix socket, send `chunks` (pausing between them), optionally half-close, and collect
 * everything until the peer closes (or `timeoutMs`).
 */
export async function rawExchange(path: string, chunks: Buffer[], opts: { end?: boolean; pauseMs?: number; timeoutMs?: number } = {}): Promise<{ data: Buffer; closed: boolean }> {
  const sock = createConnection(path);
  await once(sock, "connect");
  const got: Buffer[] = [];
  sock.on("data", (d: Buffer) => got.push(d));
  sock.on("error", () => {});
  let closed = false;
  const done = once(sock, "close").then(() => (closed = true));
  for (const c of chunks) {
    if (sock.destroyed) break;
    sock.write(c);
    if (opts.pauseMs) await sleep(opts.pauseMs);
  }
  if (opts.end ?? true) sock.end();
  await Promise.race([done, sleep(opts.timeoutMs ?? 10000)]);
  sock.destroy();
  return { data: Buffer.concat(got), closed };
}

export { existsSync };
