/**
 * vm-run round trips (SPEC D7, docs/protocol.md): vmsilo-run against vmsilo-agent over a unix
 * socket, in three topologies:
 *   direct  client → agent --listen-unix
 *   proxy   client → Accept=yes stand-in → vmsilo-vsock-proxy --unix → agent --listen-unix
 *   inetd   client → Accept=yes stand-in → agent with the connection on stdin/stdout
 *   forking proxy  client → vmsilo-vsock-proxy --listen-unix (fork per connection) → agent --listen-unix
 * plus the static build, the environment policy, --user, and the hang-up of a command whose client went away.
 */
import { cliUsage, usageText } from "../../src/render/usage.js";
import { after, before, describe, test } from "node:test";
import { spawnSync, type ChildProcess } from "node:child_process";
import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, readlinkSync } from "node:fs";
import { join } from "node:path";
import { AGENT_SRC, buildAgent, missingTools, run, Server, sleep, tempDir, type Build } from "./support.js";
import { example, have, render, writeTree } from "../support/harness.js";

const skip = missingTools();
if (skip) console.log(`SKIP: vm-run round trips not run: ${skip} (install gcc and make)`);

const sha = (b: Buffer) => createHash("sha256").update(b).digest("hex");

interface Topology {
  name: string;
  socket: string;
}

