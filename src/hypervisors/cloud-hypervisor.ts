import stringify from "json-stable-stringify";
import type { HypervisorDriver } from "./driver.js";
import type { Config, DiskConfig, VmConfig } from "../config/schema.js";
import { setOwn, type Issue } from "../config/types.js";
import { DEFAULT_BLOCK_OPTIONS, type Model, type VmModel } from "../model/model.js";
import { OUT } from "../model/paths.js";

/**
 * cloud-hypervisor (ORIGINAL.md §B5b with its defects fixed; docs/cloud-hypervisor.md). The VMM starts
 * with only its API socket; `ch-remote create` sends the VM's JSON config (OpenAPI `VmConfig`, checked
 * against ../shared/vmm/cloud-hypervisor-openapi.yaml by the contract tests) and `ch-remote boot` starts it.
 */

/** `generic_vhost_user` (GPU and sound, D11) first appears in cloud-hypervisor v52.0. */
export const GENERIC_VHOST_USER_SINCE = 52;
/** virtio device types (the virtio spec's device IDs) of the generic vhost-user devices. */
export const VIRTIO_DEVICE_TYPE = { gpu: 16, sound: 25 } as const;
/** Queue sizes the frontend offers: virtio-gpu has controlq and cursorq, virtio-snd control, event, tx, rx. */
export const GENERIC_QUEUE_SIZES = { gpu: [256, 16], sound: [64, 64, 64, 64] } as const;
/** virtio-fs: one request queue (plus the high-priority one the device adds), FsConfig's defaults. */
export const FS_QUEUES = { num_queues: 1, queue_size: 1024 } as const;
/** cloud-hypervisor honours only its `-v` count (main.rs: 0 warn, 1 info, 2 debug, 3+ trace). */
export const VERBOSITY = { warn: 0, info: 1, debug: 2, trace: 3 } as const;
/** schedulerIsolation → `cpus.core_scheduling` (CoreSchedulingMode); the original mapped full to Vm. */
export const CORE_SCHEDULING = { full: "Vcpu", vm: "Vm", off: "Off" } as const;
/** The keys of a disk's `options` cloud-hypervisor has too (DiskConfig), under the same name. */
export const CH_DISK_OPTION_KEYS = ["direct", "sparse"] as const;
/**
 * The guest console is the serial port (ttyS0): cloud-hypervisor offers `Socket` mode for the serial
 * port only (its virtio-console refuses it), so the kernel is told where its console is, as crosvm
 * does by itself for its virtio-console (`console=hvc0`).
 */
export const CH_CONSOLE_PARAM = "console=ttyS0";

/** Where the VM's JSON config goes in the output tree. */
export const chConfigPath = (vm: string) => `${OUT.vmShare(vm)}/cloud-hypervisor.json`;

const bin = (model: Model, program: "cloud-hypervisor" | "ch-remote") => `${model.config.programs.cloudHypervisor}/bin/${program}`;
/** `ch-remote` takes a plain path, never `path=` (ch-remote.rs: UnixStream::connect). */
const remote = (vm: VmModel, model: Model, ...command: string[]) => [bin(model, "ch-remote"), "--api-socket", vm.paths.chApiSocket, ...command];

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

/**
 * `extra` over `base`: objects merge key by key, anything else (lists included) replaces, and a `null`
 * in `extra` removes the key (Nix's `lib.recursiveUpdate`, plus a way to drop a generated section).
 */
export function mergeConfig(base: Record<string, unknown>, extra: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...base };
  for (const [k, v] of Object.entries(extra)) {
    // Own keys only, set as data: `__proto__` or `constructor` in extraConfig are keys like any other.
    const b = Object.hasOwn(out, k) ? out[k] : undefined;
    if (v === null) delete out[k];
    else setOwn(out, k, isObject(v) && isObject(b) ? mergeConfig(b, v) : structuredClone(v));
  }
  return out;
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);

