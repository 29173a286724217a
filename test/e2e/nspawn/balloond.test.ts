/**
 * vmsilo-balloond under its generated unit, in real systemd (harness.ts): started by vmsilo.target with
 * its sandbox on, it reaches a real qemu VM (TCG, the test guest, its QMP socket in the directory only
 * the VM's own user may enter), a crosvm stand-in (its SOCK_SEQPACKET control socket, root's, in
 * crosvm's JSON) and a cloud-hypervisor stand-in (its API socket, root's), inflates the
 * qemu guest's idle memory, and grows the cloud-hypervisor VM's balloon once the stand-in PSI file says
 * the host is critical. Its process has no new privileges, a seccomp filter and no capability but
 * CAP_DAC_OVERRIDE, and stays under its memory budget.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { example } from "../../support/harness.js";
import { CACHE, qemuTestConfig, skip, testGuest } from "../support.js";
import { STAGE } from "../standins/index.js";
import { bootNspawn, nspawnPrerequisites } from "./harness.js";

const DRIVER = String.raw`
d=vmsilo-balloond.service
log() { journalctl -q --no-pager -u "$d" -o cat; }
check balloond-started "until_ 'systemctl is-active -q $d' 20"
until_ 'log | grep -q "VMs with a balloon"' 20
pid=$(systemctl show -P MainPID "$d")
cat /proc/$pid/status >"$R/balloond-status.txt"
nsenter -t $pid -m -- sh -c 'test -w /etc && echo etc-writable; test -w /run/vmsilo && echo run-writable; grep " / \| /run " /proc/self/mountinfo' >"$R/balloond-ns.txt" 2>&1
check balloond-no-new-privs "grep -Eq '^NoNewPrivs:[[:space:]]+1$' /proc/$pid/status"
check balloond-seccomp "grep -Eq '^Seccomp:[[:space:]]+2$' /proc/$pid/status"
# CAP_DAC_OVERRIDE (bit 1) alone.
check balloond-capabilities "grep -Eq '^CapBnd:[[:space:]]+0+2$' /proc/$pid/status"
check balloond-read-only "! nsenter -t $pid -m -- test -w /etc && ! nsenter -t $pid -m -- test -w /run/vmsilo"
timeout 60 systemctl start vmsilo-qb-vm.service vmsilo-cb-vm.service vmsilo-cv-vm.service
check vms-started "systemctl is-active -q vmsilo-qb-vm.service && systemctl is-active -q vmsilo-cb-vm.service && systemctl is-active -q vmsilo-cv-vm.service"
check crosvm-socket-seqpacket "grep -q ' 0005 .* /run/vmsilo/cv/crosvm-control.socket$' /proc/net/unix"
check crosvm-balloon-inflated "until_ 'log | grep -q \"cv: balloon 0 -> 384 MiB (inflate\"' 30"
check crosvm-standin-set "journalctl -q --no-pager -u vmsilo-cv-vm.service | grep -q 'balloon set to 402653184 bytes'"
"$CROSVM/bin/crosvm" balloon_stats /run/vmsilo/cv/crosvm-control.socket >"$R/crosvm-stats.json" 2>&1
check crosvm-cli-stats "grep -q '\"balloon_actual\":402653184' $R/crosvm-stats.json"
check qmp-socket-private "[ \"\$(stat -c %U:%a /run/vmsilo/qb/vmm)\" = vmsilo-qb:700 ]"
check qemu-balloon-inflated "until_ 'log | grep -q \"qb: balloon 0 -> [0-9]* MiB (inflate\"' 150"
check ch-seen "until_ 'log | grep -q \"cb: running\"' 20"
check ch-held-while-calm "! log | grep -q 'cb: balloon'"
printf 'some avg10=60.00 avg60=30.00 avg300=10.00 total=9000000\nfull avg10=40.00 avg60=20.00 avg300=5.00 total=6000000\n' >/run/vmsilo-e2e/psi
check ch-balloon-host-pressure "until_ 'log | grep -q \"cb: balloon 0 -> 64 MiB (host-pressure\"' 20"
check ch-standin-resized "journalctl -q --no-pager -u vmsilo-cb-vm.service | grep -q 'balloon resized to 67108864 bytes'"
rss=$(sed -n 's/^VmRSS:[[:space:]]*\([0-9]*\) kB$/\1/p' "/proc/$pid/status")
echo "balloond-rss-kib $rss" >>"$R/result"
check balloond-rss-budget "[ $rss -lt 16384 ]"
check balloond-alive "[ \"\$(systemctl show -P MainPID $d)\" = $pid ]"
log >"$R/balloond.log"
timeout 60 systemctl stop vmsilo-qb-vm.service vmsilo-cb-vm.service vmsilo-cv-vm.service
# qemu serves one QMP client at a time: the daemon's must not keep the stop script's waiting.
check qemu-graceful "! journalctl -q --no-pager -u vmsilo-qb-vm.service | grep -q 'did not shut down\|could not ask' && ! systemctl is-failed -q vmsilo-qb-vm.service"
check crosvm-graceful "journalctl -q --no-pager -u vmsilo-cv-vm.service | grep -q 'control request: powerbtn'"
check balloond-notices-stop "until_ 'log | grep -q \"qb: not answering\"' 20"
`;

test("vmsilo-balloond under its unit: reaches qemu's QMP and cloud-hypervisor's API from its sandbox, inflates idle memory, answers host pressure", async (t) => {
  const why = nspawnPrerequisites();
  if (why) return skip(t, why);
  const g = testGuest();
  if (typeof g === "string") return skip(t, `the qemu VM's test guest: ${g}`);
  const base = example("desktop") as Record<string, any>;
  const q = qemuTestConfig(g, "qb", { memory: 256, balloon: { minMemory: 64 }, kernelParams: ["console=ttyS0", "quiet"] }) as Record<string, any>;
  const qb = JSON.parse(JSON.stringify(q.nixosVms.qb).replaceAll(CACHE, `${STAGE}/cache`));
  const store = `/nix/store/${"1".repeat(31)}7-vmsilo-rootfs-cb`;
  delete base.isolatedPciDevices;
  const config = {
    ...base,
    programs: { ...base.programs, qemu: `/nix/store/${"2".repeat(32)}-qemu-10.1.2` },
    qemu: q.qemu,
    balloond: { logLevel: "info", pollInterval: "1s", minPollInterval: "250ms", criticalHostPercent: 1, criticalGuestAvailable: "24M", guestAvailableBias: "48M", psiCeiling: 20, extraArgs: ["--psi-path", "/run/vmsilo-e2e/psi"] },
    nixosVms: {
      qb,
      cv: { kernel: `${store}/bzImage`, initramfs: `${store}/initrd`, rootDisk: { path: `${store}/nixos.erofs` }, memory: 512, cpus: 1 },
      cb: { hypervisor: "cloud-hypervisor", kernel: `${store}/bzImage`, initramfs: `${store}/initrd`, rootDisk: { path: `${store}/nixos.erofs` }, memory: 512, cpus: 1 },
    },
  };
  const run = bootNspawn({ label: "balloond", config, driver: `mkdir -p /run/vmsilo-e2e\nCROSVM=${base.programs.crosvm}\n${DRIVER}`, timeoutS: 300 });
  t.after(run.remove);
  const { readFileSync } = await import("node:fs");
  const extra = () => ["balloond-status.txt", "balloond-ns.txt"].map((f) => { try { return `--- ${f}\n${readFileSync(`${run.results}/${f}`, "utf8")}`; } catch { return ""; } }).join("\n");
  assert.ok(run.done, run.context() + extra());
  assert.deepEqual(run.failed, [], run.context() + extra());
});
