/**
 * A USB world for the broker without root's real one: a fake sysfs (bus/usb/devices/<bus path>/…)
 * and /dev/bus/usb with real character-device nodes (mknod, so root), crosvm stand-ins that keep
 * their USB ports (../e2e/standins/crosvm.ts behind helper.c's native `crosvm usb` client), and the
 * broker's configuration as the generator writes it, its /run/vmsilo moved into the world.
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { mkdirSync, readFileSync, rmSync, symlinkSync, writeFileSync, existsSync } from "node:fs";
import { join } from "node:path";
import { ROOT, render, tempDir } from "../support/harness.js";
import { OUT } from "../../src/model/paths.js";
import { vmsiloToolsPackage } from "../e2e/support.js";
import { standIns } from "../e2e/standins/index.js";
import type { GeneratedFile } from "../../src/render/files.js";

export interface FakeDevice {
  devpath: string;
  vid: string;
  pid: string;
  busnum: number;
  devnum: number;
  serial?: string;
  manufacturer?: string;
  product?: string;
  hub?: boolean;
}

/** The usbfs minor of a device (the kernel's: (bus - 1) * 128 + dev - 1). */
export const usbMinor = (d: FakeDevice) => (d.busnum - 1) * 128 + d.devnum - 1;

const STORE = `/nix/store/${"5".repeat(32)}`;
/** A VM whose images the broker never opens. */
export const usbVm = (extra: Record<string, unknown> = {}) => ({ kernel: `${STORE}-k/bzImage`, initramfs: `${STORE}-k/initrd`, rootDisk: { path: `${STORE}-k/nixos.erofs` }, memory: 256, cpus: 1, ...extra });

export class UsbWorld {
  readonly dir: string = tempDir("usb");
  readonly sysfs = join(this.dir, "sys");
  readonly dev = join(this.dir, "dev");
  readonly run = join(this.dir, "run");
  readonly config = join(this.dir, "usb.conf");
  readonly broker = join(vmsiloToolsPackage(), "bin", "vmsilo-usb-broker");
  readonly crosvm = join(standIns().crosvm, "bin", "crosvm");
  private vmms = new Map<string, ChildProcess>();

  /** `vmmUser`: the user a qemu VM's node is handed to, instead of the VM's own (absent here). */
  constructor(readonly vms: Record<string, Record<string, unknown>>, o: { vmmUser?: string } = {}) {
    mkdirSync(join(this.sysfs, "bus", "usb", "devices"), { recursive: true });
    mkdirSync(join(this.dev, "bus", "usb"), { recursive: true });
    mkdirSync(this.run, { recursive: true });
    const base = JSON.parse(readFileSync(join(ROOT, "examples", "minimal.json"), "utf8")) as Record<string, any>;
    const programs = { ...base.programs, cloudHypervisor: `${STORE}-ch`, qemu: `${STORE}-qemu` };
    const tree = render({ ...base, programs, nixosVms: vms });
    const conf = tree.get(OUT.usbConfig) as GeneratedFile;
    // The world's /run/vmsilo and its crosvm stand-in, as the generated file names them.
    let text = conf.content.replaceAll("/run/vmsilo/", `${this.run}/`).replace(/^crosvm\t.*$/m, `crosvm\t${this.crosvm}`);
    if (o.vmmUser) text = text.replace(/^(vm\t[^\t]*\tqemu\t[^\t]*\t)[^\t\n]+$/gm, `$1${o.vmmUser}`);
    writeFileSync(this.config, text);
  }

  /** A device as sysfs and usbfs show it. */
  plug(d: FakeDevice): void {
    const dir = join(this.sysfs, "bus", "usb", "devices", d.devpath);
    mkdirSync(dir, { recursive: true });
    const attrs: Record<string, string> = { idVendor: d.vid, idProduct: d.pid, busnum: String(d.busnum), devnum: String(d.devnum), dev: `189:${usbMinor(d)}`, bDeviceClass: d.hub ? "09" : "00" };
    if (d.serial !== undefined) attrs.serial = d.serial;
    if (d.manufacturer !== undefined) attrs.manufacturer = d.manufacturer;
    if (d.product !== undefined) attrs.product = d.product;
    for (const [k, v] of Object.entries(attrs)) writeFileSync(join(dir, k), `${v}\n`);
    const bus = join(this.dev, "bus", "usb", String(d.busnum).padStart(3, "0"));
    mkdirSync(bus, { recursive: true });
    const node = join(bus, String(d.devnum).padStart(3, "0"));
    rmSync(node, { force: true });
    const r = spawnSync("mknod", [node, "c", "189", String(usbMinor(d))], { encoding: "utf8" });
    if (r.status !== 0) throw new Error(`mknod ${node}: ${r.stderr}`);
  }

