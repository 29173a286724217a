/**
 * The qemu driver below the end-to-end tests: QemuOpts quoting, the console topology (D10), what
 * validation refuses, the QMP client against a fake qemu (D9, D12), the disk creator, determinism.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { once } from "node:events";
import { existsSync, mkdirSync, readFileSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { createServer, type Socket } from "node:net";
import { join } from "node:path";
import { qemuOpts } from "../../src/shell/quote.js";
import { resolve, ConfigError } from "../../src/generate.js";
import { example, fileAt, have, regularFiles, render, tempDir, writeTree } from "../support/harness.js";

const Q = "/nix/store/7q3ma1k6lq7w0b4j5b5n7m5ax9w5q2yz-qemu-10.1.2";
const VIRTIOFSD = "/nix/store/8v1rfs2b0m5x4r5g7y0w6q3s1m2n3b4c-virtiofsd-1.13.2";

/** examples/minimal.json with VM `work` on qemu, plus `vm` merged in (shallow per key). */
function qemuConfig(vm: Record<string, unknown> = {}, top: Record<string, unknown> = {}): any {
  const c = example("minimal") as any;
  c.programs = { ...c.programs, crosvm: null, qemu: Q, virtiofsd: VIRTIOFSD };
  Object.assign(c.nixosVms.work, { hypervisor: "qemu" }, vm);
  return Object.assign(c, top);
}

const issues = (config: unknown): string[] => {
  try {
    resolve(config);
    return [];
  } catch (e) {
    if (e instanceof ConfigError) return e.issues.map((i) => `${i.path}: ${i.message}`);
    throw e;
  }
};

const argv = (config: unknown, vm = "work"): string[] => JSON.parse(fileAt(render(config), "share/vmsilo/manifest.json").content).vms[vm].launchArgv;

test("qemuOpts: commas in values doubled, booleans on/off, keys in the caller's order", () => {
  assert.equal(qemuOpts("socket", [["id", "x"], ["path", "/a,b,,c"], ["server", false]]), "socket,id=x,path=/a,,b,,,,c,server=off");
  assert.equal(qemuOpts(null, [["file", "/d=1.img"], ["readonly", true], ["n", 3]]), "file=/d=1.img,readonly=on,n=3");
  assert.equal(qemuOpts("a,b", []), "a,,b");
  assert.throws(() => qemuOpts(null, [["path", "a\0b"]]), /NUL/);
});

test("every path a qemu option carries keeps its commas (the drive, 9p, virtio-fs and QMP sockets)", () => {
  const a = argv(
    qemuConfig({
      additionalDisks: [{ path: "/srv/a,b.img" }],
      sharedDirectories: { data: { path: "/srv/x,y" } },
      qemu: { shares9p: { m: { path: "/srv/p,q" } } },
    }),
  );
  assert.ok(a.includes("file=/srv/a,,b.img,format=raw,if=none,id=disk1,readonly=off,discard=unmap"));
  assert.ok(a.includes("local,id=p9-m,path=/srv/p,,q,security_model=mapped-xattr"));
});

/**
 * D10: nobody else listens on a socket qemu binds. From the rendered tree: every socket qemu binds
 * (a chardev with server=on) is bound by no unit and no other program; every socket qemu connects to
 * (a chardev without server=on) is bound by exactly one unit's program, which the VM unit requires.
 */
