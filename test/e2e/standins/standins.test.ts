/**
 * The stand-ins are not yes-men: each refuses a command line upstream's CLI definition refuses, and
 * fails as the real program fails when what it connects to is not there. Run on this machine,
 * outside any container (the nspawn harness runs them behind the generated units).
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { ROOT, tempDir } from "../../support/harness.js";
import { existsSync } from "node:fs";
import { VMM_DIR } from "../../contract/crosvm-contract.js";
import { skip } from "../support.js";
import { standIns } from "./index.js";

const JS = join(ROOT, "dist", "test", "e2e", "standins");
const node = (script: string, args: string[]) => spawnSync(process.execPath, [join(JS, script), ...args], { encoding: "utf8", timeout: 20000 });

test("crosvm stand-in: refuses what upstream refuses; fails without its vhost-user backend, tap or disk", (t) => {
  if (!existsSync(VMM_DIR)) return skip(t, `${VMM_DIR} is absent`);
  let r = node("crosvm.js", ["run", "--no-such-option", "/kernel"]);
  assert.equal(r.status, 2, r.stderr);
  assert.match(r.stderr, /upstream's CLI definition refuses this command line: .*--no-such-option/);
  r = node("crosvm.js", ["--no-syslog", "run", "--mem", "size=256", "--vhost-user", `type=gpu,socket=${join(tempDir("standin"), "none.socket")}`, "/kernel"]);
  assert.equal(r.status, 1, r.stderr);
  assert.match(r.stderr, /vhost-user gpu backend .*none\.socket/);
  r = node("crosvm.js", ["run", "--mem", "size=256", "--net", "tap-name=vmsilo-no-tap", "/kernel"]);
  assert.equal(r.status, 1, r.stderr);
  assert.match(r.stderr, /tap vmsilo-no-tap: no such network interface/);
  // The control socket's client end is the helper binary (SOCK_SEQPACKET), as the package runs it.
  const helper = join(standIns().crosvm, "bin", "crosvm");
  r = spawnSync(process.execPath, [join(JS, "crosvm.js"), "stop", join(tempDir("standin"), "control.socket")], { encoding: "utf8", timeout: 20000, env: { ...process.env, VMSILO_STANDIN_HELPER: helper } });
  assert.equal(r.status, 1, r.stderr);
  assert.match(r.stderr, /cannot connect to the control socket/);
});

test("cloud-hypervisor stand-in: refuses what upstream refuses, ch-remote fails without its VMM", (t) => {
  if (!existsSync(VMM_DIR)) return skip(t, `${VMM_DIR} is absent`);
  let r = node("cloud-hypervisor.js", ["cloud-hypervisor", "--api-socket", "path=/tmp/x.socket", "--no-such-flag"]);
  assert.equal(r.status, 2, r.stderr);
  assert.match(r.stderr, /--no-such-flag/);
  r = node("cloud-hypervisor.js", ["ch-remote", "--api-socket", "/tmp/x.socket", "no-such-subcommand"]);
  assert.equal(r.status, 2, r.stderr);
  r = node("cloud-hypervisor.js", ["ch-remote", "--api-socket", join(tempDir("standin"), "api.socket"), "ping"]);
  assert.equal(r.status, 1, r.stderr);
  assert.match(r.stderr, /Error running command: Error opening HTTP socket/);
});

test("helper stand-ins (static C): sound and crosvm's GPU backend refuse bad or unchecked argv", (t) => {
  if (process.platform !== "linux") return skip(t, "the stand-ins are Linux programs");
  const s = standIns();
  const run = (bin: string, args: string[]) => spawnSync(bin, args, { encoding: "utf8", timeout: 10000 });
  let r = run(join(s.vhostDeviceSound, "bin", "vhost-device-sound"), ["--socket", "/tmp/x.socket", "--backend", "bogus"]);
  assert.equal(r.status, 2);
  assert.match(r.stderr, /unknown backend bogus/);
  r = run(join(s.vhostDeviceSound, "bin", "vhost-device-sound"), ["--socket", "/tmp/x.socket", "--backend", "null", "--bogus"]);
  assert.equal(r.status, 2);
  // Not one of the command lines the harness checked (its accepted/ directory is empty here).
  r = run(join(s.crosvm, "bin", "crosvm"), ["device", "gpu", "--socket-path", "/tmp/gpu.socket", "--wayland-sock", "/tmp/w", "--params", "{}"]);
  assert.equal(r.status, 2);
  assert.match(r.stderr, /not a command line the harness checked/);
});
