/**
 * The USB broker (agent/vmsilo-usb-broker.c) against a fake sysfs and /dev/bus/usb and crosvm
 * stand-ins that keep their ports (support.ts): moves, refusals of every hostile input with its
 * reason, persistent devices, clean-up, and 200 concurrent operations whose end state is the
 * stand-ins' own while the state file stays valid JSON throughout.
 */
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { readFileSync, existsSync, readdirSync, writeFileSync } from "node:fs";
import { VMM_DIR, checkCrosvmArgv, loadCrosvmCli } from "../contract/crosvm-contract.js";
import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { UsbWorld, usbVm, type FakeDevice } from "./support.js";

const MOUSE: FakeDevice = { devpath: "1-3.2", vid: "046d", pid: "c52b", busnum: 1, devnum: 4, serial: "AB:CD:EF", manufacturer: "Logitech", product: "Receiver" };
const STICK: FakeDevice = { devpath: "2-1", vid: "0781", pid: "5567", busnum: 2, devnum: 7, serial: "4C530001" };
const HUB: FakeDevice = { devpath: "1-1", vid: "05e3", pid: "0610", busnum: 1, devnum: 2, hub: true };

let w: UsbWorld;
const root = process.getuid?.() === 0;

before(async () => {
  if (!root) return;
  w = new UsbWorld({
    work: usbVm({ usbDevices: [{ vendorId: "0781", productId: "5567", serial: "4C530001" }] }),
    personal: usbVm(),
    web: usbVm({ hypervisor: "cloud-hypervisor" }),
    plain: usbVm({ hypervisor: "qemu", qemu: { machine: "q35" } }),
  });
  for (const d of [MOUSE, STICK, HUB]) w.plug(d);
  await w.startCrosvm("work");
  await w.startCrosvm("personal");
});
after(() => w?.close());

const ok = (r: { status: number | null; stdout: string; stderr?: string }, re: RegExp) => {
  assert.equal(r.status, 0, `${r.stdout}${r.stderr ?? ""}`);
  assert.match(r.stdout, re);
};
const refused = (r: { status: number | null; stdout: string; stderr?: string }, re: RegExp) => {
  assert.equal(r.status, 1, `${r.stdout}${r.stderr ?? ""}`);
  assert.match(r.stdout, re);
};

test("attach, again, move to another VM, detach: the stand-ins' ports and the state agree, and the CLI gets the result", { skip: !root && "needs root (mknod)" }, () => {
  ok(w.broker_(["attach", "work:1-3.2"]), /^Attached 046d:c52b \(1-3\.2\) to work on port 1$/m);
  assert.equal(w.ports("work"), "devices 1 046d c52b");
  assert.deepEqual(w.state(), [{ vm: "work", devpath: "1-3.2", vid: "046d", pid: "c52b", serial: "AB:CD:EF", busnum: "1", devnum: "4", port: 1, qdev: null }]);
  assert.equal(readFileSync(join(w.run, "usb-results", "attach-work:1-3.2"), "utf8"), "0 Attached 046d:c52b (1-3.2) to work on port 1\n");
  ok(w.broker_(["attach", "work:1-3.2"]), /already attached to work/);
  assert.equal(w.ports("work"), "devices 1 046d c52b");
  // Into another VM: out of the first one first.
  ok(w.broker_(["attach", "personal:1-3.2"]), /to personal on port 1/);
  assert.equal(w.ports("work"), "devices");
  assert.equal(w.ports("personal"), "devices 1 046d c52b");
  refused(w.broker_(["detach", "work:1-3.2"]), /^Error: device 1-3\.2 is not attached to work$/m);
  ok(w.broker_(["detach", "personal:1-3.2"]), /^Detached 046d:c52b \(1-3\.2\) from personal$/m);
  assert.equal(w.ports("personal"), "devices");
  assert.deepEqual(w.state(), []);
});

