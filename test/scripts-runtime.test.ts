/**
 * The generated scripts run for real against stub programs: usage lines and exit codes of the
 * user CLIs, the socket wait, and the graceful stop with its deadline (D9, D12).
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { once } from "node:events";
import { chmodSync, existsSync, mkdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { join } from "node:path";
import { example, render, tempDir, writeTree } from "./support/harness.js";

/** A package directory whose bin/ holds recording stubs: each writes its argv, NUL-separated, to $STUB_LOG/<name>. */
function stubPackage(dir: string, names: string[], body = 'exit "${STUB_STATUS:-0}"'): string {
  mkdirSync(join(dir, "bin"), { recursive: true });
  for (const n of names) {
    const p = join(dir, "bin", n);
    writeFileSync(p, `#!/bin/bash\nprintf '%s\\0' "$@" >> "$STUB_LOG/${n}"\n${body}\n`);
    chmodSync(p, 0o755);
  }
  return dir;
}

/** Coreutils stand-in: the real tools, by symlink. */
function realCoreutils(dir: string): string {
  mkdirSync(join(dir, "bin"), { recursive: true });
  for (const tool of ["rm", "timeout", "tail", "sleep", "readlink", "true", "install", "truncate", "cp"]) {
    const found = spawnSync("sh", ["-c", `command -v ${tool}`], { encoding: "utf8" }).stdout.trim();
    symlinkSync(found, join(dir, "bin", tool));
  }
  return dir;
}

/** A package whose bin/ holds this machine's own programs, by symlink. */
function hostPrograms(dir: string, tools: string[]): string {
  mkdirSync(join(dir, "bin"), { recursive: true });
  for (const tool of tools) {
    const found = spawnSync("sh", ["-c", `command -v ${tool}`], { encoding: "utf8" }).stdout.trim();
    symlinkSync(found, join(dir, "bin", tool));
  }
  return dir;
}

/** systemctl as vm-list and vm-stop see it: `show` prints $STUB_SHOW, `is-active` prints $STUB_ACTIVE. */
const SYSTEMCTL_STATES = 'if [ "$1" = show ] && [ -n "${STUB_SHOW:-}" ]; then cat "$STUB_SHOW"; fi\nif [ "$1" = is-active ]; then echo "${STUB_ACTIVE:-unknown}"; fi\nexit "${STUB_STATUS:-0}"';

function setup(vmName = "work", overrides: Record<string, unknown> = {}, vms: Record<string, Record<string, unknown>> = {}, programs: Record<string, unknown> = {}) {
  const dir = tempDir("scripts");
  const log = join(dir, "log");
  mkdirSync(log);
  const config = example("minimal") as any;
  const vm = config.nixosVms.work;
  delete config.nixosVms.work;
  config.nixosVms[vmName] = vm;
  for (const [name, extra] of Object.entries(vms)) config.nixosVms[name] = { ...vm, ...extra };
  config.programs = {
    ...config.programs,
    bash: "/usr",
    coreutils: realCoreutils(join(dir, "coreutils")),
    systemd: stubPackage(join(dir, "systemd"), ["systemctl"], SYSTEMCTL_STATES),
    jq: hostPrograms(join(dir, "jq"), ["jq"]),
    socat: stubPackage(join(dir, "socat"), ["socat"]),
    openssh: stubPackage(join(dir, "openssh"), ["ssh"]),
    vmsiloTools: stubPackage(join(dir, "vmsilo-tools"), ["vmsilo-run", "vmsilo-vsock-proxy"]),
    crosvm: stubPackage(join(dir, "crosvm"), ["crosvm"], 'if [ "$1" = powerbtn ] && [ -n "${STUB_KILL:-}" ]; then kill "$STUB_KILL"; fi\nexit "${STUB_STATUS:-0}"'),
    ...programs,
  };
  Object.assign(config, overrides);
  const out = join(dir, "out");
  writeTree(render(config, out), out);
  const run = (script: string, args: string[], env: Record<string, string> = {}) => {
    const r = spawnSync(join(out, script), args, { encoding: "utf8", env: { ...process.env, STUB_LOG: log, ...env } });
    return { status: r.status, stdout: r.stdout, stderr: r.stderr };
  };
  const calls = (name: string) => (existsSync(join(log, name)) ? readFileSync(join(log, name), "utf8").split("\0").slice(0, -1) : []);
  const reset = () => {
    rmSync(log, { recursive: true, force: true });
    mkdirSync(log);
  };
  return { dir, out, log, run, calls, reset };
}

