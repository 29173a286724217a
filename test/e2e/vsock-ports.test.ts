/**
 * Guest ports only for their owner, inside a real guest (TCG): the guest agent on vsock refuses a
 * peer whose source port is unprivileged (≥ 1024: on the host any local user can bind one) and
 * accepts one on a privileged port, which on the host only the VM's proxy (CAP_NET_BIND_SERVICE)
 * binds. There is no host↔guest vsock here, so both ends are in the guest, over the kernel's
 * loopback transport (vsock_loopback, CID 1); the test drives the guest through its serial agent
 * (bootAgentGuest). The agent listens as systemd gives it the socket (--listen-systemd, through
 * vmsilo-test-vsock's stand-in); the proxy is the real vmsilo-vsock-proxy.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { ROOT } from "../support/harness.js";
import { argvPayload, frame, parseAnswer, PREAMBLE, T } from "../vmrun/support.js";
import { bootAgentGuest, skip, tempDir, testGuest } from "./support.js";

test("in a TCG guest over vsock_loopback: a peer on an unprivileged port is refused, a privileged port and the proxy are let in", async (t) => {
  const g = testGuest();
  if (typeof g === "string") return skip(t, `vsock ports: ${g}`);
  const build = tempDir("vsock-ports-client");
  const make = spawnSync("make", ["-s", "-C", join(ROOT, "agent"), `BUILD=${build}`, "all"], { encoding: "utf8" });
  assert.equal(make.status, 0, make.stderr);
  const guest = await bootAgentGuest();
  try {
    /** A command in the guest, as root, through its serial agent. */
    const inGuest = (argv: string[], input?: Buffer) => {
      const r = spawnSync("timeout", ["60", join(build, "vmsilo-run"), guest.socket, ...argv], { input });
      return { status: r.status, stdout: r.stdout, stderr: r.stderr.toString() };
    };
    const sh = (script: string) => {
      const r = inGuest(["sh", "-c", script]);
      assert.equal(r.status, 0, `${script}\n${r.stderr}${r.stdout}\nconsole:\n${guest.console()}`);
      return r.stdout.toString();
    };
    sh("for m in $(cat /etc/modules-vsock); do insmod /lib/modules/$m.ko || exit 1; done");
    // Port 5000 as generated; port 5001 with --any-peer-port (what a cloud-hypervisor guest runs).
    for (const [port, extra] of [[5000, ""], [5001, " --any-peer-port"]] as const) {
      sh(`vmsilo-test-vsock listen ${port} vmsilo-agent --listen-systemd${extra} </dev/null >/dev/null 2>>/tmp/agent-${port}.log &
          i=0; until grep -q listening /tmp/agent-${port}.log; do i=$((i+1)); [ $i -gt 100 ] && exit 1; sleep 0.05; done`);
    }
    const request = Buffer.concat([PREAMBLE, frame(T.EXEC, argvPayload(["echo", "ran"])), frame(T.STDIN_EOF)]);
    /** A raw vm-run session from SOURCE-PORT (0: the kernel's pick) to the agent on `port`. */
    const session = (port: number, source: number) => {
      const r = inGuest(["vmsilo-test-vsock", "connect", `1:${port}`, String(source)], request);
      assert.equal(r.status, 0, r.stderr);
      return parseAnswer(r.stdout);
    };

    // An unprivileged peer: refused before anything is read, and told why.
    let a = session(5000, 0);
    assert.deepEqual(a.preamble, PREAMBLE);
    assert.equal(a.frames.length, 1, JSON.stringify(a.frames));
    assert.equal(a.frames[0]!.type, T.ERROR);
    assert.equal(a.frames[0]!.payload[0], 1);
    const why = a.frames[0]!.payload.subarray(1).toString();
    const port = Number(/^refused the connection from vsock CID 1 port (\d+), nothing was run: only peers on a privileged port \(below 1024\) are accepted/.exec(why)?.[1]);
    assert.ok(port >= 1024, why);
    assert.match(sh("cat /tmp/agent-5000.log"), new RegExp(`vmsilo-agent: refused the connection from vsock CID 1 port ${port}`));
    // Explicitly bound unprivileged ports, the lowest included, are refused the same way.
    for (const source of [1024, 40000]) {
      a = session(5000, source);
      assert.match(a.frames[0]!.payload.subarray(1).toString(), new RegExp(`^refused the connection from vsock CID 1 port ${source},`));
    }

    // A privileged peer (root in the guest may bind one, as only root or the proxy may on a host).
    for (const source of [1, 1023]) {
      a = session(5000, source);
      assert.deepEqual(a.frames.map((f) => [f.type, f.payload.toString("binary")]), [[T.STDOUT, "ran\n"], [T.EXIT, "\x00\x00"]]);
    }

    // The proxy's path: vm-run → unix socket → vmsilo-vsock-proxy (binds a privileged port) → agent.
    const viaProxy = sh(`vmsilo-vsock-proxy --timeout 10 --listen-unix /tmp/cmd.sock --vsock 1:5000 </dev/null >/dev/null 2>/tmp/proxy.log &
      i=0; until [ -S /tmp/cmd.sock ]; do i=$((i+1)); [ $i -gt 100 ] && exit 1; sleep 0.05; done
      vmsilo-run /tmp/cmd.sock printf '%s|' -n 'a b' ''`);
    assert.equal(viaProxy, "-n|a b||");

    // --any-peer-port: the kernel's pick is let in (cloud-hypervisor's muxer uses such ports).
    a = session(5001, 0);
    assert.deepEqual(a.frames.map((f) => f.type), [T.STDOUT, T.EXIT]);
  } finally {
    await guest.stop();
  }
});