test("D10: the console, virtio-fs and QMP sockets each have exactly one listener, and qemu binds only QMP", () => {
  for (const console of ["virtio", "serial"] as const) {
    const config = qemuConfig({ sharedDirectories: { data: { path: "/srv/data" } }, sharedHome: true, qemu: { console } });
    const tree = render(config);
    const a = argv(config);
    const chardevs = a.flatMap((w, i) => (a[i - 1] === "-chardev" && w.startsWith("socket,") ? [w] : []));
    const pathOf = (c: string) => /(?:^|,)path=((?:[^,]|,,)*)/.exec(c)![1]!.replace(/,,/g, ",");
    const qemuBinds = chardevs.filter((c) => /,server=on(,|$)/.test(c)).map(pathOf);
    const qemuConnects = chardevs.filter((c) => !/,server=on(,|$)/.test(c)).map(pathOf);
    assert.deepEqual(qemuBinds, ["/run/vmsilo/work/vmm/qmp.socket"]);
    assert.deepEqual(qemuConnects.sort(), ["/run/vmsilo/work/console-backend.socket", "/run/vmsilo/work/virtiofs/data.socket", "/run/vmsilo/work/virtiofs/home.socket"]);
    // Who else binds which socket, from the units: socat UNIX-LISTEN:, virtiofsd --socket-path, ListenStream=.
    const listeners = new Map<string, string[]>();
    const note = (path: string, unit: string) => listeners.set(path, [...(listeners.get(path) ?? []), unit]);
    for (const f of regularFiles(tree)) {
      if (!f.path.startsWith("lib/systemd/")) continue;
      for (const line of f.content.split("\n")) {
        const listen = /UNIX-LISTEN:([^,\s]+)/.exec(line);
        if (listen && /^ExecStart=/.test(line)) note(listen[1]!, f.path);
        const vfs = /^ExecStart=.*\/bin\/virtiofsd .*--socket-path (\S+)/.exec(line);
        if (vfs) note(vfs[1]!, f.path);
        const stream = /^ListenStream=(\S+)/.exec(line);
        if (stream) note(stream[1]!, f.path);
      }
    }
    for (const s of qemuBinds) assert.deepEqual(listeners.get(s), undefined, `${s} is qemu's own`);
    const vmUnit = fileAt(tree, "lib/systemd/system/vmsilo-work-vm.service").content;
    for (const s of qemuConnects) {
      const owners = listeners.get(s) ?? [];
      assert.equal(owners.length, 1, `${s}: exactly one listener, got ${owners.join(", ")}`);
      const unit = owners[0]!.split("/").pop()!;
      assert.match(vmUnit, new RegExp(`^Requires=${unit.replace(/[.]/g, "\\.")}$`, "m"), `the VM unit requires ${unit}`);
      assert.match(vmUnit, new RegExp(`^After=${unit.replace(/[.]/g, "\\.")}$`, "m"), `the VM unit starts after ${unit}`);
    }
    // The console device matches the setting, and is the only user of the console chardev.
    const consoleUses = a.filter((w) => w.includes("chardev=console") || w === "chardev:console");
    assert.deepEqual(consoleUses, console === "virtio" ? ["virtconsole,chardev=console"] : ["chardev:console"]);
  }
});

