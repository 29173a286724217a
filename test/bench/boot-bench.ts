/**
 * Boot and vm-exec latency of the qemu backend against the seeds' qemu command lines, under TCG, in
 * one run, with the same kernel and initramfs on both sides (Debian's generic kernel, which has 9p,
 * as an uncompressed vmlinux; the test initramfs of test/e2e/guest/init):
 *
 *  1. boot to guest power-off: the generated launcher (microvm, virtio console, erofs root on
 *     virtio-blk, the guest protocol) against a qemu-vm.nix-style command line (q35, SeaBIOS,
 *     virtio-pci devices, a 9p store the guest mounts, user networking, USB tablet, serial console);
 *  2. `vm-exec true`: the generated vm-exec against the seed vm-exec's invocation (mktemp, a qcow2
 *     dummy disk from qemu-img, the qemu-vm.nix runner's q35 line with 9p store, xchg, shared and
 *     Nix DB shares, the exit status through the 9p xchg directory).
 *
 * The guest loads a driver for every device the VMM exposes (matched on modalias, as udev does in
 * a NixOS guest), so the devices a command line adds cost what they cost a real guest; vm-exec's
 * initrd loads only what it uses (docs/vm-exec.md), the seed's runs NixOS's stage 1, which
 * coldplugs too. Runs interleaved, medians printed; the last two lines are the ratios (goals:
 * boot ≤ 0.6, vm-exec ≤ 0.4). Needs root or the e2e prerequisites installed (test/e2e/support.ts).
 *
 *   npx tsc -p . && node dist/test/bench/boot-bench.js [--runs N]
 */