test("vm-start and vm-stop: usage, validated VM names, several VMs, --all, exit codes", () => {
  const { run, calls, reset } = setup("work", {}, { net: { memory: 256 } });
  for (const [cmd, verb, state] of [["vm-start", "start", "active"], ["vm-stop", "stop", "inactive"]] as const) {
    let r = run(`bin/${cmd}`, []);
    assert.equal(r.status, 2);
    assert.match(r.stderr, new RegExp(`^${cmd}: no VM given\nusage: ${cmd} `));
    assert.match(r.stderr, /\nVMs: net, work\n$/);
    r = run(`bin/${cmd}`, ["--help"]);
    assert.equal(r.status, 0);
    assert.match(r.stdout, new RegExp(`^usage: ${cmd} .*<vm>\\.\\.\\.\n`));
    assert.match(r.stdout, /--all +start every configured VM|--all +stop every configured VM/);
    for (const bad of ["nope", "wor*", "work ", "../work", "", "net,work"]) {
      r = run(`bin/${cmd}`, ["work", bad]);
      assert.equal(r.status, 2, `rejects ${JSON.stringify(bad)}`);
      assert.match(r.stderr, /unknown VM/);
    }
    for (const bad of [["-x"], ["--all", "work"], ["--al"]]) {
      r = run(`bin/${cmd}`, bad);
      assert.equal(r.status, 2, `rejects ${JSON.stringify(bad)}`);
      assert.match(r.stderr, /^vm-\w+: (unknown option|--all takes no VM names)/);
    }
    assert.equal(run(`bin/${cmd}`, ["--wait", "work"]).status, verb === "stop" ? 0 : 2, "only vm-stop has --wait");
    reset();
    assert.equal(run(`bin/${cmd}`, ["bad!"]).status, 2);
    assert.deepEqual(calls("systemctl"), [], "nothing reached systemctl for bad input");
    r = run(`bin/${cmd}`, ["work"]);
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(calls("systemctl"), [verb, "--", "vmsilo-work-vm.service"]);
    reset();
    // Several VMs, one named twice: one transaction, each unit once; `--` ends the options.
    r = run(`bin/${cmd}`, ["--", "work", "net", "work"]);
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(calls("systemctl"), [verb, "--", "vmsilo-work-vm.service", "vmsilo-net-vm.service"]);
    reset();
    r = run(`bin/${cmd}`, ["--all"]);
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(calls("systemctl"), [verb, "--", "vmsilo-net-vm.service", "vmsilo-work-vm.service"]);
    reset();
    // A failure names the journal of each VM that did not get there, not of those that did.
    r = run(`bin/${cmd}`, ["work"], { STUB_STATUS: "5" });
    assert.equal(r.status, 1);
    assert.match(r.stderr, new RegExp(`systemctl ${verb} vmsilo-work-vm.service failed; to read why: journalctl -u vmsilo-work-vm.service\n`));
    // A failed start may have left the guest's console output (the console relay's log).
    assert.equal(/the guest's console output is in \/run\/vmsilo\/work\/console\.log\n/.test(r.stderr), verb === "start", r.stderr);
    r = run(`bin/${cmd}`, ["work", "net"], { STUB_STATUS: "5", STUB_ACTIVE: state });
    assert.equal(r.status, 1);
    assert.doesNotMatch(r.stderr, /journalctl/);
    assert.match(r.stderr, new RegExp(`systemctl ${verb} vmsilo-work-vm.service vmsilo-net-vm.service failed\n`));
    reset();
  }
});

test("vm-stop --all --wait: a VM's dependents stop before it, one wave at a time", () => {
  // app depends on mid, mid on base; solo on nothing.
  const { run, calls } = setup("base", {}, { mid: { dependsOn: ["base"] }, app: { dependsOn: ["mid"] }, solo: {} });
  const r = run("bin/vm-stop", ["--all", "--wait"]);
  assert.equal(r.status, 0, r.stderr);
  const waves = calls("systemctl").join(" ").split("stop -- ").filter(Boolean).map((w) => w.trim());
  assert.deepEqual(waves, ["vmsilo-app-vm.service vmsilo-solo-vm.service", "vmsilo-mid-vm.service", "vmsilo-base-vm.service"]);
});

test("vm-shell: options, console and ssh through the VM's ssh socket", () => {
  const vmName = `clitest${process.pid}`;
  const { dir, run, calls, reset } = setup(vmName);
  const usage = (r: { status: number | null; stderr: string }, code: number) => {
    assert.equal(r.status, code);
    assert.match(r.stderr, /usage: vm-shell \[--ssh \[--root\]\] <vm>/);
  };
  usage(run("bin/vm-shell", []), 2);
  usage(run("bin/vm-shell", ["--bogus", vmName]), 2);
  usage(run("bin/vm-shell", [vmName, vmName]), 2);
  usage(run("bin/vm-shell", ["other"]), 2);
  let r = run("bin/vm-shell", ["--root", vmName]);
  assert.equal(r.status, 2);
  assert.match(r.stderr, /--root requires --ssh/);
  // Not running (systemctl is-active fails): at once.
  r = run("bin/vm-shell", [vmName], { STUB_STATUS: "3" });
  assert.equal(r.status, 1);
  assert.match(r.stderr, new RegExp(`no console for ${vmName}.*vm-start ${vmName}`));
  assert.deepEqual(calls("socat"), []);

  const consoleDir = `/run/vmsilo/${vmName}`;
  mkdirSync(consoleDir, { recursive: true });
  try {
    // Just started (active, the console not there yet): it waits for the console.
    spawn("sh", ["-c", `sleep 0.5; : >${consoleDir}/console`], { stdio: "ignore" });
    r = run("bin/vm-shell", [vmName]);
    assert.equal(r.status, 0, r.stderr);
    assert.ok(calls("systemctl").join(" ").includes(`is-active -q -- vmsilo-${vmName}-vm.service`));
    reset();
    rmSync(`${consoleDir}/console`);
    writeFileSync(`${consoleDir}/console`, "");
    r = run("bin/vm-shell", [vmName]);
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(calls("socat"), ["-,raw,echo=0,escape=0x1d", `${consoleDir}/console`]);
  } finally {
    rmSync(consoleDir, { recursive: true, force: true });
  }

  r = run("bin/vm-shell", ["--ssh", "--root", vmName]);
  assert.equal(r.status, 0, r.stderr);
  const ssh = calls("ssh");
  assert.equal(ssh.at(-1), `root@${vmName}`);
  assert.ok(ssh.includes(`HostKeyAlias=vmsilo-${vmName}`));
  // The user's ssh socket, not a proxy of the user's own: the proxy unit holds the bind capability.
  assert.equal(ssh.find((a) => a.startsWith("ProxyCommand=")), `ProxyCommand=${join(dir, "socat", "bin", "socat")} - UNIX-CONNECT:/run/vmsilo/${vmName}/ssh.socket`);
});

test("wait-for-socket: succeeds when the socket appears, fails with the time waited or once the main process is gone, refuses bad arguments", async () => {
  const { dir, out, run } = setup();
  const script = "libexec/vmsilo/wait-for-socket";
  assert.equal(run(script, []).status, 2);
  assert.equal(run(script, ["/x", "0"]).status, 2);
  assert.equal(run(script, ["/x", "1s"]).status, 2);
  const missing = run(script, [join(dir, "never.socket"), "1"]);
  assert.equal(missing.status, 1);
  assert.match(missing.stderr, /did not appear within \d+ ms \(limit 1 s\)/);
  const ms = Number(/within (\d+) ms/.exec(missing.stderr)![1]);
  assert.ok(ms >= 1000 && ms < 3000, `waited ${ms} ms`);

  // The service's main process already exited (a backend that failed): no 30 s wait for nothing.
  const gone = spawnSync("sh", ["-c", "sh -c 'echo $$' & wait"], { encoding: "utf8" }).stdout.trim();
  const started = Date.now();
  const failed = run(script, [join(dir, "never.socket"), "30"], { MAINPID: gone });
  assert.equal(failed.status, 1);
  assert.match(failed.stderr, new RegExp(`main process \\(PID ${gone}\\) exited before`));
  assert.ok(Date.now() - started < 5000, `gave up after ${Date.now() - started} ms`);
  // A main process that is alive but not ours to signal (still root, before it drops to the unit's
  // user) is waited for.
  if (process.getuid?.() === 0) {
    chmodSync(dir, 0o755); // the tree and its coreutils, for nobody
    const r = spawnSync("setpriv", ["--reuid=65534", "--regid=65534", "--clear-groups", join(out, script), join(dir, "never.socket"), "1"], { encoding: "utf8", env: { ...process.env, MAINPID: "1" } });
    assert.equal(r.status, 1);
    assert.match(r.stderr, /did not appear within \d+ ms \(limit 1 s\)/);
  }

  const path = join(dir, "later.socket");
  const server = createServer();
  setTimeout(() => server.listen(path), 300);
  const child = spawn(join(out, script), [path, "5"], { stdio: "pipe" });
  const status = await new Promise<number | null>((resolve) => child.on("exit", resolve));
  server.close();
  assert.equal(status, 0);
});

test("stop: a guest that powers off ends the wait; one that does not is stopped after the deadline", async () => {
  const { out, log, calls, reset } = setup("work", { stopTimeout: 1 });
  const stop = join(out, "libexec/vmsilo/work/stop");
  const runStop = async (env: Record<string, string>) => {
    const started = Date.now();
    const r = spawnSync(stop, [], { encoding: "utf8", env: { ...process.env, ...env } });
    return { ...r, ms: Date.now() - started };
  };
  // A stand-in VMM whose parent reaps it at once, as systemd reaps a VMM (a zombie would still
  // count as running); the stub crosvm kills it on `powerbtn` when STUB_KILL names it.
  const orphan = async () => {
    const parent = spawn("bash", ["-c", "sleep 30 & echo $!; wait"], { stdio: ["ignore", "pipe", "ignore"] });
    const [line] = (await once(parent.stdout, "data")) as [Buffer];
    return line.toString().trim();
  };
  const vmm = await orphan();
  const graceful = await runStop({ MAINPID: vmm, STUB_KILL: vmm, STUB_LOG: log });
  assert.equal(graceful.status, 0, graceful.stderr);
  assert.deepEqual(calls("crosvm"), ["powerbtn", "/run/vmsilo/work/crosvm-control.socket"]);
  assert.ok(graceful.ms < 900, `a guest that powers off is not waited for (${graceful.ms} ms)`);

  reset();
  const stubborn = await orphan();
  const forced = await runStop({ MAINPID: stubborn, STUB_LOG: log });
  process.kill(Number(stubborn));
  assert.equal(forced.status, 0);
  assert.match(forced.stderr, /did not shut down within 1 s; stopping it at once/);
  assert.deepEqual(calls("crosvm"), ["powerbtn", "/run/vmsilo/work/crosvm-control.socket", "stop", "/run/vmsilo/work/crosvm-control.socket"]);
  assert.ok(forced.ms >= 900, `waited ${forced.ms} ms`);

  reset();
  const noPid = await runStop({ STUB_LOG: log });
  assert.equal(noPid.status, 0);
  assert.deepEqual(calls("crosvm"), [], "no VMM running: nothing to stop");
});

test("vm-list: states from systemd, restart pending from the definition each VM recorded, table and --json; vm-status", () => {
  const p = `l${process.pid}`;
  const [up, old, boot, down, bad] = ["up", "old", "boot", "down", "bad"].map((n) => `${p}${n}`) as [string, string, string, string, string];
  const { dir, out, run, reset } = setup(up, {}, { [old]: { hypervisor: "crosvm", memory: 2048, color: "red" }, [boot]: {}, [down]: {}, [bad]: {} });
  const show = join(dir, "show");
  const states: Record<string, string> = { [up]: "active", [old]: "active", [boot]: "activating", [down]: "inactive", [bad]: "failed" };
  writeFileSync(show, Object.entries(states).map(([vm, st]) => `Id=vmsilo-${vm}-vm.service\nActiveState=${st}\n\n`).join(""));
  const definition = (vm: string) => readFileSync(join(out, "share", "vmsilo", vm, "definition"), "utf8");
  const runDirs = Object.keys(states).map((vm) => `/run/vmsilo/${vm}`);
  try {
    for (const d of runDirs) mkdirSync(d, { recursive: true });
    writeFileSync(`/run/vmsilo/${up}/definition`, definition(up));
    // Started from an earlier configuration (its memory was different then).
    writeFileSync(`/run/vmsilo/${old}/definition`, `${"0".repeat(64)}\n`);
    // Stale files of stopped VMs do not count.
    writeFileSync(`/run/vmsilo/${down}/definition`, `${"0".repeat(64)}\n`);
    let r = run("bin/vm-list", ["--json"], { STUB_SHOW: show });
    assert.equal(r.status, 0, r.stderr);
    const list = JSON.parse(r.stdout) as Array<Record<string, unknown>>;
    const byName = Object.fromEntries(list.map((v) => [v.name, v]));
    assert.deepEqual(list.map((v) => v.name), [...Object.keys(states)].sort(), "every configured VM, sorted");
    assert.deepEqual(byName[old], { name: old, state: "running", hypervisor: "crosvm", memory: 2048, color: "#ff0000", netvm: null, usb: [], restartPending: true, unit: `vmsilo-${old}-vm.service` });
    assert.deepEqual(Object.fromEntries(list.map((v) => [v.name, [v.state, v.restartPending]])), {
      [up]: ["running", false],
      [old]: ["running", true],
      // Starting, and nothing recorded yet: not the current definition for all vm-list knows.
      [boot]: ["starting", true],
      [down]: ["stopped", false],
      [bad]: ["failed", false],
    });
    r = run("bin/vm-list", ["--running", "--json"], { STUB_SHOW: show });
    assert.deepEqual((JSON.parse(r.stdout) as Array<{ name: string }>).map((v) => v.name), [boot, old, up].sort());
    r = run("bin/vm-list", [], { STUB_SHOW: show });
    assert.equal(r.status, 0, r.stderr);
    const rows = r.stdout.trimEnd().split("\n");
    assert.match(rows[0]!, /^NAME +STATE +HYPERVISOR +MEMORY +COLOR +NETVM +USB +RESTART$/);
    assert.match(rows.find((l) => l.startsWith(`${old} `))!, new RegExp(`^${old} +running +crosvm +2048 MiB +#ff0000 +- +- +pending$`));
    assert.match(rows.find((l) => l.startsWith(`${down} `))!, /stopped +crosvm +1024 MiB +#808080 +- +- +-$/);
    // The columns line up.
    assert.equal(new Set(rows.map((l) => l.indexOf(" STATE") < 0 ? l.search(/ (running|starting|stopped|failed)/) : l.indexOf(" STATE"))).size, 1, r.stdout);
    for (const args of [["--bogus"], ["work"], ["-j"]]) {
      r = run("bin/vm-list", args);
      assert.equal(r.status, 2, `rejects ${JSON.stringify(args)}`);
      assert.match(r.stderr, /^vm-list: unknown argument: .*\nusage: vm-list \[--json\] \[--running\]\n/);
    }
    r = run("bin/vm-list", ["--help"]);
    assert.equal(r.status, 0);
    assert.match(r.stdout, /^usage: vm-list \[--json\] \[--running\]\n[^]*restartPending/);
    // systemd not reachable: said, exit 1.
    r = run("bin/vm-list", [], { STUB_STATUS: "1" });
    assert.equal(r.status, 1);
    assert.match(r.stderr, /cannot ask systemd/);

    // vm-status: the VM's row, its units, the end of its console log.
    reset();
    writeFileSync(`/run/vmsilo/${old}/console.log`, Array.from({ length: 30 }, (_, i) => `line ${i + 1}\n`).join(""));
    r = run("bin/vm-status", ["-n", "3", old], { STUB_SHOW: show });
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, new RegExp(`^NAME .*\\n${old} +running .*pending\\n\\n`));
    assert.doesNotMatch(r.stdout, new RegExp(`\\n${up} `), "only this VM's row");
    assert.match(r.stdout, new RegExp(`Console, the last 3 lines of /run/vmsilo/${old}/console.log:\\nline 28\\nline 29\\nline 30\\n$`));
    r = run("bin/vm-status", [`--lines=2`, up], { STUB_SHOW: show });
    assert.match(r.stdout, new RegExp(`No console log at /run/vmsilo/${up}/console.log`));
    for (const args of [[], ["nope"], [up, old], ["--lines=x", up], ["-n"], ["--bogus", up]]) {
      r = run("bin/vm-status", args);
      assert.equal(r.status, 2, `rejects ${JSON.stringify(args)}`);
      assert.match(r.stderr, /\nusage: vm-status \[--lines=N\] <vm>\n/);
    }
  } finally {
    for (const d of runDirs) rmSync(d, { recursive: true, force: true });
  }
});

test("vm-list and vm-status without jq say they are not available", () => {
  const { run } = setup("work", {}, {}, { jq: null });
  for (const cmd of ["vm-list", "vm-status"]) {
    let r = run(`bin/${cmd}`, []);
    assert.equal(r.status, 1);
    assert.equal(r.stderr, `${cmd}: not available: programs.jq is not set in vmsilo.json\n`);
    r = run(`bin/${cmd}`, ["--help"]);
    assert.equal(r.status, 0);
    assert.match(r.stdout, new RegExp(`^usage: ${cmd} `));
  }
});