test("every hostile instance is refused with its reason, and nothing moves", { skip: !root && "needs root (mknod)" }, () => {
  const cases: Array<[string, RegExp]> = [
    ["../work:1-3.2", /is not VM:BUSPATH/],
    ["work:../../1-3.2", /is not VM:BUSPATH/],
    ["work:1-3.2/../2-1", /is not VM:BUSPATH/],
    ["work:1-3.2\n", /is not VM:BUSPATH/],
    ["work%2f:1-3.2", /is not VM:BUSPATH/],
    ["work:1-3.2:1.0", /is not VM:BUSPATH/],
    ["work:01-3", /is not VM:BUSPATH/],
    ["Work:1-3.2", /is not VM:BUSPATH/],
    ["work:1-3.2.1.1.1.1.1.1", /is not VM:BUSPATH/],
    [":1-3.2", /is not VM:BUSPATH/],
    ["work:", /is not VM:BUSPATH/],
    ["work", /is not VM:BUSPATH/],
    ["work:1-3.256", /is not VM:BUSPATH/],
    ["mallory:1-3.2", /^Error: mallory is not a configured VM$/m],
    ["web:1-3.2", /^Error: VM web uses cloud-hypervisor, which has no USB passthrough$/m],
    ["plain:1-3.2", /^Error: VM plain has no USB controller/m],
    ["work:3-9", /^Error: no USB device at 3-9$/m],
    ["work:1-1", /^Error: 1-1 is a USB hub/m],
  ];
  for (const [inst, why] of cases) {
    const r = w.broker_(["attach", inst]);
    assert.equal(r.status, 1, `${JSON.stringify(inst)}: ${r.stdout}${r.stderr}`);
    assert.match(r.stdout, why, JSON.stringify(inst));
    assert.doesNotMatch(r.stdout, /\n./, `${JSON.stringify(inst)}: one line`);
  }
  assert.equal(w.broker_(["attach", "work:1-3.2", "extra"]).status, 2);
  assert.equal(w.broker_(["frobnicate", "work:1-3.2"]).status, 2);
  assert.equal(w.ports("work"), "devices");
  assert.deepEqual(w.state(), []);
});

test("a device node that is not the device sysfs names is refused (a link, a file, another device)", { skip: !root && "needs root (mknod)" }, () => {
  for (const forged of ["symlink", "file", "other-device"] as const) {
    w.forgeNode(MOUSE, forged);
    refused(w.broker_(["attach", "work:1-3.2"]), /is not the character device 189:3 that sysfs names for 1-3\.2/);
  }
  w.plug(MOUSE);
  assert.equal(w.ports("work"), "devices");
});

test("a VM that is not running is refused; its crash's clean-up forgets its devices", { skip: !root && "needs root (mknod)" }, async () => {
  ok(w.broker_(["attach", "personal:1-3.2"]), /to personal/);
  w.stopCrosvm("personal");
  refused(w.broker_(["attach", "personal:2-1"]), /^Error: VM personal is not running$/m);
  ok(w.broker_(["cleanup", "personal"]), /Forgot 1 USB device\(s\) of personal/);
  assert.deepEqual(w.state(), []);
  await w.startCrosvm("personal");
});

test("find (the CLI's lookup) matches VID:PID in any case; refuses what is neither form", { skip: !root && "needs root (mknod)" }, () => {
  ok(w.broker_(["find", "attach", "work", "046D:C52B"]), /^1-3\.2\n$/);
  ok(w.broker_(["find", "attach", "work", "2-1"]), /^2-1\n$/);
  refused(w.broker_(["find", "attach", "work", "dead:beef"]), /^$/);
  assert.equal(w.broker_(["find", "attach", "work", "046d-c52b"]).status, 2);
  assert.equal(w.broker_(["find", "attach", "work", "../1-3"]).status, 2);
  refused(w.broker_(["find", "detach", "work", "046d:c52b"]), /^$/);
});

test("list: every device, hubs too, with its VM; --json", { skip: !root && "needs root (mknod)" }, () => {
  ok(w.broker_(["attach", "work:2-1"]), /to work/);
  const list = JSON.parse(w.broker_(["list", "--json"]).stdout) as Array<Record<string, unknown>>;
  assert.deepEqual(list.map((d) => [d.devpath, d.vid, d.pid, d.vm]), [["1-1", "05e3", "0610", null], ["1-3.2", "046d", "c52b", null], ["2-1", "0781", "5567", "work"]]);
  assert.equal(list[1]!.serial, "AB:CD:EF");
  const table = w.broker_(["list"]).stdout;
  assert.match(table, /^VID:PID +BUS-PATH +SERIAL +MANUFACTURER +PRODUCT +VM$/m);
  assert.match(table, /^0781:5567 +2-1 +4C530001 +- +- +work$/m);
  ok(w.broker_(["detach", "work:2-1"]), /Detached/);
});

