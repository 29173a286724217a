/**
 * The cloud-hypervisor driver without upstream data: refusals at validation (D11, with the VM and
 * option named), the JSON config's derivation, the launch and stop artifacts, the console topology of
 * every hypervisor (D10), the per-hypervisor agent transport, and the hybrid-vsock connector run
 * against a fake cloud-hypervisor vsock muxer. Each fixed defect of ORIGINAL.md §E has a test here or in
 * test/contract/cloud-hypervisor.test.ts (which runs the launcher against stub programs).
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { ConfigError, resolve } from "../../src/generate.js";
import * as validateModule from "../../src/config/validate.js";
import { driverFor } from "../../src/hypervisors/index.js";
import { agentTransportOf, consoleBackendOf, launchPlanOf } from "../../src/hypervisors/driver.js";
import { baseConfig, chConfig, CORE_SCHEDULING, mergeConfig, VERBOSITY } from "../../src/hypervisors/cloud-hypervisor.js";
import { parseUnit } from "../../src/systemd/unit.js";
import { parseSystemdExec } from "../contract/crosvm-contract.js";
import { example, EXAMPLES, fileAt, render } from "../support/harness.js";
import type { FileTree } from "../../src/render/files.js";

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Json = any;

const CH = "/nix/store/5e1z9g4e7y5b8s0h2it1k3f5a7m9o0p2-cloud-hypervisor-53.0";

/** minimal.json with its VM `work` on cloud-hypervisor (every program of desktop.json present), `extra` merged in. */
function chMinimal(extra: Json = {}, global: Json = {}): Json {
  const c: Json = example("minimal");
  c.programs = { ...(example("desktop") as Json).programs, cloudHypervisor: CH };
  c.cloudHypervisor = { version: "53.0", ...global };
  Object.assign(c.nixosVms.work, { hypervisor: "cloud-hypervisor" }, extra);
  return c;
}

function refused(c: Json): string[] {
  try {
    resolve(c);
  } catch (e) {
    if (e instanceof ConfigError) return e.issues.map((i) => `${i.path}: ${i.message}`);
    throw e;
  }
  assert.fail("expected the configuration to be refused");
}

const work = (c: Json) => {
  const m = resolve(c);
  return { m, vm: m.vms.find((v) => v.name === "work")! };
};

const unit = (tree: FileTree, name: string) => parseUnit(fileAt(tree, `lib/systemd/system/${name}`).content);
const keys = (entries: ReturnType<typeof parseUnit>, section: string, key: string) => entries.filter((e) => e.section === section && e.key === key).map((e) => e.value);

// ------------------------------------------------------------------------------------------------
// Refusals (D11)

test("refused for cloud-hypervisor VMs, each with the VM and option named: crosvm-only options", () => {
  const c = chMinimal({
    vhostUser: [{ type: "net", socket: "/run/net.sock" }],
    pciDevices: [{ path: "03:00.0", options: { iommu: "viommu" } }],
    rootDisk: { path: "/root.img", options: { "block-size": 4096, direct: false } },
    additionalDisks: [{ path: "/data.img", options: { sparse: false, "packed-queue": true } }],
    crosvm: { logLevel: "debug", extraArgs: ["--x"], extraRunArgs: ["--y"] },
  });
  const reason = "not supported by cloud-hypervisor";
  assert.deepEqual(refused(c), [
    `nixosVms.work.vhostUser: ${reason} (these are crosvm \`--vhost-user\` devices; cloud-hypervisor VMs get GPU, sound and shares from their own options)`,
    `nixosVms.work.pciDevices[0].options.iommu: ${reason} (a crosvm \`--vfio\` key; cloud-hypervisor takes the device path only)`,
    `nixosVms.work.rootDisk.options.block-size: ${reason} (a crosvm \`--block\` key; cloud-hypervisor VMs take only direct and sparse here, anything else through cloudHypervisor.extraConfig)`,
    `nixosVms.work.additionalDisks[0].options.packed-queue: ${reason} (a crosvm \`--block\` key; cloud-hypervisor VMs take only direct and sparse here, anything else through cloudHypervisor.extraConfig)`,
    `nixosVms.work.crosvm.logLevel: ${reason} (a crosvm option; set cloudHypervisor.logLevel)`,
    `nixosVms.work.crosvm.extraArgs: ${reason} (crosvm options; use cloudHypervisor.extraArgs)`,
    `nixosVms.work.crosvm.extraRunArgs: ${reason} (crosvm options; use cloudHypervisor.extraArgs or cloudHypervisor.extraConfig)`,
  ]);
});