function disk(d: DiskConfig): Record<string, Json> {
  const o: Record<string, unknown> = { ...DEFAULT_BLOCK_OPTIONS, ...d.options };
  return {
    path: d.path,
    readonly: d.ro,
    direct: o.direct === true,
    ...(typeof o.sparse === "boolean" ? { sparse: o.sparse } : {}),
    // Said, never probed: a guest that writes a qcow2 header into a raw image must not make it one
    // at the next start (`image_type`, v51.0; older versions ignore the key and probe).
    image_type: d.format === "qcow2" ? "Qcow2" : "Raw",
    // The virtio-blk serial: the guest sees /dev/disk/by-id/virtio-<id>, as with crosvm's `id=`, so
    // `vmsilo.rootOverlay=raw,ephemeral` names the overlay disk for both (the original said `vdb`).
    ...(d.id !== null ? { serial: d.id } : {}),
  };
}

/** The VM's config before `extraConfig` (ORIGINAL.md §B5b, fixed: see docs/cloud-hypervisor.md). */
export function baseConfig(vm: VmModel, model: Model): Record<string, Json> {
  const c = vm.config;
  const p = vm.paths;
  const vhostUser = vm.shares.length > 0 || vm.gpu !== null || vm.soundStreams !== null;
  const generic: Json[] = [];
  if (vm.gpu) generic.push({ device_type: VIRTIO_DEVICE_TYPE.gpu, socket: p.gpuSocket, queue_sizes: [...GENERIC_QUEUE_SIZES.gpu] });
  if (vm.soundStreams) generic.push({ device_type: VIRTIO_DEVICE_TYPE.sound, socket: p.soundSocket, queue_sizes: [...GENERIC_QUEUE_SIZES.sound] });
  return {
    payload: { kernel: c.kernel, initramfs: c.initramfs, cmdline: [CH_CONSOLE_PARAM, ...vm.kernelParams].join(" ") },
    cpus: { boot_vcpus: c.cpus, max_vcpus: c.cpus, core_scheduling: CORE_SCHEDULING[model.config.schedulerIsolation] },
    // vhost-user backends map guest memory, so it must be shared then. No `hugepages`: that needs
    // hugetlbfs pages reserved on the host (the original's VMs failed to boot without them); THP is on.
    memory: { size: c.memory * 1024 * 1024, shared: vhostUser },
    // The guest reports the pages it frees and deflates the balloon itself before an OOM (it has no
    // statistics queue here: vmsilo-balloond moves it only under host pressure, docs/balloon.md).
    ...(c.balloon.enable ? { balloon: { size: 0, deflate_on_oom: true, free_page_reporting: true } } : {}),
    // D10: cloud-hypervisor binds and listens on the console backend; the relay connects to it.
    serial: { mode: "Socket", socket: p.consoleBackend },
    console: { mode: "Off" },
    vsock: { cid: vm.id, socket: p.vsockSocket },
    disks: vm.disks.map(disk),
    ...(vm.interfaces.length ? { net: vm.interfaces.map((i) => ({ tap: i.tap, mac: i.mac })) } : {}),
    ...(vm.shares.length ? { fs: vm.shares.map((s) => ({ tag: s.tag, socket: p.virtiofsSocket(s.tag), ...FS_QUEUES })) } : {}),
    ...(generic.length ? { generic_vhost_user: generic } : {}),
    ...(vm.pciSysfsPaths.length ? { devices: vm.pciSysfsPaths.map((path) => ({ path })) } : {}),
  };
}

/** The JSON `ch-remote create` sends: the base config with `extraConfig` merged over it. */
export function chConfig(vm: VmModel, model: Model): Record<string, unknown> {
  return mergeConfig(baseConfig(vm, model), vm.config.cloudHypervisor.extraConfig);
}

/** The major number of a version string, or null. */
const major = (v: string | null) => (v === null ? null : Number(/^[0-9]+/.exec(v)?.[0] ?? NaN));