describe("vm-run round trips", { skip: skip ?? false }, () => {
  let b: Build;
  let dir: string;
  const servers: Server[] = [];
  const topologies: Topology[] = [];

  before(async () => {
    b = buildAgent();
    dir = tempDir("vmrun");
    const agentSock = join(dir, "agent.sock");
    servers.push(await new Server([b.bin("vmsilo-agent"), "--env", "VMSILO_TEST=1", "--listen-unix", agentSock]).ready());
    const proxied = join(dir, "command.sock");
    servers.push(await new Server([b.accept, proxied, b.bin("vmsilo-vsock-proxy"), "--timeout", "5", "--unix", agentSock]).ready());
    const inetd = join(dir, "inetd.sock");
    servers.push(await new Server([b.accept, inetd, b.bin("vmsilo-agent"), "--env", "VMSILO_TEST=1"]).ready());
    const forking = join(dir, "forking.sock");
    servers.push(await new Server([b.bin("vmsilo-vsock-proxy"), "--listen-unix", forking, "--timeout", "5", "--unix", agentSock]).ready());
    topologies.push({ name: "direct", socket: agentSock }, { name: "proxy", socket: proxied }, { name: "inetd", socket: inetd }, { name: "forking proxy", socket: forking });
  });
  after(() => servers.forEach((s) => s.stop()));

  const vmRun = (t: Topology, args: string[], input?: Buffer | string) => run([b.bin("vmsilo-run"), t.socket, ...args], input);

  for (const name of ["direct", "proxy", "inetd", "forking proxy"]) {
    describe(name, () => {
      const t = () => topologies.find((x) => x.name === name)!;

      test("argv arrives exactly: -n, spaces, empty arguments, $HOME", async () => {
        const r = await vmRun(t(), ["printf", "%s|", "-n", "a b", "", "$HOME"]);
        assert.equal(r.stderr, "");
        assert.equal(r.stdout.toString("binary"), "-n|a b||$HOME|");
        assert.equal(r.status, 0);
      });

      test("stdin through cat is byte-exact: NUL bytes", async () => {
        const data = Buffer.from("a\0b\0\0c\n\0\xff\xfe\r\n", "binary");
        const r = await vmRun(t(), ["cat"], data);
        assert.equal(r.status, 0);
        assert.deepEqual(r.stdout, data);
      });

      test("stdin through cat is byte-exact: 10 MiB of random data", async () => {
        const data = randomBytes(10 * 1024 * 1024);
        const r = await vmRun(t(), ["cat"], data);
        assert.equal(r.status, 0, r.stderr);
        assert.equal(r.stdout.length, data.length);
        assert.equal(sha(r.stdout), sha(data));
      });

      test("empty stdin is an immediate end of input", async () => {
        const r = await vmRun(t(), ["cat"], "");
        assert.equal(r.status, 0);
        assert.equal(r.stdout.length, 0);
      });

      test("stderr stays on stderr, stdout on stdout", async () => {
        const r = await vmRun(t(), ["sh", "-c", "echo out; echo err >&2; echo out2"]);
        assert.equal(r.stdout.toString(), "out\nout2\n");
        assert.equal(r.stderr, "err\n");
        assert.equal(r.status, 0);
      });

      test("the exit status is the command's: sh -c 'exit 42' exits 42", async () => {
        const r = await vmRun(t(), ["sh", "-c", "echo before; exit 42"]);
        assert.equal(r.status, 42);
        assert.equal(r.stdout.toString(), "before\n");
      });

      test("a command killed by SIGTERM reports 128+15 = 143", async () => {
        const r = await vmRun(t(), ["sh", "-c", "kill -TERM $$"]);
        assert.equal(r.status, 143);
        assert.equal(r.stderr, "");
      });

      test("a command killed by SIGKILL reports 137", async () => {
        const r = await vmRun(t(), ["sh", "-c", "kill -KILL $$"]);
        assert.equal(r.status, 137);
      });

      test("a missing command gives 127 and says so", async () => {
        const r = await vmRun(t(), ["vmsilo-no-such-command", "x"]);
        assert.equal(r.status, 127);
        assert.match(r.stderr, /vmsilo-run: vmsilo-no-such-command: command not found/);
        assert.equal(r.stdout.length, 0);
      });

      test("a file that is not executable gives 126", async () => {
        const r = await vmRun(t(), ["/etc/passwd"]);
        assert.equal(r.status, 126);
        assert.match(r.stderr, /\/etc\/passwd: cannot execute/);
      });

      test("a command that ignores 10 MiB of stdin still returns its status", async () => {
        const r = await vmRun(t(), ["sh", "-c", "exit 7"], randomBytes(10 * 1024 * 1024));
        assert.equal(r.status, 7);
      });
    });
  }

  test("environment: exactly PATH, HOME, USER, LOGNAME, SHELL and the --env extras", async () => {
    const r = await vmRun(topologies[0]!, ["env"]);
    assert.equal(r.status, 0);
    const names = r.stdout.toString().trim().split("\n").map((l) => l.slice(0, l.indexOf("=")));
    const expected = ["PATH", "HOME", ...(names.includes("USER") ? ["USER", "LOGNAME"] : []), "SHELL", "VMSILO_TEST"];
    assert.deepEqual(names, expected);
    assert.match(r.stdout.toString(), /^PATH=\/run\/wrappers\/bin:\/run\/current-system\/sw\/bin:/m);
    assert.match(r.stdout.toString(), /^VMSILO_TEST=1$/m);
  });

  test("working directory: the user's home directory", async () => {
    const r = await vmRun(topologies[0]!, ["sh", "-c", 'pwd; printf %s "$HOME"']);
    const [pwd, home] = r.stdout.toString().split("\n");
    assert.equal(pwd, home && existsSync(home) ? home : "/");
  });

  test("the client's own failures: usage 2, no socket 255, too many arguments 255", async () => {
    let r = await run([b.bin("vmsilo-run"), join(dir, "agent.sock")]);
    assert.equal(r.status, 2);
    assert.match(r.stderr, /usage: vmsilo-run \[--raw\] SOCKET COMMAND/);
    r = await run([b.bin("vmsilo-run"), join(dir, "missing.sock"), "true"]);
    assert.equal(r.status, 255);
    assert.match(r.stderr, /cannot connect to the command socket .*missing\.sock: No such file or directory/);
    r = await run([b.bin("vmsilo-run"), join(dir, "agent.sock"), "true", ...Array<string>(4096).fill("x")]);
    assert.equal(r.status, 255);
    assert.match(r.stderr, /too many arguments: 4097 \(the limit is 4096\)/);
    // At the limit it runs: 4096 arguments, the command name included.
    r = await run([b.bin("vmsilo-run"), join(dir, "agent.sock"), "sh", "-c", 'echo "$#"', ...Array<string>(4093).fill("x")]);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout.toString(), "4092\n");
  });

  test("a client that goes away hangs the command up (SIGHUP to its process group)", async () => {
    const marker = join(dir, "hung-up");
    const script = `trap 'touch ${marker}; exit 1' HUP; echo started; while :; do sleep 0.05; done`;
    let client!: ChildProcess;
    let started!: () => void;
    const ready = new Promise<void>((r) => (started = r));
    const p = run([b.bin("vmsilo-run"), topologies[1]!.socket, "sh", "-c", script], undefined, {
      onSpawn: (c) => {
        client = c;
        c.stdout!.once("data", () => started());
      },
    });
    await ready;
    assert.ok(!existsSync(marker));
    // SIGKILL: the client sends nothing more; the proxy passes the end on, the agent hangs up.
    client.kill("SIGKILL");
    await p;
    const deadline = Date.now() + 5000;
    while (!existsSync(marker) && Date.now() < deadline) await sleep(20);
    assert.ok(existsSync(marker), "the command got SIGHUP");
  });

  test("--user: runs as that user, HOME and USER from /etc/passwd", { skip: process.getuid?.() !== 0 || !/^nobody:/m.test(readFileSync("/etc/passwd", "utf8")) ? "needs root and a user nobody" : false }, async () => {
    const sock = join(dir, "user.sock");
    const s = await new Server([b.bin("vmsilo-agent"), "--user", "nobody", "--listen-unix", sock]).ready();
    try {
      const r = await run([b.bin("vmsilo-run"), sock, "sh", "-c", 'id -u; id -g; echo "$USER $LOGNAME"']);
      const uid = readFileSync("/etc/passwd", "utf8").match(/^nobody:[^:]*:(\d+):(\d+):/m)!;
      assert.equal(r.stdout.toString(), `${uid[1]}\n${uid[2]}\nnobody nobody\n`);
      const bad = join(dir, "nouser.sock");
      const s2 = await new Server([b.bin("vmsilo-agent"), "--user", "vmsilo-no-such-user", "--listen-unix", bad]).ready();
      const r2 = await run([b.bin("vmsilo-run"), bad, "true"]);
      s2.stop();
      assert.equal(r2.status, 125);
      assert.match(r2.stderr, /no user vmsilo-no-such-user in \/etc\/passwd/);
    } finally {
      s.stop();
    }
  });
});