test("GPU and sound need cloud-hypervisor 52 (generic_vhost_user): refused when the version is older or unknown", () => {
  const gpuSound = { gpu: true, sound: { playback: true, capture: false } };
  assert.deepEqual(refused(chMinimal(gpuSound, { version: "51.1" })), [
    'nixosVms.work.gpu: needs cloud-hypervisor 52 or later (the GPU is a generic_vhost_user device, virtio type 16), but cloudHypervisor.version is "51.1"',
    'nixosVms.work.sound: needs cloud-hypervisor 52 or later (sound is a generic_vhost_user device, virtio type 25), but cloudHypervisor.version is "51.1"',
  ]);
  assert.deepEqual(refused(chMinimal({ gpu: true }, { version: null })), [
    "nixosVms.work.gpu: needs cloud-hypervisor 52 or later (the GPU is a generic_vhost_user device, virtio type 16), and cloudHypervisor.version is not set; set it to the version of programs.cloudHypervisor",
  ]);
  for (const version of ["52.0", "53.0", "100.1-unstable-2027-01-01"]) assert.doesNotThrow(() => resolve(chMinimal(gpuSound, { version })), version);
  // Without GPU or sound the version does not matter.
  assert.doesNotThrow(() => resolve(chMinimal({}, { version: null })));
});

test("crosvm VMs refuse cloudHypervisor settings, which would do nothing there", () => {
  const c: Json = example("minimal");
  c.nixosVms.work.cloudHypervisor = { logLevel: "debug", extraArgs: ["-v"], extraConfig: { rng: { src: "/dev/hwrng" } } };
  const why = 'applies to cloud-hypervisor only, but this VM\'s hypervisor is crosvm; remove it or set hypervisor = "cloud-hypervisor"';
  assert.deepEqual(refused(c), [`nixosVms.work.cloudHypervisor.logLevel: ${why}`, `nixosVms.work.cloudHypervisor.extraArgs: ${why}`, `nixosVms.work.cloudHypervisor.extraConfig: ${why}`]);
});

test("programs: cloud-hypervisor VMs need programs.cloudHypervisor; their GPU backend needs crosvm", () => {
  const c = chMinimal({ gpu: true });
  c.programs.cloudHypervisor = null;
  c.programs.crosvm = null;
  assert.deepEqual(refused(c), [
    'programs.crosvm: is required by the GPU backend (crosvm device gpu) of VM "work", got null',
    'programs.cloudHypervisor: is required by hypervisor "cloud-hypervisor" of VM "work", got null',
  ]);
});

test("schema: log levels are the four cloud-hypervisor can be set to; extraConfig is a JSON object; version has a grammar", () => {
  const bad = chMinimal({ cloudHypervisor: { logLevel: "error", extraConfig: [] } }, { version: "v53" });
  assert.deepEqual(refused(bad), [
    'cloudHypervisor.version: must be a version like "53.0" (digits and dots, then an optional -suffix), got "v53"',
    'nixosVms.work.cloudHypervisor.logLevel: must be one of "warn", "info", "debug", "trace", got "error"',
    "nixosVms.work.cloudHypervisor.extraConfig: must be a JSON object, got []",
  ]);
});

// ------------------------------------------------------------------------------------------------
// The JSON config (ORIGINAL.md §B5b, fixed)

