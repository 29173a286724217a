import type { HypervisorDriver } from "./driver.js";
import type { DiskConfig } from "../config/schema.js";
import { DEFAULT_BLOCK_OPTIONS, type Model } from "../model/model.js";
import { crosvmKv, type KvValue } from "../shell/quote.js";

const bin = (model: Model) => `${model.config.programs.crosvm}/bin/crosvm`;

/** Options sorted by key so output does not depend on the order Nix wrote them in. */
const sortedOptions = (o: Record<string, KvValue>) => Object.keys(o).sort().map((k) => [k, o[k]!] as const);

function blockArg(d: DiskConfig): string {
  const merged: Record<string, KvValue> = { ...DEFAULT_BLOCK_OPTIONS, ...d.options };
  return crosvmKv([["path", d.path], ["ro", d.ro], ...(d.id !== null ? ([["id", d.id]] as const) : []), ...sortedOptions(merged)]);
}

function coreScheduling(model: Model): string[] {
  switch (model.config.schedulerIsolation) {
    case "full":
      return ["--core-scheduling=true"];
    case "vm":
      return ["--per-vm-core-scheduling"];
    case "off":
      return ["--core-scheduling=false"];
  }
}

/**
 * crosvm, following upstream HEAD (../shared/vmm/crosvm-cli.json) where the original differs:
 * global options before `run`; no `--no-timestamps` (never existed); no `stream-non-blocking`
 * serial key; `--vsock cid=` instead of the deprecated `--cid`; switches never written `--x=true`.
 */
export const crosvm: HypervisorDriver = {
  launchCommand(vm, model) {
    const c = vm.config;
    const p = vm.paths;
    const g = model.config.crosvm;
    const lines: string[][] = [[bin(model)], [`--log-level=${c.crosvm.logLevel ?? g.logLevel}`], ["--no-syslog"]];
    const add = (...words: string[]) => lines.push(words);
    for (const a of [...g.extraArgs, ...c.crosvm.extraArgs]) add(a);
    add("run");
    add("--name", vm.name);
    add("--mem", crosvmKv([["size", c.memory]]));
    add("--cpus", crosvmKv([["num-cores", c.cpus]]));
    // crosvm's balloon is on unless `--no-balloon`; with it, the guest reports the pages it frees.
    for (const s of ["--hugepages", ...(c.balloon.enable ? ["--balloon-page-reporting"] : ["--no-balloon"]), "--boost-uclamp", "--disable-virtio-intx", "--no-i8042", "--no-rtc", "--s2idle"]) add(s);
    add(...coreScheduling(model));
    add("--initrd", c.initramfs);
    add(
      "--serial",
      crosvmKv([
        ["type", "unix-stream"],
        ["hardware", "virtio-console"],
        ["path", p.consoleBackend],
        ["console", true],
        ["input-unix-stream", true],
      ]),
    );
    for (const d of vm.disks) add("--block", blockArg(d));
    for (const param of vm.kernelParams) add("-p", param);
    for (const s of vm.shares) add("--vhost-user", crosvmKv([["type", "fs"], ["socket", p.virtiofsSocket(s.tag)]]));
    add("--vsock", crosvmKv([["cid", vm.id]]));
    if (vm.gpu) add("--vhost-user", crosvmKv([["type", "gpu"], ["socket", p.gpuSocket]]));
    if (vm.soundStreams) add("--vhost-user", crosvmKv([["type", "sound"], ["socket", p.soundSocket]]));
    add("--socket", p.controlSocket);
    vm.pciSysfsPaths.forEach((sysfs, i) => add("--vfio", crosvmKv([["path", sysfs], ...sortedOptions(c.pciDevices[i]!.options)])));
    for (const i of vm.interfaces) add("--net", crosvmKv([["tap-name", i.tap], ["mac", i.mac], ["pci-address", i.pciAddress]]));
    for (const u of c.vhostUser) add("--vhost-user", crosvmKv([["type", u.type], ["socket", u.socket], ...sortedOptions(u.options)]));
    for (const a of [...g.extraRunArgs, ...c.crosvm.extraRunArgs]) add(a);
    add(c.kernel);
    return lines;
  },
  gracefulStopArgv: (vm, model) => [bin(model), "powerbtn", vm.paths.controlSocket],
  forceStopArgv: (vm, model) => [bin(model), "stop", vm.paths.controlSocket],
  ownSockets: (vm) => [vm.paths.controlSocket],
  balloonControl: (vm) => ({ control: "crosvm", socket: vm.paths.controlSocket }),
  // crosvm always has its xHCI controller; `crosvm usb attach` goes through the control socket.
  usbSocket: (_vm, paths) => paths.controlSocket,
  refusals(name, vm) {
    const at = `nixosVms.${name}.cloudHypervisor`;
    const c = vm.cloudHypervisor;
    const set = [c.logLevel !== null && "logLevel", c.extraArgs.length > 0 && "extraArgs", Object.keys(c.extraConfig).length > 0 && "extraConfig"].filter((k): k is string => k !== false);
    return set.map((k) => ({ path: `${at}.${k}`, message: `applies to cloud-hypervisor only, but this VM's hypervisor is crosvm; remove it or set hypervisor = "cloud-hypervisor"` }));
  },
};
