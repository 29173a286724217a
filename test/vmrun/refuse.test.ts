/**
 * The agent refuses malformed frames, truncated streams and oversized argv with a clear ERROR frame,
 * and runs nothing: every would-be command is `touch MARKER`, and the marker must not appear. A
 * well-formed request with the same command proves that the marker does appear when it runs.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, rmSync } from "node:fs";
import { join } from "node:path";
import { argvPayload, buildAgent, frame, missingTools, parseAnswer, PREAMBLE, rawExchange, Server, sleep, T, tempDir, type Build } from "./support.js";

const skip = missingTools();
if (skip) console.log(`SKIP: vm-run refusal tests not run: ${skip} (install gcc and make)`);

describe("the agent refuses bad requests and runs nothing", { skip: skip ?? false }, () => {
  let b: Build;
  let dir: string;
  let sock: string;
  let marker: string;
  let agent: Server;
  let inetd: Server;
  let inetdSock: string;

  before(async () => {
    b = buildAgent();
    dir = tempDir("vmrun-refuse");
    sock = join(dir, "agent.sock");
    inetdSock = join(dir, "inetd.sock");
    marker = join(dir, "marker");
    agent = await new Server([b.bin("vmsilo-agent"), "--listen-unix", sock]).ready();
    inetd = await new Server([b.accept, inetdSock, b.bin("vmsilo-agent")]).ready();
  });
  after(() => {
    agent.stop();
    inetd.stop();
  });

  const touch = () => argvPayload(["touch", marker]);

  /** Send the bytes, expect the agent's preamble and one ERROR frame (code 1) matching `why`, and no marker. */
  async function refused(chunks: Buffer[], why: RegExp, opts: { end?: boolean; path?: string } = {}) {
    rmSync(marker, { force: true });
    const logBefore = [agent.stderr.length, inetd.stderr.length];
    const { data, closed } = await rawExchange(opts.path ?? sock, chunks, { end: opts.end ?? true, timeoutMs: 5000 });
    assert.ok(closed, "the agent closes the connection");
    const a = parseAnswer(data);
    assert.deepEqual(a.preamble, PREAMBLE);
    assert.equal(a.frames.length, 1, `one frame, got ${a.frames.map((f) => f.type.toString(16))}`);
    const f = a.frames[0]!;
    assert.equal(f.type, T.ERROR);
    assert.equal(f.payload[0], 1, "error code 1 (protocol)");
    assert.match(f.payload.subarray(1).toString(), why);
    await sleep(100); // a command, had one started, would have had time to touch the marker
    assert.ok(!existsSync(marker), "nothing was executed");
    const log = agent.stderr.slice(logBefore[0]) + inetd.stderr.slice(logBefore[1]);
    assert.match(log, /refused a request, nothing was run/);
  }

  test("control: a well-formed request does run `touch MARKER`", async () => {
    rmSync(marker, { force: true });
    const { data } = await rawExchange(sock, [Buffer.concat([PREAMBLE, frame(T.EXEC, touch()), frame(T.STDIN_EOF)])], { end: false, timeoutMs: 5000 });
    const a = parseAnswer(data);
    assert.deepEqual(a.frames.at(-1), { type: T.EXIT, payload: Buffer.from([0, 0]) });
    assert.ok(existsSync(marker));
  });

  test("a stream that is not the protocol (bad magic)", () =>
    refused([Buffer.concat([Buffer.from("XYZ\x01"), frame(T.EXEC, touch())])], /not a vm-run stream: expected the preamble "VMR"/));

  test("the original's line protocol is refused, not run through a shell", () =>
    refused([Buffer.from(`touch ${marker}\n`)], /not a vm-run stream/));

  test("an unknown protocol version", () =>
    refused([Buffer.concat([Buffer.from("VMR\x02"), frame(T.EXEC, touch())])], /unsupported protocol version 2 \(this side speaks version 1\)/));

  test("a first frame that is not EXEC", () =>
    refused([Buffer.concat([PREAMBLE, frame(T.STDIN, "data"), frame(T.EXEC, touch())])], /the first frame must be EXEC \(type 0x01\), got type 0x02/));

  test("an unknown first frame type", () => refused([Buffer.concat([PREAMBLE, frame(0x7f, touch())])], /got type 0x7f/));

  test("argv not NUL-terminated", () =>
    refused([Buffer.concat([PREAMBLE, frame(T.EXEC, touch().subarray(0, -1))])], /argv is not NUL-terminated/));

  test("an empty command name", () =>
    refused([Buffer.concat([PREAMBLE, frame(T.EXEC, Buffer.concat([Buffer.from([0]), touch()]))])], /argv\[0\] \(the command\) is empty/));

  test("an empty argv", () => refused([Buffer.concat([PREAMBLE, frame(T.EXEC)])], /empty argv/));

  test("an oversized argv is refused from its header, before its payload arrives", () =>
    refused([Buffer.concat([PREAMBLE, frame(T.EXEC, touch(), 2 * 1024 * 1024)])], /argv of 2097152 bytes exceeds the limit of 1048576 bytes/, { end: false }));

  test("an argv one byte over 1 MiB, sent in full", () => {
    const big = Buffer.concat([touch(), Buffer.alloc(1024 * 1024 - touch().length, 0x61), Buffer.from([0])]);
    assert.equal(big.length, 1024 * 1024 + 1);
    return refused([Buffer.concat([PREAMBLE, frame(T.EXEC, big)])], /argv of 1048577 bytes exceeds the limit of 1048576 bytes/);
  });

  test("more than 4096 arguments", () =>
    refused([Buffer.concat([PREAMBLE, frame(T.EXEC, argvPayload(["touch", marker, ...Array<string>(4095).fill("x")]))])], /argv has 4097 arguments; the limit is 4096/));

  test("a stream truncated inside the EXEC payload", () => {
    const whole = Buffer.concat([PREAMBLE, frame(T.EXEC, touch())]);
    return refused([whole.subarray(0, whole.length - 3)], new RegExp(`truncated request: the connection closed after ${whole.length - 3} of ${whole.length} bytes`));
  });

  test("a stream truncated inside the frame header", () =>
    refused([Buffer.concat([PREAMBLE, Buffer.from([T.EXEC, 0, 0])])], /truncated request: the connection closed after 7 of 9 bytes/));

  test("a stream truncated inside the preamble", () => refused([Buffer.from("VM")], /truncated request: the connection closed after 2 of 9 bytes/));

  test("a connection that closes without a byte", () => refused([], /truncated request: the connection closed after 0 of 9 bytes/));

  test("a request split into many small writes is fine (control for truncation)", async () => {
    rmSync(marker, { force: true });
    const whole = Buffer.concat([PREAMBLE, frame(T.EXEC, touch()), frame(T.STDIN_EOF)]);
    const chunks = [...whole].map((byte) => Buffer.from([byte]));
    const { data } = await rawExchange(sock, chunks, { end: false, pauseMs: 1, timeoutMs: 5000 });
    assert.deepEqual(parseAnswer(data).frames.at(-1), { type: T.EXIT, payload: Buffer.from([0, 0]) });
    assert.ok(existsSync(marker));
  });

  test("inetd mode (connection on stdin/stdout) refuses the same way", () =>
    refused([Buffer.concat([PREAMBLE, frame(T.EXEC, touch().subarray(0, -1))])], /argv is not NUL-terminated/, { path: inetdSock }));

  test("after the command started, a bad frame is a protocol error and the command is hung up", async () => {
    const { data, closed } = await rawExchange(sock, [Buffer.concat([PREAMBLE, frame(T.EXEC, argvPayload(["cat"])), frame(T.STDIN, "x"), frame(0x55, "?")])], { end: false, timeoutMs: 5000 });
    assert.ok(closed);
    const a = parseAnswer(data);
    const err = a.frames.find((f) => f.type === T.ERROR)!;
    assert.ok(err, "an ERROR frame");
    assert.match(err.payload.subarray(1).toString(), /protocol error: unknown frame type 0x55/);
    assert.ok(!a.frames.some((f) => f.type === T.EXIT), "no exit status after a protocol error");
  });

  test("an oversized STDIN frame after the command started is refused", async () => {
    const { data } = await rawExchange(sock, [Buffer.concat([PREAMBLE, frame(T.EXEC, argvPayload(["cat"])), frame(T.STDIN, "x", 65537)])], { end: false, timeoutMs: 5000 });
    const err = parseAnswer(data).frames.find((f) => f.type === T.ERROR)!;
    assert.match(err.payload.subarray(1).toString(), /STDIN frame of 65537 bytes \(allowed: 1 to 65536\)/);
  });
});