test("config: payload, cpus with max_vcpus, memory in bytes, balloon, serial socket, console off, hybrid vsock", () => {
  const { m, vm } = work(chMinimal({ memory: 3072, cpus: 6 }));
  const c = baseConfig(vm, m);
  assert.deepEqual(c.cpus, { boot_vcpus: 6, max_vcpus: 6, core_scheduling: "Vcpu" });
  assert.deepEqual(c.memory, { size: 3072 * 1024 * 1024, shared: false });
  assert.deepEqual(c.balloon, { size: 0, deflate_on_oom: true, free_page_reporting: true });
  assert.deepEqual(c.serial, { mode: "Socket", socket: "/run/vmsilo/work/console-backend.socket" });
  assert.deepEqual(c.console, { mode: "Off" });
  assert.deepEqual(c.vsock, { cid: vm.id, socket: "/run/vmsilo/work/vsock.socket" });
  assert.equal((c.payload as Json).cmdline, ["console=ttyS0", ...vm.kernelParams].join(" "));
  assert.equal((c.payload as Json).kernel, vm.config.kernel);
  assert.equal((c.payload as Json).initramfs, vm.config.initramfs);
  for (const absent of ["net", "fs", "generic_vhost_user", "devices", "gpu", "vhost_user_sound"]) assert.ok(!(absent in c), absent);
});

test("config: core scheduling follows schedulerIsolation (full is per vCPU, not downgraded to per VM)", () => {
  assert.deepEqual(CORE_SCHEDULING, { full: "Vcpu", vm: "Vm", off: "Off" });
  for (const [iso, mode] of Object.entries(CORE_SCHEDULING)) {
    const c = chMinimal();
    c.schedulerIsolation = iso;
    const { m, vm } = work(c);
    assert.equal((baseConfig(vm, m).cpus as Json).core_scheduling, mode);
  }
});

test("config: disks keep their order; the overlay is found by serial, so the kernel parameter names it for both VMMs", () => {
  const { m, vm } = work(chMinimal({ rootOverlay: { type: "raw", size: "5G" }, additionalDisks: [{ path: "/d.img", id: "data", options: { direct: false, sparse: false } }, { path: "/q.qcow2", format: "qcow2" }] }));
  assert.deepEqual(baseConfig(vm, m).disks, [
    { path: vm.config.rootDisk.path, readonly: true, direct: true, image_type: "Raw" },
    { path: "/d.img", readonly: false, direct: false, sparse: false, serial: "data", image_type: "Raw" },
    { path: "/q.qcow2", readonly: false, direct: true, image_type: "Qcow2" },
    { path: "/var/lib/vmsilo/work/ephemeral.raw", readonly: false, direct: true, serial: "ephemeral", image_type: "Raw" },
  ]);
  assert.ok(vm.kernelParams.includes("vmsilo.rootOverlay=raw,ephemeral"));
  assert.ok(!JSON.stringify(chConfig(vm, m)).includes("vdb"), "the original named the overlay by device order (vdb)");
});

test("config: shares, GPU and sound (generic_vhost_user, types 16 and 25), taps, PCI devices; memory shared for vhost-user", () => {
  const { m, vm } = work(
    chMinimal({
      sharedHome: true,
      sharedDirectories: { src: { path: "/src" } },
      gpu: true,
      sound: { playback: false, capture: true },
      pciDevices: [{ path: "03:00.0" }],
      network: { interfaces: { eth0: { dhcp: true }, lan: { dhcp: true, tap: { name: "tap-lan" } } } },
    }),
  );
  const c = baseConfig(vm, m) as Json;
  assert.equal(c.memory.shared, true);
  assert.deepEqual(c.fs, [
    { tag: "home", socket: "/run/vmsilo/work/virtiofs/home.socket", num_queues: 1, queue_size: 1024 },
    { tag: "src", socket: "/run/vmsilo/work/virtiofs/src.socket", num_queues: 1, queue_size: 1024 },
  ]);
  assert.deepEqual(c.generic_vhost_user, [
    { device_type: 16, socket: "/run/vmsilo/work/gpu/gpu.socket", queue_sizes: [256, 16] },
    { device_type: 25, socket: "/run/vmsilo/work/sound/sound.socket", queue_sizes: [64, 64, 64, 64] },
  ]);
  assert.deepEqual(
    c.net,
    vm.interfaces.map((i) => ({ tap: i.tap, mac: i.mac })),
  );
  assert.deepEqual(c.devices, [{ path: "/sys/bus/pci/devices/0000:03:00.0" }]);
});