test("refusals name the VM and the option", () => {
  const cases: Array<[string, any, string]> = [
    ["vhostUser", qemuConfig({ vhostUser: [{ type: "net", socket: "/run/x.sock" }] }), "nixosVms.work.vhostUser: not supported by hypervisor qemu: these are crosvm `--vhost-user` devices; attach qemu devices with qemu.extraArgs instead"],
    ["disk options", qemuConfig({ additionalDisks: [{ path: "/d.img", options: { sparse: false } }] }), "nixosVms.work.additionalDisks[0].options: not supported by hypervisor qemu: these are crosvm `--block` keys (sparse); remove them"],
    ["vfio options", qemuConfig({ qemu: { machine: "q35" }, pciDevices: [{ path: "01:00.0", options: { iommu: "viommu" } }] }), "nixosVms.work.pciDevices[0].options: not supported by hypervisor qemu: these are crosvm `--vfio` keys; remove them"],
    ["cloud-hypervisor settings", qemuConfig({ cloudHypervisor: { extraArgs: ["-v"] } }), "nixosVms.work.cloudHypervisor.extraArgs: applies to cloud-hypervisor only, but this VM's hypervisor is qemu; remove it or use qemu.extraArgs"],
    ["global tcg with host cpu", qemuConfig({ qemu: { cpu: "host,+x2apic" } }, { qemu: { accel: "tcg" } }), 'nixosVms.work.qemu.cpu: must not be "host" with accel "tcg" (qemu\'s host CPU model needs KVM); use "qemu64" or "max", or leave it null'],
    ["9p tag too long", qemuConfig({ qemu: { shares9p: { ["t".repeat(32)]: { path: "/srv" } } } }), `nixosVms.work.qemu.shares9p.${"t".repeat(32)}: tag must be at most 31 characters for 9p (qemu's mount_tag limit), got 32`],
    ["9p tag also virtio-fs", qemuConfig({ sharedDirectories: { data: { path: "/a" } }, qemu: { shares9p: { data: { path: "/b" } } } }), 'nixosVms.work.qemu.shares9p.data: tag "data" is also a virtio-fs share of this VM; the guest could not tell them apart, rename one'],
    [
      "too many virtio-mmio devices",
      qemuConfig({ additionalDisks: Array.from({ length: 23 }, (_, i) => ({ path: `/d${i}.img` })) }),
      'nixosVms.work.qemu.machine: the microvm machine has 24 virtio-mmio slots, but this VM needs 27 (console, disks, shares, vsock, balloon, interfaces); set qemu.machine = "q35"',
    ],
    ["root createSize", qemuConfig({ rootDisk: { path: "/r.img", createSize: "1G" } }), 'nixosVms.work.rootDisk.createSize: must be null: the root image is built by Nix, never created empty (createSize is for additionalDisks), got "1G"'],
    ["read-only createSize", qemuConfig({ additionalDisks: [{ path: "/d.img", ro: true, createSize: "1G" }] }), "nixosVms.work.additionalDisks[0].createSize: must be null for a read-only disk (ro = true): an empty image it cannot write is of no use"],
    ["tap fields on user", qemuConfig({ network: { interfaces: { u: { type: "user", tap: { name: "t0", bridge: null } } } } }), 'nixosVms.work.network.interfaces.u.tap.name: must be null for a user-mode interface (type = "user" has no host tap), got "t0"'],
    ["forwards on a tap", qemuConfig({ network: { interfaces: { t: { forwardPorts: [{ host: { port: 1 }, guest: { port: 2 } }] } } } }), 'nixosVms.work.network.interfaces.t.forwardPorts: applies to user-mode interfaces only (type = "user"); a tap interface forwards nothing, got 1 forward'],
    ["udp guest forward", qemuConfig({ network: { interfaces: { u: { type: "user", forwardPorts: [{ from: "guest", proto: "udp", host: { address: "127.0.0.1", port: 1 }, guest: { address: "10.0.2.9", port: 2 } }] } } } }), 'nixosVms.work.network.interfaces.u.forwardPorts[0].proto: must be "tcp" for a forward from the guest (qemu\'s guestfwd), got "udp"'],
    ["guest forward outside SLiRP", qemuConfig({ network: { interfaces: { u: { type: "user", forwardPorts: [{ from: "guest", host: { address: "127.0.0.1", port: 1 }, guest: { address: "192.168.1.9", port: 2 } }] } } } }), 'nixosVms.work.network.interfaces.u.forwardPorts[0].guest.address: must be an address of the user-mode network 10.0.2.0/24 for a forward from the guest, got "192.168.1.9"'],
    ["no qemu program", Object.assign(qemuConfig(), { programs: { ...qemuConfig().programs, qemu: null } }), 'programs.qemu: is required by hypervisor "qemu" of VM "work", got null'],
    ["vm-exec without kernel", qemuConfig({}, { vmExec: { enable: true, initramfs: "/i" } }), "vmExec.kernel: is required when vmExec.enable is true, got null"],
    ["vm-exec without virtiofsd", Object.assign(qemuConfig({}, { vmExec: { enable: true, kernel: "/k", initramfs: "/i" } }), { programs: { ...qemuConfig().programs, virtiofsd: null } }), "programs.virtiofsd: is required by vmExec.enable (the store is shared with virtiofs), got null"],
  ];
  for (const [what, config, expected] of cases) assert.ok(issues(config).includes(expected), `${what}:\n  want ${expected}\n  got  ${issues(config).join("\n       ")}`);
  // A crosvm VM with qemu's sections set: each one named.
  const c = example("minimal") as any;
  c.nixosVms.work.qemu = { vsock: false, shares9p: { a: { path: "/a" } }, extraArgs: ["-s"] };
  assert.deepEqual(
    issues(c),
    ["vsock", "shares9p", "extraArgs"].map((k) => `nixosVms.work.qemu.${k}: applies to qemu only, but this VM's hypervisor is crosvm; remove it or set hypervisor = "qemu"`),
  );
});