describe("vm-run: the generated bin/vm-run is vmsilo-tools' client under the name vm-run", { skip: skip ?? false }, () => {
  test("checks the VM name, finds $VMSILO_RUN_DIR/<vm>/command.socket, lists VMs on errors", async () => {
    const b = buildAgent(["all"]);
    // vmsilo-tools as its package installs it, and a tree generated against it.
    const tools = join(b.dir, "tools");
    const install = spawnSync("make", ["-s", "-C", AGENT_SRC, `BUILD=${b.dir}`, `PREFIX=${tools}`, "install"], { encoding: "utf8" });
    assert.equal(install.status, 0, install.stderr);
    const config = example("minimal") as { programs: Record<string, string> };
    config.programs.vmsiloTools = tools;
    const out = writeTree(render(config), join(b.dir, "out"));
    const vmRun = join(out, "bin", "vm-run");
    assert.equal(readlinkSync(vmRun), join(tools, "bin", "vm-run"), "bin/vm-run is the client itself, no interpreter in between");
    const runDir = join(b.dir, "run");
    mkdirSync(join(runDir, "work"), { recursive: true });
    mkdirSync(join(runDir, "idle"), { recursive: true });
    const agent = await new Server([b.bin("vmsilo-agent"), "--listen-unix", join(runDir, "work", "command.socket")]).ready();
    const env = { ...process.env, VMSILO_RUN_DIR: runDir };
    const go = (args: string[]) => {
      const r = spawnSync(vmRun, args, { env, encoding: "utf8" });
      return { status: r.status, stdout: r.stdout, stderr: r.stderr };
    };
    try {
      let r = go(["work", "printf", "%s|", "-n", "a b", "", "$HOME"]);
      assert.equal(r.stdout, "-n|a b||$HOME|");
      assert.equal(r.status, 0);
      r = go(["work", "sh", "-c", "exit 42"]);
      assert.equal(r.status, 42);
      r = go(["idle", "true"]);
      assert.equal(r.status, 2);
      assert.match(r.stderr, /^vm-run: unknown VM \(or its command socket is not active\): idle\nVMs: work\n$/);
      for (const bad of ["../work", "Work", "work-", "", "-n", "a".repeat(33)]) {
        r = go([bad, "true"]);
        assert.equal(r.status, 2, bad);
        assert.match(r.stderr, /unknown VM \(or its command socket is not active\): \(not a VM name\)/);
      }
      // --help is the whole usage, the usage error the same and the VMs.
      const usage = `${usageText(cliUsage("vm-run"))}\n`;
      r = go(["--help"]);
      assert.equal(r.status, 0);
      assert.equal(r.stdout, usage);
      r = go(["work"]);
      assert.equal(r.status, 2);
      assert.equal(r.stderr, `${usage}VMs: work\n`);
    } finally {
      agent.stop();
    }
  });
});

