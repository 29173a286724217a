import { cliUsage, usageText } from "./usage.js";
import type { Model } from "../model/model.js";
import { OUT } from "../model/paths.js";
import { qemuSettings } from "../hypervisors/qemu.js";
import { qemuOpts, shellArrayWord, shellJoin, shellLines, shellQuote } from "../shell/quote.js";
import { required, type Tools } from "./context.js";
import { type GeneratedFile, provenance } from "./files.js";
import { renderTemplate } from "./templates.js";

/**
 * `bin/vm-exec` (SPEC D14, docs/vm-exec.md): a throwaway qemu VM that shares the host's store
 * read-only over virtio-fs, runs SCRIPT with bash and returns its exit status. What the host and the
 * vm-exec initrd agree on is fixed here and documented in docs/vm-exec.md.
 */
export const VM_EXEC = {
  /** virtio-fs tags: the store (read-only), and `--shared=DIR` (read-write, at /tmp/shared). */
  storeTag: "nix-store",
  sharedTag: "shared",
  /** virtio-blk serials (/sys/block/vdX/serial): SCRIPT's bytes, and the 512-byte status sector. */
  scriptSerial: "vmsilo-script",
  statusSerial: "vmsilo-status",
  /**
   * Always on the kernel command line: the vm-exec marker; no interactive rescue, ever (a panic ends
   * the VM at once); then boot time. The VM is thrown away after running the caller's own script as
   * root, so the guest kernel's defences against its own user space (speculation mitigations, memory
   * zeroing, crypto self-tests, audit) protect nothing there and cost seconds under emulation; the
   * host's isolation from the guest is the VM itself and does not change (docs/vm-exec.md).
   */
  params: [
    "vmsilo.exec=1",
    "panic=-1",
    "mitigations=off",
    "init_on_alloc=0",
    "init_on_free=0",
    "cryptomgr.notests",
    "random.trust_cpu=on",
    "8250.nr_uarts=1",
    "audit=0",
    "nowatchdog",
    "tsc=reliable",
    "no_timer_check",
    "rcupdate.rcu_expedited=1",
  ],
  /** On microvm there is no PCI bus to probe. */
  microvmParams: ["pci=off"],
  /** Bytes the script adds to the command line at run time: the script's size, the console, the
   * TSC rate (templates/vm-exec.sh.hbs), with room to spare. */
  runtimeParamsBytes: 128,
  /** Exit status when the VM itself failed (no status came back). */
  vmFailed: 125,
} as const;

export function renderVmExec(model: Model, t: Tools): GeneratedFile[] {
  const x = model.config.vmExec;
  if (!x.enable) return [];
  const q = qemuSettings({ qemu: { machine: x.machine, accel: x.accel, cpu: null, console: "serial", usb: false, vsock: false, bios: null, shares9p: {}, extraArgs: [] } }, model.config);
  const qemu = required(t.qemuSystem, "programs.qemu");
  const virtiofsd = required(t.virtiofsd, "programs.virtiofsd");
  const lines: string[][] = [];
  if (x.timeout > 0) lines.push([t.timeout, "--kill-after=5", String(x.timeout)]);
  lines.push(
    [qemu],
    ["-name", "guest=vm-exec"],
    ["-machine", qemuOpts(q.machine, [["memory-backend", "mem"]])],
    ["-accel", q.accel],
    ["-cpu", q.cpu],
    ["-m", `${x.memory}M`],
    ["-smp", String(x.cpus)],
    ["-nodefaults"],
    ["-no-user-config"],
    ["-display", "none"],
    ["-no-reboot"],
    ["-object", qemuOpts("memory-backend-memfd", [["id", "mem"], ["size", `${x.memory}M`], ["share", true]])],
    ...(q.machine === "microvm" ? [["-global", "virtio-mmio.force-legacy=false"]] : []),
    ["-kernel", required(x.kernel, "vmExec.kernel")],
    ["-initrd", required(x.initramfs, "vmExec.initramfs")],
    // SCRIPT's output: the serial port (ttyS0), written to vm-exec's own stdout.
    ["-chardev", "stdio,id=out"],
    ["-serial", "chardev:out"],
    ...x.extraArgs.map((a) => [a]),
  );
  const blk = `virtio-blk-${q.bus}`;
  const fs = `vhost-user-fs-${q.bus}`;
  const content = renderTemplate("vm-exec.sh.hbs", {
    bash: t.bash,
    header: provenance("programs.vmsilo.vmExec")
      .map((l) => `# ${l}`)
      .join("\n"),
    usage: usageText(cliUsage("vm-exec")),
    mktemp: shellQuote(t.mktemp),
    rm: shellQuote(t.rm),
    cat: shellQuote(t.cat),
    stat: shellQuote(t.stat),
    truncate: shellQuote(t.truncate),
    sleep: shellQuote(t.sleep),
    seconds: model.config.startTimeout,
    storeFs: shellJoin([virtiofsd, "--shared-dir", x.storeDir, "--tag", VM_EXEC.storeTag, "--readonly", "--cache", "always", "--log-level", "error", "--socket-path"]),
    sharedFs: shellJoin([virtiofsd, "--cache", "auto", "--log-level", "error", "--shared-dir"]),
    kernelParams: [...VM_EXEC.params, ...(q.machine === "microvm" ? VM_EXEC.microvmParams : [])].map(shellArrayWord).join(" "),
    userParams: x.kernelParams.map(shellArrayWord),
    tscKhz: q.accel === "tcg" && q.machine === "microvm",
    qemu: shellLines(lines),
    scriptDevice: shellQuote(qemuOpts(blk, [["drive", "script"], ["serial", VM_EXEC.scriptSerial]])),
    statusDevice: shellQuote(qemuOpts(blk, [["drive", "status"], ["serial", VM_EXEC.statusSerial]])),
    storeDevice: shellQuote(qemuOpts(fs, [["chardev", "fs-store"], ["tag", VM_EXEC.storeTag]])),
    sharedDevice: shellArrayWord(qemuOpts(fs, [["chardev", "fs-shared"], ["tag", VM_EXEC.sharedTag]])),
    timeoutSeconds: x.timeout > 0 ? x.timeout : false,
  });
  return [{ path: `${OUT.bin}/vm-exec`, mode: 0o755, content }];
}