/** What cloud-hypervisor cannot honour, refused with the option named (D11, ORIGINAL.md §E.7). */
function refusals(name: string, vm: VmConfig, config: Config): Issue[] {
  const at = `nixosVms.${name}`;
  const issues: Issue[] = [];
  const refuse = (path: string, reason: string) => issues.push({ path: `${at}.${path}`, message: `not supported by cloud-hypervisor (${reason})` });
  if (vm.vhostUser.length) refuse("vhostUser", "these are crosvm `--vhost-user` devices; cloud-hypervisor VMs get GPU, sound and shares from their own options");
  vm.pciDevices.forEach((d, i) => {
    for (const k of Object.keys(d.options)) refuse(`pciDevices[${i}].options.${k}`, "a crosvm `--vfio` key; cloud-hypervisor takes the device path only");
  });
  const disks: Array<[string, DiskConfig]> = [["rootDisk", vm.rootDisk], ...vm.additionalDisks.map((d, i) => [`additionalDisks[${i}]`, d] as [string, DiskConfig])];
  for (const [where, d] of disks) {
    for (const k of Object.keys(d.options)) {
      if (!(CH_DISK_OPTION_KEYS as readonly string[]).includes(k)) refuse(`${where}.options.${k}`, `a crosvm \`--block\` key; cloud-hypervisor VMs take only ${CH_DISK_OPTION_KEYS.join(" and ")} here, anything else through cloudHypervisor.extraConfig`);
    }
  }
  if (vm.tray.enable) refuse("tray.enable", "the tray daemon listens on a guest vsock port that only kernel vsock reaches from the host, not cloud-hypervisor's hybrid vsock socket; use crosvm or qemu");
  if (vm.usbDevices.length) refuse("usbDevices", "cloud-hypervisor has no USB passthrough; use crosvm or qemu for this VM");
  if (vm.crosvm.logLevel !== null) refuse("crosvm.logLevel", "a crosvm option; set cloudHypervisor.logLevel");
  if (vm.crosvm.extraArgs.length) refuse("crosvm.extraArgs", "crosvm options; use cloudHypervisor.extraArgs");
  if (vm.crosvm.extraRunArgs.length) refuse("crosvm.extraRunArgs", "crosvm options; use cloudHypervisor.extraArgs or cloudHypervisor.extraConfig");
  const version = config.cloudHypervisor.version;
  const v = major(version);
  const needGeneric = (path: string, what: string, type: number) => {
    if (v !== null && v >= GENERIC_VHOST_USER_SINCE) return;
    issues.push({
      path: `${at}.${path}`,
      message:
        version === null
          ? `needs cloud-hypervisor ${GENERIC_VHOST_USER_SINCE} or later (${what} is a generic_vhost_user device, virtio type ${type}), and cloudHypervisor.version is not set; set it to the version of programs.cloudHypervisor`
          : `needs cloud-hypervisor ${GENERIC_VHOST_USER_SINCE} or later (${what} is a generic_vhost_user device, virtio type ${type}), but cloudHypervisor.version is ${JSON.stringify(version)}`,
    });
  };
  if (vm.gpu !== false) needGeneric("gpu", "the GPU", VIRTIO_DEVICE_TYPE.gpu);
  if (vm.sound.playback || vm.sound.capture) needGeneric("sound", "sound", VIRTIO_DEVICE_TYPE.sound);
  return issues;
}

export const cloudHypervisor: HypervisorDriver = {
  launchCommand(vm, model) {
    const level = vm.config.cloudHypervisor.logLevel ?? model.config.cloudHypervisor.logLevel;
    return [
      [bin(model, "cloud-hypervisor")],
      ["--api-socket", `path=${vm.paths.chApiSocket}`],
      ...Array.from({ length: VERBOSITY[level] }, () => ["-v"]),
      ...[...model.config.cloudHypervisor.extraArgs, ...vm.config.cloudHypervisor.extraArgs].map((a) => [a]),
    ];
  },
  launchPlan: (vm, model) => ({
    kind: "api",
    apiSocket: vm.paths.chApiSocket,
    create: remote(vm, model, "create", "--", "-"),
    boot: remote(vm, model, "boot"),
    config: stringify(chConfig(vm, model), { space: 2 }) + "\n",
    configPath: chConfigPath(vm.name),
    userSockets: [vm.paths.vsockSocket],
  }),
  gracefulStopArgv: (vm, model) => remote(vm, model, "power-button"),
  forceStopArgv: (vm, model) => remote(vm, model, "shutdown-vmm"),
  ownSockets: (vm) => [vm.paths.chApiSocket, vm.paths.vsockSocket, vm.paths.consoleBackend],
  balloonControl: (vm) => ({ control: "cloud-hypervisor", socket: vm.paths.chApiSocket }),
  agentTransport: (vm) => ({ kind: "hybrid", socket: vm.paths.vsockSocket }),
  consoleBackend: "listens",
  refusals,
};
