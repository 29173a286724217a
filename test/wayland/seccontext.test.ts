/**
 * vmsilo-wayland-seccontext against a compositor that implements wp_security_context_v1
 * (test/wayland/test-compositor.c on libwayland-server; Debian 12 has no compositor with the
 * protocol): the socket it creates, a client connecting through it inside the context with the VM's
 * identity, readiness on $NOTIFY_SOCKET, the context gone when it stops, and its failures: no
 * protocol, no compositor, the compositor gone, bad arguments. Its resident memory is measured
 * against the budget in agent/README.md.
 */
import { test, type TestContext } from "node:test";
import assert from "node:assert/strict";
import { spawnSync, type SpawnSyncReturns } from "node:child_process";
import { existsSync, lstatSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { Proc, have, skip, tempDir, waitFor } from "../e2e/support.js";
import { ROOT } from "../support/harness.js";
import { waylandTools, type WaylandTools } from "./support.js";

const APP_ID = "vmsilo:work:#3465a4";
const INSTANCE_ID = "work";
/** agent/README.md states it; the helper holds one Wayland connection and nothing else. */
const RSS_BUDGET_KIB = Number(/vmsilo-wayland-seccontext[^\n]*?(\d+) KiB/.exec(readFileSync(join(ROOT, "agent", "README.md"), "utf8"))?.[1]);
const WAIT_MS = 20_000;

let tools: WaylandTools | string | undefined;
function get(t: TestContext): WaylandTools | null {
  tools ??= waylandTools();
  if (typeof tools === "string") {
    skip(t, tools);
    return null;
  }
  return tools;
}

async function compositor(w: WaylandTools, dir: string, extra: string[] = []): Promise<{ proc: Proc; socket: string }> {
  const socket = join(dir, "wayland-0");
  const proc = new Proc([w.compositor, "--socket", socket, ...extra]);
  await waitFor("the test compositor", () => proc.out.includes(`listening ${socket}\n`) || !proc.running, WAIT_MS);
  assert.ok(proc.running, `the test compositor exited: ${proc.err}`);
  return { proc, socket };
}

function helperArgs(socketPath: string, wayland: string): string[] {
  return ["--wayland-socket", wayland, "--app-id", APP_ID, "--instance-id", INSTANCE_ID, "--socket-path", socketPath];
}

/** The test client through `display`: its pid and the globals it was offered. */
function connect(w: WaylandTools, display: string): { pid: string; globals: string[] } {
  const r = spawnSync(w.client, [], { encoding: "utf8", env: { PATH: process.env.PATH, WAYLAND_DISPLAY: display, XDG_RUNTIME_DIR: "/nonexistent" }, timeout: WAIT_MS });
  assert.equal(r.status, 0, `the test client failed: ${r.stderr}`);
  const pid = /^pid (\d+)$/m.exec(r.stdout)?.[1];
  assert.ok(pid, r.stdout);
  return { pid, globals: [...r.stdout.matchAll(/^global (\S+)$/gm)].map((m) => m[1]!) };
}

/** The compositor reports `line` (its output arrives while we wait: spawnSync held the loop). */
async function seen(comp: Proc, line: string): Promise<void> {
  await waitFor(`the compositor to report ${JSON.stringify(line)} (it said: ${JSON.stringify(comp.out)})`, () => comp.out.includes(line), WAIT_MS);
}

function rssKiB(pid: number): number {
  return Number(/^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1]);
}