test("the same qemu configuration in another key order renders byte-identical trees", () => {
  const config = qemuConfig({
    sharedDirectories: { b: { path: "/b" }, a: { path: "/a" } },
    qemu: { shares9p: { z: { path: "/z" }, y: { path: "/y" } } },
    network: { interfaces: { u2: { type: "user" }, u1: { type: "user", forwardPorts: [{ host: { port: 80 }, guest: { port: 8080 } }] } } },
  }, { vmExec: { enable: true, kernel: "/k", initramfs: "/i" } });
  const reversed = JSON.parse(JSON.stringify(config), (_k, v) => (v && typeof v === "object" && !Array.isArray(v) ? Object.fromEntries(Object.entries(v).reverse()) : v));
  const a = render(config);
  const b = render(reversed);
  assert.deepEqual([...a.keys()], [...b.keys()]);
  assert.deepEqual([...b.entries()], [...a.entries()]);
});

/** A fake qemu QMP server on `path`: greets, answers commands per `answer`, records what it got. */
function fakeQmp(path: string, answer: (cmd: string) => string | null) {
  const got: string[] = [];
  const server = createServer((s: Socket) => {
    s.write('{"QMP": {"version": {"qemu": {"micro": 0, "minor": 1, "major": 10}}, "capabilities": []}}\r\n');
    let buf = "";
    s.on("data", (d) => {
      buf += d.toString();
      let nl;
      while ((nl = buf.indexOf("\n")) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        const cmd = JSON.parse(line).execute as string;
        got.push(cmd);
        const a = answer(cmd);
        if (a !== null) s.write(`{"timestamp": {"seconds": 1, "microseconds": 2}, "event": "NOISE"}\r\n${a}\r\n`);
      }
    });
    s.on("error", () => {});
  });
  server.listen(path);
  return { server, got, ready: once(server, "listening") };
}

async function runAsync(argv: string[], env: Record<string, string> = {}) {
  const child = spawn("timeout", ["30", ...argv], { env: { ...process.env, ...env } });
  let stderr = "";
  child.stderr.setEncoding("utf8").on("data", (d: string) => (stderr += d));
  const started = Date.now();
  const [status] = (await once(child, "close")) as [number];
  return { status, stderr, ms: Date.now() - started };
}