test("config: extraConfig merges recursively, replaces lists and values, and null removes a key", () => {
  assert.deepEqual(mergeConfig({ a: { b: 1, c: [1, 2] }, d: 1, e: { f: 1 } }, { a: { c: [3], g: true }, d: { x: 1 }, e: null, h: "new" }), { a: { b: 1, c: [3], g: true }, d: { x: 1 }, h: "new" });
  const { m, vm } = work(chMinimal({ cloudHypervisor: { logLevel: null, extraArgs: [], extraConfig: { cpus: { kvm_hyperv: true }, balloon: null, disks: [{ path: "/only.img" }] } } }));
  const c = chConfig(vm, m) as Json;
  assert.deepEqual(c.cpus, { boot_vcpus: 2, max_vcpus: 2, core_scheduling: "Vcpu", kvm_hyperv: true });
  assert.ok(!("balloon" in c));
  assert.deepEqual(c.disks, [{ path: "/only.img" }]);
  // The model's copy is not touched.
  assert.deepEqual(vm.config.cloudHypervisor.extraConfig.disks, [{ path: "/only.img" }]);
});

test("config: extraConfig keys named __proto__ or constructor are data, merged and written like any other", () => {
  const extra = JSON.parse('{"__proto__": {"polluted": true}, "constructor": {"x": 1}, "cpus": {"__proto__": {"y": 2}}}');
  const { m, vm } = work(chMinimal({ cloudHypervisor: { logLevel: null, extraArgs: [], extraConfig: extra } }));
  const c = chConfig(vm, m) as Json;
  assert.equal(Object.getPrototypeOf(c), Object.prototype, "the prototype is not replaced");
  assert.equal(c.polluted, undefined);
  assert.deepEqual(Object.getOwnPropertyDescriptor(c, "__proto__")?.value, { polluted: true });
  assert.deepEqual(c.constructor, { x: 1 });
  assert.deepEqual(Object.getOwnPropertyDescriptor(c.cpus, "__proto__")?.value, { y: 2 });
  assert.equal(c.cpus.boot_vcpus, 2, "the generated keys beside it stay");
  const written = JSON.parse(fileAt(render(chMinimal({ cloudHypervisor: { logLevel: null, extraArgs: [], extraConfig: extra } })), "share/vmsilo/work/cloud-hypervisor.json").content);
  assert.deepEqual(Object.getOwnPropertyDescriptor(written, "__proto__")?.value, { polluted: true });
  assert.equal(({} as Json).polluted, undefined, "Object.prototype is untouched");
});

// ------------------------------------------------------------------------------------------------
// Launcher, stop, units

test("launcher: --api-socket path=, the -v count of the log level, extra arguments after them", () => {
  assert.deepEqual(VERBOSITY, { warn: 0, info: 1, debug: 2, trace: 3 });
  for (const [level, n] of Object.entries(VERBOSITY)) {
    const { m, vm } = work(chMinimal({ cloudHypervisor: { logLevel: level, extraArgs: ["--seccomp", "log"], extraConfig: {} } }, { extraArgs: ["--log-file", "/var/log/ch.log"] }));
    assert.deepEqual(driverFor("cloud-hypervisor").launchCommand(vm, m).flat(), [
      `${CH}/bin/cloud-hypervisor`,
      "--api-socket",
      "path=/run/vmsilo/work/cloud-hypervisor-control.socket",
      ...Array(n).fill("-v"),
      "--log-file",
      "/var/log/ch.log",
      "--seccomp",
      "log",
    ]);
  }
  const { m, vm } = work(chMinimal());
  assert.equal(driverFor("cloud-hypervisor").launchCommand(vm, m).flat().filter((a) => a === "-v").length, 1, "global default info: -v");
  assert.ok(!JSON.stringify(fileAt(render(chMinimal()), "libexec/vmsilo/work/launch").content).includes("RUST_LOG"), "cloud-hypervisor ignores RUST_LOG");
});

