/**
 * The vm-run round trip with a real guest: bootAgentGuest() (support.ts) boots the test guest with the
 * generated qemu launcher; the static vmsilo-agent in its initramfs serves the virtio-serial port
 * `vmsilo.agent`, which the host sees as a unix socket. vmsilo-run (agent/) talks the vm-run
 * protocol to it: exact argv, stdin, separate stdout and stderr, the exit status; several sessions in
 * a row, each with a fresh agent. Once on microvm (the default), once on q35, the machine of the
 * flake's vm-lifecycle test (nixos-module/checks/vm-test.nix), both under TCG.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { ROOT } from "../support/harness.js";
import { bootAgentGuest, skip, testGuest, tempDir } from "./support.js";

for (const machine of ["microvm", "q35"] as const)
test(`vm-run round trip with a guest booted on ${machine}: argv exactly, stdin, stdout/stderr apart, exit status`, async (t) => {
  const g = testGuest();
  if (typeof g === "string") return skip(t, `vm-run guest round trip: ${g}`);
  const build = tempDir("vmrun-client");
  const make = spawnSync("make", ["-s", "-C", join(ROOT, "agent"), `BUILD=${build}`, "all"], { encoding: "utf8" });
  assert.equal(make.status, 0, make.stderr);
  const client = join(build, "vmsilo-run");
  const guest = await bootAgentGuest({ machine });
  try {
    const run = (argv: string[], input?: string) => spawnSync("timeout", ["60", client, guest.socket, ...argv], { encoding: "utf8", input });
    let r = run(["printf", "%s|", "-n", "a b", "", "$HOME"]);
    assert.equal(r.status, 0, `${r.stderr}\nconsole:\n${guest.console()}`);
    assert.equal(r.stdout, "-n|a b||$HOME|");
    r = run(["sh", "-c", "echo out; echo err >&2; exit 3"]);
    assert.equal(r.status, 3);
    assert.equal(r.stdout, "out\n");
    assert.equal(r.stderr, "err\n");
    r = run(["tr", "a-z", "A-Z"], "from the host's stdin\n");
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout, "FROM THE HOST'S STDIN\n");
    r = run(["hostname"]);
    assert.equal(r.stdout, `${guest.vm}\n`, "it is the guest that answers");
    r = run(["no-such-command"]);
    assert.equal(r.status, 127);
  } finally {
    await guest.stop();
  }
});