test("the QMP client: capabilities, then the command; errors and silence fail with what happened (D9, D12)", async (t) => {
  if (!have("socat")) {
    console.log("SKIP: socat not installed (apt-get install socat)");
    return t.skip("socat not installed");
  }
  const dir = tempDir("qmp");
  const config = qemuConfig({}, { startTimeout: 1 });
  config.programs.socat = "/usr";
  config.programs.bash = "/usr";
  const out = join(dir, "out");
  writeTree(render(config, out), out);
  const qmp = join(out, "libexec", "vmsilo", "qmp");

  const ok = fakeQmp(join(dir, "ok.socket"), () => '{"return": {}}');
  await ok.ready;
  let r = await runAsync([qmp, join(dir, "ok.socket"), "system_powerdown"]);
  assert.equal(r.status, 0, r.stderr);
  assert.deepEqual(ok.got, ["qmp_capabilities", "system_powerdown"]);
  ok.server.close();

  const err = fakeQmp(join(dir, "err.socket"), (c) => (c === "qmp_capabilities" ? '{"return": {}}' : '{"error": {"class": "GenericError", "desc": "nope"}}'));
  await err.ready;
  r = await runAsync([qmp, join(dir, "err.socket"), "quit"]);
  assert.equal(r.status, 1);
  assert.match(r.stderr, /QMP quit on .* failed: \{"error": \{"class": "GenericError", "desc": "nope"\}\}/);
  err.server.close();

  const mute = fakeQmp(join(dir, "mute.socket"), (c) => (c === "qmp_capabilities" ? '{"return": {}}' : null));
  await mute.ready;
  r = await runAsync([qmp, join(dir, "mute.socket"), "system_powerdown"]);
  assert.equal(r.status, 1);
  const m = /no answer to QMP system_powerdown on \S+ within (\d+) ms \(limit 1 s\)/.exec(r.stderr);
  assert.ok(m, r.stderr);
  assert.ok(Number(m[1]) >= 900 && r.ms < 4000, `waited ${m[1]} ms, ran ${r.ms} ms`);
  mute.server.close();

  r = await runAsync([qmp, join(dir, "none.socket"), "quit"]);
  assert.equal(r.status, 1);
  assert.match(r.stderr, /no QMP socket at .*none\.socket/);
  for (const bad of [[], ["x"], [join(dir, "ok.socket"), "quit; reboot"]]) assert.equal((await runAsync([qmp, ...bad])).status, 2);
});

test("create-disk: makes a missing raw (sparse) or qcow2 image once, never touches an existing one", () => {
  const dir = tempDir("create-disk");
  const config = qemuConfig({ additionalDisks: [{ path: "/x.qcow2", format: "qcow2", createSize: "1G" }] });
  // The real tools: coreutils, and qemu-img when this machine has it.
  const core = join(dir, "core", "bin");
  mkdirSync(core, { recursive: true });
  for (const tool of ["rm", "truncate", "mv"]) symlinkSync(spawnSync("sh", ["-c", `command -v ${tool}`], { encoding: "utf8" }).stdout.trim(), join(core, tool));
  config.programs.coreutils = join(dir, "core");
  config.programs.bash = "/usr";
  config.programs.qemu = "/usr";
  const out = join(dir, "out");
  writeTree(render(config, out), out);
  const create = (...args: string[]) => spawnSync(join(out, "libexec", "vmsilo", "create-disk"), args, { encoding: "utf8" });
  const raw = join(dir, "disk.raw");
  let r = create("raw", raw, "64M");
  assert.equal(r.status, 0, r.stderr);
  assert.equal(statSync(raw).size, 64 << 20);
  assert.ok(statSync(raw).blocks * 512 < 1 << 20, "sparse");
  writeFileSync(raw, "keep");
  r = create("raw", raw, "64M");
  assert.equal(r.status, 0);
  assert.equal(readFileSync(raw, "utf8"), "keep", "an existing image is never touched");
  for (const bad of [["raw", "relative.img", "1G"], ["raw", raw, "1 G"], ["vdi", join(dir, "x"), "1G"], ["raw", raw]]) assert.equal(create(...bad).status, 2, bad.join(" "));
  assert.ok(!existsSync(join(dir, "x")));
  if (!have("qemu-img")) {
    console.log("SKIP: qemu-img not installed (apt-get install qemu-utils): the qcow2 half of create-disk");
    return;
  }
  const q = join(dir, "disk.qcow2");
  r = create("qcow2", q, "1G");
  assert.equal(r.status, 0, r.stderr);
  const info = JSON.parse(spawnSync("qemu-img", ["info", "--output=json", q], { encoding: "utf8" }).stdout);
  assert.equal(info.format, "qcow2");
  assert.equal(info["virtual-size"], 1 << 30);
  assert.ok(!existsSync(`${q}.vmsilo-new`));
});
