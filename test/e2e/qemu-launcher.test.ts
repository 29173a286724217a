/**
 * The generated qemu launcher for real: it boots the test guest under TCG (the `qemu.accel` knob),
 * and the guest reports what the guest protocol asked for; a virtio-fs share (through the generated
 * virtiofsd unit's own command line) and a 9p share, each mounted where the generated kernel command
 * line says, are written by the guest user and read on the host; the generated stop
 * script shuts the guest down through QMP (D9). Outside systemd: the console listener stands in for
 * the relay (test/e2e/nspawn.test.ts runs the units themselves).
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { chownSync, existsSync, mkdirSync, readFileSync, statSync, truncateSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import {
  ConsoleCapture,
  Proc,
  cleanRuntime,
  freshRuntime,
  execArgv,
  onlyChild,
  qemuTestConfig,
  renderTree,
  runLauncher,
  skip,
  testGuest,
  uniqueVmName,
  tempDir,
  unitValues,
  virtiofsdCommand,
  waitFor,
} from "./support.js";

const manifest = (out: string) => JSON.parse(readFileSync(join(out, "share", "vmsilo", "manifest.json"), "utf8"));
const lines = (consoleText: string, key: string) =>
  consoleText
    .split("\n")
    .filter((l) => l.startsWith(`VMSILO-TEST ${key}`))
    .map((l) => l.slice(`VMSILO-TEST ${key} `.length).trim());

test("the qemu launcher boots the guest under TCG; it reports the hostname, interface names, root and overlay asked for", async (t) => {
  const g = testGuest();
  if (typeof g === "string") return skip(t, `qemu launcher end-to-end: ${g}`);
  const vm = uniqueVmName("boot");
  const dir = tempDir("launcher-e2e");
  const config = qemuTestConfig(g, vm, {
    kernelParams: ["console=ttyS0", "quiet", "vmsilo.test.poweroff=1", "vmsilo.test-marker=a,b"],
    rootOverlay: { type: "raw", size: "32M" },
    network: { interfaces: { uplink: { type: "user", dhcp: true } }, nameservers: ["10.0.2.3"] },
  });
  const out = renderTree(config, "launcher-e2e-tree");
  const vmm = manifest(out).vms[vm];
  freshRuntime(vm);
  const consoleCapture = await new ConsoleCapture(`/run/vmsilo/${vm}/console-backend.socket`, dir).ready();
  // Outside systemd, nothing made the ephemeral disk: do what the VM service's ExecStartPre does.
  mkdirSync(`/var/lib/vmsilo/${vm}`, { recursive: true, mode: 0o700 });
  writeFileSync(`/var/lib/vmsilo/${vm}/ephemeral.raw`, "");
  truncateSync(`/var/lib/vmsilo/${vm}/ephemeral.raw`, 32 << 20);
  try {
    const launcher = runLauncher(out, vm, 60);
    const exit = await launcher.exited;
    await waitFor("the console to flush", () => consoleCapture.text().includes("VMSILO-TEST done"), 5000).catch(() => {});
    const text = consoleCapture.text();
    assert.equal(exit.code, 0, `launcher: ${launcher.err}\nconsole:\n${text}`);
    assert.deepEqual(lines(text, "hostname"), [vm]);
    // The kernel got exactly the guest protocol's parameters, in the model's order.
    const cmdline = lines(text, "cmdline")[0]!.split(" ");
    assert.deepEqual(cmdline.filter((p) => !p.startsWith("virtio_mmio.")), vmm.kernelParams);
    assert.ok(vmm.kernelParams.includes(`vmsilo.hostname=${vm}`));
    assert.ok(vmm.kernelParams.includes("vmsilo.test-marker=a,b"), "a comma in a kernel parameter survives");
    assert.ok(vmm.kernelParams.includes("ip=:::::uplink:dhcp"));
    // Interfaces renamed by MAC (vmsilo.ifname=<if>,<mac>), the MAC qemu gave the NIC.
    const mac = vmm.kernelParams.find((p: string) => p.startsWith("vmsilo.ifname=uplink,"))!.split(",")[1];
    assert.deepEqual(lines(text, "ifname"), [`uplink ${mac} ok`]);
    assert.deepEqual(lines(text, "net"), [":::::uplink:dhcp", "10.0.2.3"], "ip= and nameserver= as the guest read them");
    // The root: erofs on a read-only virtio disk; the overlay: the raw disk with serial "ephemeral".
    assert.match(lines(text, "root")[0] ?? "", /^vd[a-z] erofs ro erofs-root-ok$/);
    assert.match(lines(text, "overlay")[0] ?? "", /^raw ephemeral \/dev\/vd[a-z] 65536 writable$/);
  } finally {
    await consoleCapture.stop();
    cleanRuntime(vm);
  }
});

test("a virtio-fs share: mounted at its mountPoint from the generated kernel command line; the guest user writes, the host reads", async (t) => {
  const g = testGuest();
  if (typeof g === "string") return skip(t, `virtio-fs end-to-end: ${g}`);
  const vm = uniqueVmName("fs");
  const dir = tempDir("virtiofs-e2e");
  const share = join(dir, "share");
  mkdirSync(share);
  writeFileSync(join(share, "from-host"), "host\n");
  // The host user's directory: minimal.json's user is uid 1000, gid 100, as the guest user is.
  chownSync(share, 1000, 100);
  const config = qemuTestConfig(g, vm, {
    kernelParams: ["console=ttyS0", "quiet", "vmsilo.test.write=/srv/data", "vmsilo.test.poweroff=1"],
    sharedDirectories: { data: { path: share, cache: "never", mountPoint: "/srv/data" } },
  });
  const out = renderTree(config, "virtiofs-e2e-tree");
  // The generator, not the test, asks the guest to mount the share.
  assert.ok(manifest(out).vms[vm].kernelParams.includes("systemd.mount-extra=data:/srv/data:virtiofs:"));
  const unit = readFileSync(join(out, "lib", "systemd", "system", `vmsilo-${vm}-virtiofsd-data.service`), "utf8");
  const [execStart] = unitValues(unit, "Service", "ExecStart");
  const argv = execArgv(execStart!);
  const socket = `/run/vmsilo/${vm}/virtiofs/data.socket`;
  // vmsilo-share-bind binds the share at a root-only mount point, then runs virtiofsd on that.
  const root = `/run/vmsilo/${vm}/virtiofs/data`;
  assert.match(argv[0]!, /\/bin\/vmsilo-share-bind$/);
  assert.deepEqual(argv.slice(1, 3), [share, root]);
  assert.deepEqual(argv.slice(4, 10), ["--shared-dir", root, "--tag", "data", "--socket-path", socket]);
  freshRuntime(vm);
  mkdirSync(`/run/vmsilo/${vm}/virtiofs`, { recursive: true });
  const consoleCapture = await new ConsoleCapture(`/run/vmsilo/${vm}/console-backend.socket`, dir).ready();
  // The unit's ExecStart, as systemd would run it; the stand-in maps the Rust flags to Debian's C virtiofsd.
  const virtiofsd = new Proc(["timeout", "-k", "5", "90", ...virtiofsdCommand(out, vm, "data")]);
  try {
    await waitFor(`virtiofsd's socket ${socket}`, () => {
      if (!virtiofsd.running) throw new Error(`virtiofsd exited: ${virtiofsd.err}`);
      return existsSync(socket);
    }, 10000);
    const launcher = runLauncher(out, vm, 60);
    const exit = await launcher.exited;
    const text = consoleCapture.text();
    assert.equal(exit.code, 0, `launcher: ${launcher.err}\nconsole:\n${text}`);
    assert.deepEqual(lines(text, "mount"), ["data /srv/data virtiofs ok"]);
    assert.deepEqual(lines(text, "wrote"), ["/srv/data/guest-wrote 1000:100"], "written by the guest user");
    assert.equal(readFileSync(join(share, "guest-wrote"), "utf8"), `hello from ${vm} (${g.kernel.version})\n`);
    const st = statSync(join(share, "guest-wrote"));
    assert.deepEqual([st.uid, st.gid], [1000, 100], "the host file is the host user's");
  } finally {
    await virtiofsd.stop();
    await consoleCapture.stop();
    cleanRuntime(vm);
  }
});

test("a qemu 9p share (mapped-xattr): mounted at /mnt/<tag>; the guest user writes, and a device node the guest makes is no device on the host", async (t) => {
  const g = testGuest("generic");
  if (typeof g === "string") return skip(t, `9p end-to-end: ${g}`);
  const vm = uniqueVmName("p9");
  const dir = tempDir("9p-e2e");
  const share = join(dir, "media");
  mkdirSync(share);
  chownSync(share, 1000, 100);
  const config = qemuTestConfig(g, vm, {
    kernelParams: ["console=ttyS0", "quiet", "vmsilo.test.write=/mnt/media", "vmsilo.test.mknod=/mnt/media", "vmsilo.test.poweroff=1"],
    shares9p: { media: { path: share } },
  });
  const out = renderTree(config, "9p-e2e-tree");
  const vmm = manifest(out).vms[vm];
  assert.ok(vmm.kernelParams.includes("systemd.mount-extra=media:/mnt/media:9p:trans=virtio,version=9p2000.L"));
  assert.ok(vmm.launchArgv.some((a: string) => a.includes("security_model=mapped-xattr")), "the default security model");
  freshRuntime(vm);
  const consoleCapture = await new ConsoleCapture(`/run/vmsilo/${vm}/console-backend.socket`, dir).ready();
  try {
    const launcher = runLauncher(out, vm, 90);
    const exit = await launcher.exited;
    const text = consoleCapture.text();
    assert.equal(exit.code, 0, `launcher: ${launcher.err}\nconsole:\n${text}`);
    assert.deepEqual(lines(text, "mount"), ["media /mnt/media 9p ok"]);
    assert.deepEqual(lines(text, "wrote"), ["/mnt/media/guest-wrote 1000:100"], "written by the guest user, who owns it in the guest");
    assert.equal(readFileSync(join(share, "guest-wrote"), "utf8"), `hello from ${vm} (${g.kernel.version})\n`);
    // Guest root made a character device; mapped-xattr keeps it a regular file on the host.
    assert.deepEqual(lines(text, "mknod"), ["/mnt/media/guest-null character special file"]);
    const node = statSync(join(share, "guest-null"));
    assert.ok(node.isFile() && !node.isCharacterDevice(), `the host holds a plain file, mode ${node.mode.toString(8)}`);
  } finally {
    await consoleCapture.stop();
    cleanRuntime(vm);
  }
});

test("the generated stop script shuts the guest down through QMP system_powerdown, within the bound (D9)", async (t) => {
  const g = testGuest();
  if (typeof g === "string") return skip(t, `QMP stop end-to-end: ${g}`);
  const vm = uniqueVmName("stop");
  const dir = tempDir("stop-e2e");
  const out = renderTree(qemuTestConfig(g, vm, { kernelParams: ["console=ttyS0", "quiet"], stopTimeout: 20 }), "stop-e2e-tree");
  freshRuntime(vm);
  const consoleCapture = await new ConsoleCapture(`/run/vmsilo/${vm}/console-backend.socket`, dir).ready();
  const launcher = runLauncher(out, vm, 90);
  try {
    await waitFor("the guest to be ready", () => consoleCapture.text().includes("VMSILO-TEST ready"), 60000);
    const qmp = `/run/vmsilo/${vm}/vmm/qmp.socket`;
    assert.ok(existsSync(qmp), "qemu made its QMP socket");
    const qemuPid = onlyChild(launcher.child.pid!);
    assert.ok(qemuPid, "the launcher exec'd qemu (the only child of the timeout wrapper)");
    const started = Date.now();
    const stop = spawnSync(join(out, "libexec", "vmsilo", vm, "stop"), [], { encoding: "utf8", env: { ...process.env, MAINPID: String(qemuPid) }, timeout: 60000 });
    const ms = Date.now() - started;
    assert.equal(stop.status, 0, stop.stderr);
    assert.equal(stop.stderr, "", "no fallback to quit: the guest powered off by itself");
    const exit = await launcher.exited;
    assert.equal(exit.code, 0);
    assert.match(consoleCapture.text(), /VMSILO-TEST powerbutton/);
    assert.ok(ms < 20000, `stopped in ${ms} ms`);
    // The QMP client refuses a socket nobody serves, with a clear message.
    const r = spawnSync(join(out, "libexec", "vmsilo", "qmp"), [qmp, "system_powerdown"], { encoding: "utf8" });
    assert.equal(r.status, 1);
    assert.match(r.stderr, /no QMP socket|no answer|Connection refused/);
  } finally {
    await launcher.stop();
    await consoleCapture.stop();
    cleanRuntime(vm);
  }
});