test("persist: the VM's configured device (serial matched) is attached, others and a device in another VM are not", { skip: !root && "needs root (mknod)" }, () => {
  ok(w.broker_(["persist", "work"]), /Attached 0781:5567 \(2-1\) to work/);
  assert.equal(w.ports("work"), "devices 1 0781 5567");
  // Again (udev saw another plug-in): nothing to do.
  const again = w.broker_(["persist", "work"]);
  assert.equal(again.status, 0);
  assert.equal(w.ports("work"), "devices 1 0781 5567");
  ok(w.broker_(["detach", "work:2-1"]), /Detached/);
  // The device the user moved elsewhere stays there.
  ok(w.broker_(["attach", "personal:2-1"]), /to personal/);
  assert.equal(w.broker_(["persist", "work"]).status, 0);
  assert.equal(w.ports("work"), "devices");
  ok(w.broker_(["detach", "personal:2-1"]), /Detached/);
  // Another serial is another device.
  w.plug({ ...STICK, serial: "OTHER" });
  assert.equal(w.broker_(["persist", "work"]).status, 0);
  assert.equal(w.ports("work"), "devices");
  w.plug(STICK);
});

test("a VMM that refuses (no free port) is a failure, and the state does not claim the device", { skip: !root && "needs root (mknod)" }, () => {
  const many: FakeDevice[] = Array.from({ length: 9 }, (_, i) => ({ devpath: `3-${i + 1}`, vid: "1234", pid: `a00${i}`, busnum: 3, devnum: 10 + i }));
  for (const d of many) w.plug(d);
  for (const d of many.slice(0, 8)) ok(w.broker_(["attach", `work:${d.devpath}`]), /Attached/);
  refused(w.broker_(["attach", "work:3-9"]), /crosvm usb attach of 3-9 to work failed: no_available_port/);
  assert.equal(w.state().length, 8);
  assert.ok(!w.state().some((e) => e.devpath === "3-9"));
  for (const d of many.slice(0, 8)) ok(w.broker_(["detach", `work:${d.devpath}`]), /Detached/);
  for (const d of many) w.unplug(d.devpath);
});

test("200 concurrent attach/detach operations from several callers: the state file is valid JSON at every read and ends as the stand-ins' ports", { skip: !root && "needs root (mknod)" }, async () => {
  const devices: FakeDevice[] = Array.from({ length: 6 }, (_, i) => ({ devpath: `4-${i + 1}`, vid: "abcd", pid: `000${i}`, busnum: 4, devnum: 20 + i }));
  for (const d of devices) w.plug(d);
  const statePath = join(w.run, "usb-state.json");
  let reads = 0;
  let invalid: string | null = null;
  let watching = true;
  // A reader that never stops looking while the operations run.
  const watcher = (async () => {
    while (watching) {
      if (existsSync(statePath)) {
        let text = "";
        try {
          text = readFileSync(statePath, "utf8");
          const v = JSON.parse(text);
          if (!Array.isArray(v)) throw new Error("not an array");
          reads++;
        } catch (e) {
          if ((e as NodeJS.ErrnoException).code !== "ENOENT") invalid ??= `${(e as Error).message}: ${JSON.stringify(text)}`;
        }
      }
      await new Promise((r) => setImmediate(r));
    }
  })();
  // Deterministic pseudo-random operations, 8 callers at a time.
  let seed = 42;
  const rand = (n: number) => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) >> 16) % n;
  const ops = Array.from({ length: 200 }, () => [rand(2) ? "attach" : "detach", `${rand(2) ? "work" : "personal"}:${devices[rand(devices.length)]!.devpath}`] as [string, string]);
  const statuses: Array<number | null> = [];
  const outputs: string[] = [];
  let next = 0;
  await Promise.all(
    Array.from({ length: 8 }, async () => {
      while (next < ops.length) {
        const op = ops[next++]!;
        const r = await w.brokerAsync(op);
        statuses.push(r.status);
        outputs.push(r.stdout.trim());
      }
    }),
  );
  watching = false;
  await watcher;
  assert.equal(invalid, null);
  assert.ok(reads > 0);
  assert.equal(statuses.length, 200);
  assert.ok(statuses.every((s) => s === 0 || s === 1), JSON.stringify(statuses));
  assert.ok(statuses.filter((s) => s === 0).length > 20, `a good share of the operations moved a device: ${statuses.filter((s) => s === 0).length} of 200; ${[...new Set(outputs.map((o) => o.replace(/[0-9]/g, "N")))].join(" / ")}`);
  // The state is exactly what the stand-ins hold: per VM, its ports with their devices.
  const state = w.state();
  for (const vm of ["work", "personal"]) {
    const mine = state.filter((e) => e.vm === vm).sort((a, b) => (a.port as number) - (b.port as number));
    assert.equal(w.ports(vm), ["devices", ...mine.map((e) => `${e.port} ${e.vid} ${e.pid}`)].join(" "), vm);
  }
  assert.equal(new Set(state.map((e) => e.devpath)).size, state.length, "a device is in one VM at most");
  for (const e of state) assert.ok(w.broker_(["detach", `${e.vm}:${e.devpath}`]).status === 0);
  for (const d of devices) w.unplug(d.devpath);
});