test("a client through the helper's socket is inside a security context with the VM's identity; readiness, memory, stop", async (t) => {
  const w = get(t);
  if (!w) return;
  if (!have("socat")) return skip(t, "socat not installed (apt-get install socat): it receives the readiness datagram");
  const dir = tempDir("seccontext");
  const { proc: comp, socket } = await compositor(w, dir);
  // A stand-in for systemd's notification socket: socat prints each datagram it receives.
  const notifySocket = join(dir, "notify");
  const notify = new Proc(["socat", "-u", `UNIX-RECV:${notifySocket}`, "STDOUT"]);
  const ctxSocket = join(dir, "seccontext", "wayland-seccontext.socket");
  spawnSync("mkdir", [join(dir, "seccontext")]);
  let helper: Proc | undefined;
  try {
    await waitFor("socat's socket", () => existsSync(notifySocket), WAIT_MS);
    helper = new Proc([w.helper, ...helperArgs(ctxSocket, socket)], { env: { PATH: process.env.PATH, NOTIFY_SOCKET: notifySocket } });
    await waitFor("READY=1", () => notify.out.includes("READY=1\n") || !helper!.running, WAIT_MS);
    assert.ok(helper.running, `the helper exited: ${helper.err}`);
    assert.match(notify.out, /^READY=1\nSTATUS=Security context created\n/);

    // Ready means committed, and the socket is there for the GPU backend alone (its user).
    assert.ok(comp.out.includes(`context vmsilo ${APP_ID} ${INSTANCE_ID}\n`), comp.out);
    const st = lstatSync(ctxSocket);
    assert.ok(st.isSocket());
    assert.equal(st.mode & 0o777, 0o600);
    assert.equal(st.uid, process.getuid?.());

    // Through the helper's socket: confined with the VM's identity, and no nested context.
    const inside = connect(w, ctxSocket);
    await seen(comp, `client ${inside.pid} confined vmsilo ${APP_ID} ${INSTANCE_ID}\n`);
    assert.ok(inside.globals.includes("wl_shm"), inside.globals.join(" "));
    assert.ok(!inside.globals.includes("wp_security_context_manager_v1"), "a confined client is offered the security-context manager");
    // The compositor's own socket is not: the difference is the context's.
    const outside = connect(w, socket);
    await seen(comp, `client ${outside.pid} unconfined\n`);
    assert.ok(outside.globals.includes("wp_security_context_manager_v1"));

    const rss = rssKiB(helper.child.pid!);
    console.log(`vmsilo-wayland-seccontext resident: ${rss} KiB (budget ${RSS_BUDGET_KIB} KiB)`);
    assert.ok(RSS_BUDGET_KIB > 0, "agent/README.md states no memory budget for vmsilo-wayland-seccontext");
    assert.ok(rss <= RSS_BUDGET_KIB, `resident ${rss} KiB, over the ${RSS_BUDGET_KIB} KiB budget`);

    // SIGTERM: status 0, the socket removed, and the compositor stops serving the context.
    helper.kill("SIGTERM");
    assert.deepEqual(await helper.exited, { code: 0, signal: null });
    assert.ok(!existsSync(ctxSocket), "the socket outlived the helper");
    await waitFor("context-closed", () => comp.out.includes(`context-closed ${APP_ID}\n`), WAIT_MS);
    assert.match(helper.err, /security context created: sandbox engine vmsilo, app id vmsilo:work:#3465a4, instance id work/);
  } finally {
    await helper?.stop();
    await notify.stop();
    await comp.stop();
  }
});

test("the helper ends with status 1 and says so when the compositor goes away", async (t) => {
  const w = get(t);
  if (!w) return;
  const dir = tempDir("seccontext-gone");
  const { proc: comp, socket } = await compositor(w, dir);
  const ctxSocket = join(dir, "ctx.socket");
  const helper = new Proc([w.helper, ...helperArgs(ctxSocket, socket)]);
  try {
    await waitFor("the context", () => comp.out.includes(`context vmsilo ${APP_ID}`) || !helper.running, WAIT_MS);
    await waitFor("the helper's socket", () => existsSync(ctxSocket) || !helper.running, WAIT_MS);
    await comp.stop();
    assert.deepEqual(await helper.exited, { code: 1, signal: null });
    assert.match(helper.err, /the security context ended: the connection to the compositor failed/);
    assert.ok(!existsSync(ctxSocket));
  } finally {
    await helper.stop();
    await comp.stop();
  }
});

test("without the protocol in the compositor: status 3, a message naming it, no socket", async (t) => {
  const w = get(t);
  if (!w) return;
  const dir = tempDir("seccontext-none");
  const { proc: comp, socket } = await compositor(w, dir, ["--no-security-context"]);
  try {
    const ctxSocket = join(dir, "ctx.socket");
    const r = spawnSync(w.helper, helperArgs(ctxSocket, socket), { encoding: "utf8", timeout: WAIT_MS });
    assert.equal(r.status, 3, r.stderr);
    assert.match(r.stderr, /does not implement the Wayland security-context protocol \(no wp_security_context_manager_v1 global\)/);
    assert.ok(!existsSync(ctxSocket));
    assert.ok(!comp.out.includes("context "), comp.out);
  } finally {
    await comp.stop();
  }
});

test("without a compositor: status 1 naming the socket it tried", (t) => {
  const w = get(t);
  if (!w) return;
  const dir = tempDir("seccontext-nocomp");
  const r = spawnSync(w.helper, helperArgs(join(dir, "ctx.socket"), join(dir, "wayland-0")), { encoding: "utf8", timeout: WAIT_MS });
  assert.equal(r.status, 1);
  assert.match(r.stderr, new RegExp(`cannot connect to the Wayland compositor at ${join(dir, "wayland-0")}`));
  assert.ok(!existsSync(join(dir, "ctx.socket")));
});

test("bad arguments: status 2 with the usage line, before connecting", (t) => {
  const w = get(t);
  if (!w) return;
  const ok = ["--app-id", APP_ID, "--instance-id", INSTANCE_ID, "--socket-path", "/run/x.socket"];
  const cases: [string[], RegExp][] = [
    [[], /--socket-path, --app-id and --instance-id are required/],
    [[...ok, "--frobnicate"], /unknown argument: --frobnicate/],
    [[...ok, "--app-id"], /missing value of --app-id/],
    [[...ok, "--app-id", "x"], /given twice: --app-id/],
    [["--app-id", "has space", "--instance-id", "i", "--socket-path", "/s"], /--app-id must be 1-255 printable ASCII/],
    [["--app-id", "a", "--instance-id", "x".repeat(256), "--socket-path", "/s"], /--instance-id must be 1-255 printable ASCII/],
    [["--app-id", "a", "--instance-id", "i", "--socket-path", "rel.socket"], /--socket-path must be absolute/],
  ];
  for (const [args, why] of cases) {
    const r: SpawnSyncReturns<string> = spawnSync(w.helper, args, { encoding: "utf8", env: { WAYLAND_DISPLAY: "/nonexistent" } });
    assert.equal(r.status, 2, `${args.join(" ")}: ${r.stderr}`);
    assert.match(r.stderr, why);
    assert.match(r.stderr, /^usage: vmsilo-wayland-seccontext --socket-path PATH --app-id ID --instance-id ID \[--wayland-socket SOCKET\]$/m);
  }
});