test("launch plan: ch-remote takes the plain API socket path; create reads the config on stdin; graceful stop is the power button", () => {
  const { m, vm } = work(chMinimal());
  const d = driverFor("cloud-hypervisor");
  const plan = launchPlanOf(d, vm, m);
  assert.equal(plan.kind, "api");
  if (plan.kind !== "api") return;
  const remote = [`${CH}/bin/ch-remote`, "--api-socket", "/run/vmsilo/work/cloud-hypervisor-control.socket"];
  assert.deepEqual(plan.create, [...remote, "create", "--", "-"]);
  assert.deepEqual(plan.boot, [...remote, "boot"]);
  assert.deepEqual(d.gracefulStopArgv(vm, m), [...remote, "power-button"]);
  assert.deepEqual(d.forceStopArgv(vm, m), [...remote, "shutdown-vmm"]);
  assert.deepEqual(d.ownSockets(vm), ["/run/vmsilo/work/cloud-hypervisor-control.socket", "/run/vmsilo/work/vsock.socket", "/run/vmsilo/work/console-backend.socket"]);
  assert.deepEqual(JSON.parse(plan.config), chConfig(vm, m));
  const tree = render(chMinimal());
  assert.equal(fileAt(tree, plan.configPath).content, plan.config);
  assert.equal(fileAt(tree, plan.configPath).mode, 0o644);
  const launch = fileAt(tree, "libexec/vmsilo/work/launch").content;
  assert.ok(launch.includes(`create -- - <"$config"`), launch);
  assert.ok(launch.includes(`config=/nix/store/00000000000000000000000000000000-vmsilo/${plan.configPath}`));
});

test("fixed: the ephemeral disk is created once, by the unit (ExecStartPre), never by the cloud-hypervisor launcher (E.6)", () => {
  const tree = render(chMinimal({ rootOverlay: { type: "raw", size: "7G" } }));
  const launch = fileAt(tree, "libexec/vmsilo/work/launch").content;
  const code = launch.split("\n").filter((l) => !l.startsWith("#"));
  assert.deepEqual(code.filter((l) => /truncate|ephemeral/.test(l)), [], "the launcher must not touch the overlay disk");
  const vmUnit = unit(tree, "vmsilo-work-vm.service");
  const creators = keys(vmUnit, "Service", "ExecStartPre").filter((v) => v.includes("/bin/truncate "));
  assert.deepEqual(creators, ["/nix/store/1f4m7i0c5h3dg2yqvbqvnxhy04d8v5bx-coreutils-9.8/bin/truncate -s 7G -- /var/lib/vmsilo/work/ephemeral.raw"]);
});

test("fixed: waits are deadline-based on the one constant, and say the real time waited (E.4)", () => {
  const c = chMinimal();
  c.startTimeout = 17;
  const tree = render(c);
  const launch = fileAt(tree, "libexec/vmsilo/work/launch").content;
  assert.match(launch, /deadline=\$\(\(start \+ 17 \* 1000000\)\)/);
  assert.match(launch, /within \$\(\(\(now - start\) \/ 1000\)\) ms \(limit 17 s\)/);
  assert.ok(!/ELAPSED|\b60\b/.test(launch), "no iteration counting");
  const proxy = unit(tree, "vmsilo-work@.service");
  assert.deepEqual(keys(proxy, "Service", "ExecStart"), ["/nix/store/dt9x7e2c5w3z6q8f0gr9i1d3y5k7m8n0-vmsilo-tools-0.1.0/bin/vmsilo-vsock-proxy --timeout 17 --hybrid /run/vmsilo/work/vsock.socket:5000"]);
  const vmUnit = unit(tree, "vmsilo-work-vm.service");
  assert.deepEqual(keys(vmUnit, "Service", "TimeoutStartSec"), ["32"]);
});