describe("--listen-systemd (Accept=no): the listening socket from systemd", { skip: skip ?? (have("systemd-socket-activate") ? false : "systemd-socket-activate not installed") }, () => {
  test("agent and proxy each accept on fd 3 and fork per connection", async () => {
    const b = buildAgent(["all"]);
    const agentSock = join(b.dir, "agent.sock");
    const cmdSock = join(b.dir, "command.sock");
    const agent = new Server(["systemd-socket-activate", "-l", agentSock, b.bin("vmsilo-agent"), "--listen-systemd"]);
    const proxy = new Server(["systemd-socket-activate", "-l", cmdSock, b.bin("vmsilo-vsock-proxy"), "--listen-systemd", "--unix", agentSock]);
    try {
      const deadline = Date.now() + 5000;
      while (!(existsSync(agentSock) && existsSync(cmdSock)) && Date.now() < deadline) await sleep(10);
      for (let i = 0; i < 3; i++) {
        const r = await run([b.bin("vmsilo-run"), cmdSock, "printf", "%s|", "-n", "a b", "", `${i}`]);
        assert.equal(r.stdout.toString(), `-n|a b||${i}|`, r.stderr + agent.stderr + proxy.stderr);
      }
      const r = await run([b.bin("vmsilo-vsock-proxy"), "--listen-systemd", "--unix", agentSock]);
      assert.equal(r.status, 1);
      assert.match(r.stderr, /--listen-systemd: expected exactly one socket from systemd/);
    } finally {
      agent.stop();
      proxy.stop();
    }
  });
});

describe("static build (make static)", { skip: skip ?? false }, () => {
  test("builds with -static-pie and the static agent and client round-trip", async (t) => {
    let b: Build;
    try {
      b = buildAgent(["static", "test-binaries"]);
    } catch (e) {
      console.log(`SKIP: make static failed here (a static libc is needed: Debian libc6-dev, or musl): ${(e as Error).message.split("\n")[0]}`);
      t.skip("no static libc");
      return;
    }
    const s = join(b.dir, "static");
    const sock = join(b.dir, "agent.sock");
    const file = spawnSyncText("file", [join(s, "vmsilo-agent")]);
    if (file) assert.match(file, /static/);
    const agent = await new Server([join(s, "vmsilo-agent"), "--listen-unix", sock]).ready();
    try {
      const r = await run([join(s, "vmsilo-run"), sock, "printf", "%s|", "-n", "a b", "", "$HOME"]);
      assert.equal(r.stdout.toString(), "-n|a b||$HOME|");
      const r2 = await run([join(s, "vmsilo-run"), sock, "sh", "-c", "exit 42"]);
      assert.equal(r2.status, 42);
    } finally {
      agent.stop();
    }
  });
});

function spawnSyncText(cmd: string, args: string[]): string | null {
  const r = spawnSync(cmd, args, { encoding: "utf8" });
  return r.status === 0 ? r.stdout : null;
}