import { spawnSync } from "node:child_process";
import { mkdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import {
  ConsoleCapture,
  cleanRuntime,
  freshRuntime,
  hostKhz,
  qemuPrerequisites,
  qemuTestConfig,
  renderTree,
  tempDir,
  testInitramfs,
  testKernel,
  testRootImage,
  uniqueVmName,
  vmExecTestConfig,
  type TestGuest,
} from "../e2e/support.js";

const runsArg = process.argv.indexOf("--runs");
const RUNS = runsArg > 0 ? Number(process.argv[runsArg + 1]) : 5;

const why = qemuPrerequisites();
if (why) {
  console.log(`SKIP: ${why}`);
  process.exit(0);
}
const kernel = testKernel("generic");
const guest: TestGuest = { kernel, initramfs: testInitramfs(kernel), root: testRootImage() };
const khz = hostKhz();
const dir = tempDir("boot-bench");
const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

function timed(label: string, argv: string[], check: (stdout: string, status: number | null) => boolean, env: NodeJS.ProcessEnv = process.env): number {
  const start = process.hrtime.bigint();
  const r = spawnSync(argv[0]!, argv.slice(1), { encoding: "utf8", env, maxBuffer: 64 << 20, stdio: ["ignore", "pipe", "pipe"] });
  const ms = Number(process.hrtime.bigint() - start) / 1e6;
  if (!check(r.stdout, r.status)) throw new Error(`${label} failed (status ${r.status}):\n${r.stdout.slice(-2000)}\n${r.stderr.slice(-2000)}`);
  return ms;
}

// ---- 1. boot to power-off ----
const vm = uniqueVmName("bench");
const ours = renderTree(
  qemuTestConfig(guest, vm, { kernelParams: ["console=hvc0", "loglevel=4", "vmsilo.test.poweroff=1"], console: "virtio", memory: 1024, rootOverlay: { type: "tmpfs" } }),
  "bench-launcher",
);
const seedStore = join(dir, "store");
mkdirSync(seedStore);
const seedBoot = [
  "timeout", "120", "qemu-system-x86_64",
  "-machine", "q35", "-accel", "tcg", "-cpu", "max", "-name", vm, "-m", "1024", "-smp", "1",
  "-device", "virtio-rng-pci",
  "-net", "nic,netdev=user.0,model=virtio", "-netdev", "user,id=user.0",
  "-virtfs", `local,path=${seedStore},security_model=none,mount_tag=nix-store`,
  "-drive", `cache=writeback,file=${guest.root},id=drive1,if=none,index=1,werror=report,format=raw,readonly=on`,
  "-device", "virtio-blk-pci,bootindex=1,drive=drive1,serial=root",
  "-device", "virtio-keyboard", "-usb", "-device", "usb-tablet,bus=usb-bus.0",
  "-kernel", kernel.vmlinux, "-initrd", guest.initramfs,
  "-append", `loglevel=4 vmsilo.hostname=${vm} systemd.mount-extra=nix-store:/nix/.ro-store:9p:trans=virtio,version=9p2000.L,msize=16384,cache=loose vmsilo.test.poweroff=1 tsc_early_khz=${khz} console=tty0 console=ttyS0,115200n8`,
  "-nographic", "-no-reboot",
];
const poweredOff = (out: string, status: number | null) => status === 0 && out.includes("VMSILO-TEST done");

const launcherTimes: number[] = [];
const seedBootTimes: number[] = [];
freshRuntime(vm);
const consoleCapture = await new ConsoleCapture(`/run/vmsilo/${vm}/console-backend.socket`, dir).ready();
for (let i = 0; i < RUNS; i++) {
  launcherTimes.push(
    timed("the generated launcher", ["timeout", "120", join(ours, "libexec", "vmsilo", vm, "launch")], (_o, s) => {
      return s === 0;
    }),
  );
  seedBootTimes.push(timed("the qemu-vm.nix-style boot", seedBoot, poweredOff));
}
await consoleCapture.stop();
if (!consoleCapture.text().includes("VMSILO-TEST done")) throw new Error(`the generated launcher's guest did not finish:\n${consoleCapture.text().slice(-2000)}`);
cleanRuntime(vm);

// ---- 2. vm-exec true ----
const execTree = renderTree(vmExecTestConfig(guest, { timeout: 120, kernel: kernel.vmlinux, initramfs: guest.initramfs }), "bench-vm-exec");
const seedExec = join(dir, "seed-vm-exec");
// The seed vm-exec (ORIGINAL.md §D.3) with the qemu-vm.nix runner inlined (§C.1, C.2), on this machine's programs.
writeFileSync(
  seedExec,
  `#!/bin/bash
set -o pipefail -u
script=\${1:?}
tmp=$( mktemp -d nix-vm.XXXXXXXXXX --tmpdir ) && trap "rm -rf '$tmp'" EXIT || exit
mkdir -p $tmp/{xchg,shared} && printf '%s\\n' "$script" >$tmp/xchg/script && chmod +x $tmp/xchg/script || exit
noConsole=1
</etc/hosts grep -oP '127.0.0.[12] (?!localhost)\\K.*' >$tmp/xchg/host
qemu-img create -f qcow2 $tmp/dummyImage 4M &>/dev/null
export NIX_DISK_IMAGE=$tmp/dummyImage
export TMPDIR=$tmp USE_TMPDIR=1 SHARED_DIR=$tmp/shared
export QEMU_KERNEL_PARAMS="init=/nonexistent/init \${noConsole:+console=tty1} edd=off boot.shell_on_fail vmsilo.seedexec=1 tsc_early_khz=${khz}"
export QEMU_NET_OPTS= QEMU_OPTS=
runner() {
  set -e
  NIX_DISK_IMAGE=$(readlink -f "$NIX_DISK_IMAGE")
  mkdir -p "$TMPDIR/xchg"
  cd "$TMPDIR"
  exec timeout 120 qemu-system-x86_64 -machine q35 -accel tcg -cpu max \\
    -name vm-exec -m 1024 -smp 1 -device virtio-rng-pci \\
    -net nic,netdev=user.0,model=virtio -netdev user,id=user.0,"$QEMU_NET_OPTS" \\
    -virtfs local,path=${seedStore},security_model=none,mount_tag=nix-store \\
    -virtfs local,path="$TMPDIR"/xchg,security_model=none,mount_tag=xchg \\
    -virtfs local,path="\${SHARED_DIR:-$TMPDIR/xchg}",security_model=none,mount_tag=shared \\
    -drive cache=writeback,file="$NIX_DISK_IMAGE",id=drive1,if=none,index=1,werror=report \\
    -device virtio-blk-pci,bootindex=1,drive=drive1,serial=root \\
    -device virtio-keyboard -usb -device usb-tablet,bus=usb-bus.0 \\
    -kernel ${kernel.vmlinux} -initrd ${guest.initramfs} \\
    -append "loglevel=4 console=tty0 console=ttyS0,115200n8 $QEMU_KERNEL_PARAMS" \\
    -virtfs local,path=${seedStore},security_model=none,mount_tag=nix-var-nix-db,readonly=on \\
    -nographic -no-reboot $QEMU_OPTS "$@"
}
( runner ) || exit
if [[ -e $tmp/xchg/exit ]] ; then \\exit "$( cat $tmp/xchg/exit )" ; fi
echo "Execution in VM failed!" 1>&2 ; \\exit 1
`,
  { mode: 0o755 },
);
const vmExecTimes: number[] = [];
const seedExecTimes: number[] = [];
for (let i = 0; i < RUNS; i++) {
  vmExecTimes.push(timed("vm-exec true", ["timeout", "150", join(execTree, "bin", "vm-exec"), "true"], (_o, s) => s === 0));
  seedExecTimes.push(timed("the seed vm-exec", ["timeout", "150", seedExec, "true"], (_o, s) => s === 0));
}
rmSync(dir, { recursive: true, force: true });

const fmt = (xs: number[]) => `median ${(median(xs) / 1000).toFixed(2)} s  (runs: ${xs.map((x) => (x / 1000).toFixed(2)).join(" ")})`;
console.log(`kernel: Debian ${kernel.version} (uncompressed vmlinux, both sides), TCG, ${RUNS} runs each, interleaved`);
console.log(`boot to power-off, generated launcher (microvm):      ${fmt(launcherTimes)}`);
console.log(`boot to power-off, qemu-vm.nix style (q35, SeaBIOS):  ${fmt(seedBootTimes)}`);
console.log(`vm-exec true, generated vm-exec:                      ${fmt(vmExecTimes)}`);
console.log(`vm-exec true, seed vm-exec style:                     ${fmt(seedExecTimes)}`);
console.log(`boot ratio (generated launcher / qemu-vm.nix style): ${(median(launcherTimes) / median(seedBootTimes)).toFixed(2)} (goal <= 0.6)`);
console.log(`vm-exec ratio (vm-exec true / seed vm-exec style): ${(median(vmExecTimes) / median(seedExecTimes)).toFixed(2)} (goal <= 0.4)`);