test("the broker stays within a per-VM helper's memory budget (8 MiB peak RSS) while it moves a device", { skip: (!root || !existsSync("/usr/bin/time")) && "needs root and /usr/bin/time" }, () => {
  const r = spawnSync("/usr/bin/time", ["-f", "%M", w.broker, "--sysfs", w.sysfs, "--dev", w.dev, "--run", w.run, w.config, "attach", "work:1-3.2"], { encoding: "utf8" });
  assert.equal(r.status, 0, r.stdout + r.stderr);
  const kib = Number(r.stderr.trim().split("\n").pop());
  assert.ok(kib > 0 && kib < 8 * 1024, `peak RSS ${kib} KiB`);
  console.log(`vmsilo-usb-broker attach: peak RSS ${kib} KiB`);
  assert.equal(w.broker_(["detach", "work:1-3.2"]).status, 0);
});

test("every crosvm command line the broker runs is one upstream's CLI definition accepts", { skip: (!root || !existsSync(VMM_DIR)) && "needs root and the upstream CLI definitions" }, () => {
  // A crosvm that records its argv (NUL-separated, one file per call), then is the stand-in's client.
  const log = join(w.dir, "argv");
  const wrapper = join(w.dir, "crosvm-recording");
  writeFileSync(wrapper, `#!/bin/sh\nprintf '%s\\0' crosvm "$@" >"${log}.$$"\nexec ${w.crosvm} "$@"\n`, { mode: 0o755 });
  const config = readFileSync(w.config, "utf8");
  writeFileSync(w.config, config.replace(/^crosvm\t.*$/m, `crosvm\t${wrapper}`));
  try {
    ok(w.broker_(["attach", "work:1-3.2"]), /Attached/);
    ok(w.broker_(["attach", "personal:1-3.2"]), /Attached/);
    ok(w.broker_(["detach", "personal:1-3.2"]), /Detached/);
  } finally {
    writeFileSync(w.config, config);
  }
  const calls = readdirSync(w.dir).filter((f) => f.startsWith("argv.")).map((f) => readFileSync(join(w.dir, f), "utf8").split("\0").slice(0, -1));
  assert.deepEqual(calls.map((a) => a.slice(1, 3).join(" ")).sort(), ["usb attach", "usb attach", "usb detach", "usb detach"]);
  const cli = loadCrosvmCli();
  for (const argv of calls) assert.deepEqual(checkCrosvmArgv(argv, cli), [], JSON.stringify(argv));
  assert.ok(calls.some((a) => a[3] === "1:4:046d:c52b"), "BUS_ID:ADDR:VID:PID from sysfs");
});