  unplug(devpath: string): void {
    rmSync(join(this.sysfs, "bus", "usb", "devices", devpath), { recursive: true, force: true });
  }

  node(d: FakeDevice): string {
    return join(this.dev, "bus", "usb", String(d.busnum).padStart(3, "0"), String(d.devnum).padStart(3, "0"));
  }

  /** Replaces a device's node with something else (a link to a file, another device number). */
  forgeNode(d: FakeDevice, what: "symlink" | "file" | "other-device"): void {
    const node = this.node(d);
    rmSync(node, { force: true });
    if (what === "symlink") symlinkSync("/etc/passwd", node);
    else if (what === "file") writeFileSync(node, "");
    else spawnSync("mknod", [node, "c", "189", String(usbMinor(d) + 1)]);
  }

  /** Starts VM `name`'s crosvm stand-in; resolves once its control socket is there. */
  async startCrosvm(name: string): Promise<void> {
    const socket = join(this.run, name, "crosvm-control.socket");
    mkdirSync(join(this.run, name), { recursive: true });
    const kernel = join(this.dir, "kernel");
    writeFileSync(kernel, "");
    const p = spawn(process.execPath, [join(ROOT, "dist", "test", "e2e", "standins", "crosvm.js"), "run", "--socket", socket, kernel], {
      stdio: ["ignore", "ignore", "pipe"],
      // Its control socket (SOCK_SEQPACKET) is served by helper.c, as when the package's bin/crosvm runs it.
      env: { ...process.env, VMSILO_STANDIN_HELPER: this.crosvm },
    });
    p.stderr!.on("data", () => {});
    this.vmms.set(name, p);
    for (let i = 0; i < 200 && !existsSync(socket); i++) await new Promise((r) => setTimeout(r, 25));
    if (!existsSync(socket)) throw new Error(`crosvm stand-in of ${name} did not create ${socket}`);
  }

  stopCrosvm(name: string): void {
    this.vmms.get(name)?.kill("SIGKILL");
    this.vmms.delete(name);
    rmSync(join(this.run, name, "crosvm-control.socket"), { force: true });
  }

  /** The broker, synchronously. */
  broker_(args: string[]): { status: number | null; stdout: string; stderr: string } {
    return spawnSync(this.broker, ["--sysfs", this.sysfs, "--dev", this.dev, "--run", this.run, this.config, ...args], { encoding: "utf8" });
  }

  /** The broker as a child process (for concurrent callers). */
  brokerAsync(args: string[]): Promise<{ status: number | null; stdout: string }> {
    return new Promise((resolve) => {
      const p = spawn(this.broker, ["--sysfs", this.sysfs, "--dev", this.dev, "--run", this.run, this.config, ...args], { stdio: ["ignore", "pipe", "pipe"] });
      let stdout = "";
      p.stdout.on("data", (d) => (stdout += d));
      p.stderr.resume();
      p.on("close", (status) => resolve({ status, stdout }));
    });
  }

  /** The broker's state file, parsed ([] when absent). */
  state(): Array<Record<string, unknown>> {
    const path = join(this.run, "usb-state.json");
    return existsSync(path) ? (JSON.parse(readFileSync(path, "utf8")) as Array<Record<string, unknown>>) : [];
  }

  /** What VM `name`'s stand-in has in its ports, as `crosvm usb list` prints it. */
  ports(name: string): string {
    return spawnSync(this.crosvm, ["usb", "list", join(this.run, name, "crosvm-control.socket")], { encoding: "utf8" }).stdout.trim();
  }

  close(): void {
    for (const name of [...this.vmms.keys()]) this.stopCrosvm(name);
    rmSync(this.dir, { recursive: true, force: true });
  }
}
