/**
 * USB on qemu with real qemu under TCG: the controller the launcher adds (qemu-xhci, only when the VM
 * has USB), and the broker's QMP conversation on it. What this machine allows: it has no USB host
 * devices (no /sys/bus/usb), and qemu's usb-host finds devices through libusb, not through the
 * broker's fake sysfs, so `device_add usb-host,hostbus=,hostaddr=` reaches usb-host's realize and is
 * refused there with qemu's "failed to find host usb device B:A" (every property accepted; an unknown
 * one would be refused by name first). The broker reports that refusal and hands the node back.
 * `device_del` is proved on a device qemu can create here, a usb-kbd plugged into the same bus with
 * the id the broker gives a device. (qemu's QMP socket takes one client at a time: the test's own
 * session is closed while the broker talks.)
 */
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { createConnection } from "node:net";
import { existsSync, mkdirSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { resolve } from "../../src/generate.js";
import { driverFor } from "../../src/hypervisors/index.js";
import { example } from "../support/harness.js";
import { have } from "../e2e/support.js";
import { UsbWorld, usbVm, type FakeDevice } from "./support.js";

const MOUSE: FakeDevice = { devpath: "1-3.2", vid: "046d", pid: "c52b", busnum: 1, devnum: 4 };
const can = process.getuid?.() === 0 && have("qemu-system-x86_64");
const vms = { q: usbVm({ hypervisor: "qemu", qemu: { machine: "q35", accel: "tcg", vsock: false, usb: true } }), plain: usbVm({ hypervisor: "qemu", qemu: { machine: "q35", accel: "tcg", vsock: false } }) };

/** The qemu command line's lines (driver.launchCommand) of each VM. */
function launchLines(): Map<string, string[][]> {
  const base = example("minimal") as Record<string, any>;
  const model = resolve({ ...base, programs: { ...base.programs, qemu: `/nix/store/${"5".repeat(32)}-qemu` }, nixosVms: vms });
  return new Map(model.vms.map((vm) => [vm.name, driverFor("qemu").launchCommand(vm, model).map((l) => [...l])]));
}

/** One QMP session: commands in, their answers out (events skipped). */
class Qmp {
  private buf = "";
  private waiters: Array<(line: Record<string, any>) => void> = [];
  private constructor(private s: ReturnType<typeof createConnection>) {
    s.setEncoding("utf8").on("data", (d: string) => {
      this.buf += d;
      for (let i; (i = this.buf.indexOf("\n")) >= 0; ) {
        const msg = JSON.parse(this.buf.slice(0, i)) as Record<string, any>;
        this.buf = this.buf.slice(i + 1);
        if ("return" in msg || "error" in msg || "QMP" in msg) this.waiters.shift()?.(msg);
      }
    });
  }
  static async open(path: string): Promise<Qmp> {
    const s = createConnection(path);
    await new Promise((r, j) => s.once("connect", r).once("error", j));
    const q = new Qmp(s);
    await new Promise((r) => q.waiters.push(r));
    await q.run("qmp_capabilities");
    return q;
  }
  run(execute: string, args?: Record<string, unknown>): Promise<Record<string, any>> {
    return new Promise((r) => {
      this.waiters.push(r);
      this.s.write(`${JSON.stringify(args ? { execute, arguments: args } : { execute })}\n`);
    });
  }
  close(): void {
    this.s.destroy();
  }
}

let w: UsbWorld;
let qemu: ChildProcess;
let qmp: Qmp;
const socket = () => join(w.run, "q", "vmm", "qmp.socket");
const peripherals = async () => ((await qmp.run("qom-list", { path: "/machine/peripheral" })).return as Array<{ name: string }>).map((p) => p.name);

before(async () => {
  if (!can) return;
  w = new UsbWorld(vms, { vmmUser: "nobody" });
  w.plug(MOUSE);
  mkdirSync(join(w.run, "q", "vmm"), { recursive: true });
  const lines = launchLines().get("q")!;
  const take = (opt: string) => lines.filter((l) => l[0] === opt && (opt !== "-device" || l[1]!.startsWith("qemu-xhci"))).flat();
  // The launcher's machine, accelerator and USB controller; no kernel to boot (-S: never started).
  qemu = spawn("qemu-system-x86_64", [...take("-machine"), ...take("-accel"), "-nodefaults", "-display", "none", "-S", ...take("-device"), "-qmp", `unix:${socket()},server=on,wait=off`], { stdio: "ignore" });
  for (let i = 0; i < 400 && !existsSync(socket()); i++) await new Promise((r) => setTimeout(r, 25));
  qmp = await Qmp.open(socket());
});
after(() => {
  qmp?.close();
  qemu?.kill("SIGKILL");
  w?.close();
});

test("the launcher adds the USB controller only to a qemu VM with USB", () => {
  const lines = launchLines();
  assert.deepEqual(lines.get("q")!.filter((l) => l.some((w) => w.includes("xhci"))), [["-device", "qemu-xhci,id=vmsilo-xhci"]]);
  assert.deepEqual(lines.get("plain")!.filter((l) => l.some((w) => w.includes("xhci"))), []);
});

test("real qemu takes the controller, and refuses the broker's usb-host only for want of the host device; the broker says so and gives the node back", { skip: !can && "needs root and qemu-system-x86_64" }, async () => {
  assert.ok((await peripherals()).includes("vmsilo-xhci"));
  qmp.close();
  const r = w.broker_(["attach", "q:1-3.2"]);
  qmp = await Qmp.open(socket());
  assert.equal(r.status, 1, r.stdout + r.stderr);
  assert.match(r.stdout, /^Error: qemu device_add of 1-3\.2 to q failed: failed to find host usb device 1:4$/m);
  assert.equal(statSync(w.node(MOUSE)).uid, 0, "the node is root's again");
  assert.deepEqual(w.state(), []);
  // The same command with a property usb-host lacks is refused for that property: the broker's are all known.
  const bad = await qmp.run("device_add", { driver: "usb-host", id: "probe", bus: "vmsilo-xhci.0", hostbus: 1, hostaddr: 4, nosuch: 1 });
  assert.match(bad.error.desc, /nosuch/);
});

test("detach: device_del of the broker's device id on the controller's bus, and the state and node follow", { skip: !can && "needs root and qemu-system-x86_64" }, async () => {
  const add = await qmp.run("device_add", { driver: "usb-kbd", id: "vmsilo-usb-1-3.2", bus: "vmsilo-xhci.0" });
  assert.ok("return" in add, JSON.stringify(add));
  assert.ok((await peripherals()).includes("vmsilo-usb-1-3.2"));
  writeFileSync(join(w.run, "usb-state.json"), `${JSON.stringify([{ vm: "q", devpath: "1-3.2", vid: "046d", pid: "c52b", serial: "", busnum: "1", devnum: "4", port: null, qdev: "vmsilo-usb-1-3.2" }])}\n`);
  qmp.close();
  const r = w.broker_(["detach", "q:1-3.2"]);
  qmp = await Qmp.open(socket());
  assert.equal(r.status, 0, r.stdout + r.stderr);
  assert.match(r.stdout, /^Detached 046d:c52b \(1-3\.2\) from q$/m);
  assert.ok(!(await peripherals()).includes("vmsilo-usb-1-3.2"));
  assert.deepEqual(w.state(), []);
  // A VM without a controller is refused by the broker before any QMP.
  const plain = w.broker_(["attach", "plain:1-3.2"]);
  assert.equal(plain.status, 1);
  assert.match(plain.stdout, /VM plain has no USB controller/);
});