test("VM unit: Type=notify (the launcher reports readiness after boot), sockets removed after stop, relay wanted not required", () => {
  const tree = render(chMinimal());
  const u = unit(tree, "vmsilo-work-vm.service");
  assert.deepEqual(keys(u, "Service", "Type"), ["notify"]);
  assert.deepEqual(keys(u, "Service", "NotifyAccess"), ["all"]);
  assert.deepEqual(keys(u, "Service", "ExecStopPost")[0], "/nix/store/1f4m7i0c5h3dg2yqvbqvnxhy04d8v5bx-coreutils-9.8/bin/rm -f -- /run/vmsilo/work/cloud-hypervisor-control.socket /run/vmsilo/work/vsock.socket /run/vmsilo/work/console-backend.socket");
  assert.deepEqual(keys(u, "Unit", "Wants"), ["vmsilo-work-console-relay.service"]);
  assert.ok(!keys(u, "Unit", "Requires").includes("vmsilo-work-console-relay.service"));
  assert.ok(!keys(u, "Unit", "After").includes("vmsilo-work-console-relay.service"));
  const launch = fileAt(tree, "libexec/vmsilo/work/launch").content;
  assert.ok(launch.includes("/bin/systemd-notify --ready"));
  assert.ok(launch.includes("/bin/chown -h 1000:100 -- /run/vmsilo/work/vsock.socket"), "the user's proxy reaches the hybrid socket");
});

test("no persistent-USB unit for cloud-hypervisor VMs: USB does not exist in schema version 1 yet (E.7)", () => {
  const tree = render(chMinimal());
  assert.deepEqual([...tree.keys()].filter((p) => /usb/i.test(p)), []);
});

// ------------------------------------------------------------------------------------------------
// D10: the console topology of every hypervisor, from the generated artifacts

/** Who listens on the console backend socket: the relay (UNIX-LISTEN) and/or the VMM (from its own config). */
function consoleListeners(tree: FileTree, vmName: string, hypervisor: string): { relay: "listens" | "connects"; vmm: "listens" | "connects"; relayOrder: "before" | "after" } {
  const backend = `/run/vmsilo/${vmName}/console-backend.socket`;
  const relay = unit(tree, `vmsilo-${vmName}-console-relay.service`);
  const exec = parseSystemdExec(keys(relay, "Service", "ExecStart")[0]!)[0]!.argv;
  const addr = exec.find((a) => a.includes(backend))!;
  assert.ok(addr, `the relay of ${vmName} names ${backend}: ${exec.join(" ")}`);
  const relayRole = addr.startsWith("UNIX-LISTEN:") ? "listens" : addr.startsWith("UNIX-CONNECT:") ? "connects" : assert.fail(addr);
  let vmm: "listens" | "connects";
  if (hypervisor === "crosvm") {
    // crosvm's unix-stream serial connects to its path (devices/src/serial_device.rs, SerialType::UnixStream).
    const manifest = JSON.parse(fileAt(tree, "share/vmsilo/manifest.json").content);
    const argv: string[] = manifest.vms[vmName].launchArgv;
    const serial = argv[argv.indexOf("--serial") + 1]!;
    assert.match(serial, /type=unix-stream/);
    assert.ok(serial.includes(`path=${backend}`));
    vmm = "connects";
  } else {
    // cloud-hypervisor's serial in Socket mode binds and listens (vmm/src/console_devices.rs: UnixListener::bind).
    const config = JSON.parse(fileAt(tree, `share/vmsilo/${vmName}/cloud-hypervisor.json`).content);
    assert.deepEqual(config.serial, { mode: "Socket", socket: backend });
    assert.notEqual(config.console?.mode, "Socket");
    vmm = "listens";
  }
  const before = keys(relay, "Unit", "Before").includes(`vmsilo-${vmName}-vm.service`);
  const after = keys(relay, "Unit", "After").includes(`vmsilo-${vmName}-vm.service`);
  assert.ok(before !== after, "the relay is ordered on exactly one side of the VMM");
  return { relay: relayRole, vmm, relayOrder: before ? "before" : "after" };
}

test("D10, fixed (E.7): exactly one side listens on each VM's console socket, and the listener is up first", () => {
  const trees: Array<[string, FileTree, Json]> = [...EXAMPLES.map((n) => [n, render(example(n)), example(n)] as [string, FileTree, Json]), ["cloud-hypervisor minimal", render(chMinimal()), chMinimal()]];
  const seen = new Set<string>();
  for (const [name, tree, config] of trees) {
    for (const [vmName, vm] of Object.entries<Json>(config.nixosVms)) {
      const h = vm.hypervisor ?? "crosvm";
      // Other hypervisors prove their own topology with their drivers' tests.
      if (h !== "crosvm" && h !== "cloud-hypervisor") continue;
      seen.add(h);
      const t = consoleListeners(tree, vmName, h);
      assert.notEqual(t.relay, t.vmm, `${name}/${vmName}: relay ${t.relay}, ${h} ${t.vmm}`);
      assert.equal(t.relayOrder, t.relay === "listens" ? "before" : "after", `${name}/${vmName}: the listener starts first`);
      assert.equal(consoleBackendOf(driverFor(h)), t.vmm, `${name}/${vmName}: the driver says what its VMM does`);
    }
  }
  assert.deepEqual([...seen].sort(), ["cloud-hypervisor", "crosvm"]);
});

// ------------------------------------------------------------------------------------------------
// Agent transport, vm-shell

test("agent transport per hypervisor: AF_VSOCK to the CID for crosvm, the hybrid socket for cloud-hypervisor", () => {
  const c = chMinimal();
  c.nixosVms.other = { ...(example("minimal") as Json).nixosVms.work };
  const m = resolve(c);
  const [other, w] = [m.vms.find((v) => v.name === "other")!, m.vms.find((v) => v.name === "work")!];
  assert.deepEqual(agentTransportOf(driverFor("crosvm"), other), { kind: "vsock", cid: other.id });
  assert.deepEqual(agentTransportOf(driverFor("cloud-hypervisor"), w), { kind: "hybrid", socket: "/run/vmsilo/work/vsock.socket" });
  const tree = render(c);
  assert.match(keys(unit(tree, "vmsilo-other@.service"), "Service", "ExecStart")[0]!, new RegExp(`vmsilo-vsock-proxy --timeout 30 --vsock ${other.id}:5000$`));
  // The ssh channel: the same transport as the command channel, port 22.
  assert.match(keys(unit(tree, "vmsilo-other_ssh@.service"), "Service", "ExecStart")[0]!, new RegExp(`vmsilo-vsock-proxy --timeout 30 --vsock ${other.id}:22$`));
  assert.deepEqual(keys(unit(tree, "vmsilo-work_ssh@.service"), "Service", "ExecStart"), ["/nix/store/dt9x7e2c5w3z6q8f0gr9i1d3y5k7m8n0-vmsilo-tools-0.1.0/bin/vmsilo-vsock-proxy --timeout 30 --hybrid /run/vmsilo/work/vsock.socket:22"]);
  const shell = fileAt(tree, "bin/vm-shell").content;
  for (const vm of ["work", "other"]) assert.ok(shell.includes(`proxy='ProxyCommand=/nix/store/3cz0gcrc4xks9r1jycm3ypxjqh8qz9j8-socat-1.8.0.3/bin/socat - UNIX-CONNECT:/run/vmsilo/${vm}/ssh.socket'`), shell);
});

test("schema defaults: global cloudHypervisor { logLevel info, no extra arguments, version unknown }, per VM nothing set", () => {
  const { validate } = validateModule;
  const r = validate(example("minimal"));
  assert.deepEqual(r.issues, []);
  assert.deepEqual(r.config!.cloudHypervisor, { logLevel: "info", extraArgs: [], version: null });
  assert.deepEqual(r.config!.nixosVms.work!.cloudHypervisor, { logLevel: null, extraArgs: [], extraConfig: {} });
  assert.equal(r.config!.programs.cloudHypervisor, null);
});
