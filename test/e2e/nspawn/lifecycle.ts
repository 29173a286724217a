/**
 * The lifecycle of every VM of a rendered tree under real systemd (harness.ts), as its user would live
 * it. For each VM the driver proves:
 *
 *  - `vm-start <vm>` as the user, from a local active session, goes through polkit and brings up the
 *    prep unit, every helper (GPU, sound, Wayland context, virtiofsd, shared home, console relay), the
 *    VM service and its command socket, each active; each helper runs with its hardening on (the
 *    kernel's view of its main process: no_new_privs, a seccomp filter; systemd's ProtectSystem and
 *    PrivateNetwork);
 *  - `vm-shell <vm>` (console mode) shows what the VMM printed on its serial console, and the console
 *    relay's console.log, the user's to read, holds it too;
 *  - the user cannot start, stop or restart any other unit (the VM's helpers, systemd-journald), and
 *    neither another user nor the user outside a session (setpriv, as a background service would)
 *    can start or stop the VM;
 *  - `vm-stop <vm>` is the graceful stop (the VMM was asked to power the guest off), after which no
 *    unit of the VM is failed or active and nothing its units clean up is left: sockets, the console
 *    PTY, taps, the ephemeral disk;
 *  - a `kill -9` of the VMM leaves nothing behind either, and the VM starts and stops again after it.
 *
 * What to check is read from the tree itself: the VM's units, what their ExecStopPost= removes and
 * their ExecStartPost= waits for, the taps its ExecStartPre= creates, their hardening settings.
 */
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { shellQuote } from "../../../src/shell/quote.js";
import { ROOT } from "../../support/harness.js";
import { execArgv, unitValues } from "../support.js";

export interface VmExpectations {
  /** A grep -E pattern of what the console shows once the guest is up. */
  console: string;
  /** A grep -E pattern, over the VM unit's journal and console.log, that proves the graceful stop. */
  graceful: string;
  /** A pgrep -f pattern of the VMM process (the launcher of cloud-hypervisor waits for it). */
  vmm: string;
}

/** The stand-ins' evidence (../standins/), and the test guest's for qemu (test/e2e/guest/init). */
export function expectationsFor(hypervisor: string, vm: string): VmExpectations {
  if (hypervisor === "cloud-hypervisor") return { console: `${vm} login: `, graceful: "API PUT /api/v1/vm.power-button", vmm: "cloud-hypervisor\\.js cloud-hypervisor" };
  if (hypervisor === "qemu") return { console: "VMSILO-TEST ready", graceful: "VMSILO-TEST powerbutton", vmm: "qemu-system" };
  return { console: `${vm} login: `, graceful: "control request: powerbtn", vmm: "crosvm\\.js .*run --name" };
}

const last = (text: string, key: string) => unitValues(text, "Service", key).at(-1);

/** The facts of one VM, as bash assignments for the lifecycle function. */
function vmFacts(out: string, vm: string, e: VmExpectations): string {
  const dir = join(out, "lib", "systemd", "system");
  const own = new RegExp(`^vmsilo-${vm}-(prep|vm|console-relay|gpu|sound|shared-home|wayland-seccontext|virtiofsd-.+)\\.service$`);
  const units = readdirSync(dir).filter((f) => own.test(f)).sort();
  const text = (u: string) => readFileSync(join(dir, u), "utf8");
  const helpers = units.filter((u) => u !== `vmsilo-${vm}-vm.service` && u !== `vmsilo-${vm}-prep.service`);
  const leftovers = new Set<string>();
  const taps: string[] = [];
  for (const u of units) {
    for (const line of unitValues(text(u), "Service", "ExecStopPost")) {
      const argv = execArgv(line);
      if (argv[0]!.endsWith("/rm")) for (const p of argv.slice(argv.indexOf("--") + 1)) leftovers.add(p);
    }
    for (const line of unitValues(text(u), "Service", "ExecStartPost")) {
      const argv = execArgv(line);
      if (argv[0]!.endsWith("/wait-for-socket")) leftovers.add(argv[1]!);
    }
    for (const line of unitValues(text(u), "Service", "ExecStartPre")) {
      const argv = execArgv(line);
      if (argv[1] === "tuntap" && argv[2] === "add") taps.push(argv[4]!);
    }
  }
  const which = (pred: (t: string) => boolean) => helpers.filter((u) => pred(text(u)));
  // The app id the security-context helper gives the compositor (none without a GPU).
  const seccontext = units.find((u) => u === `vmsilo-${vm}-wayland-seccontext.service`);
  const helperArgv = seccontext ? execArgv(last(text(seccontext), "ExecStart")!) : [];
  const appId = helperArgv.includes("--app-id") ? helperArgv[helperArgv.indexOf("--app-id") + 1]! : "";
  const arr = (name: string, xs: readonly string[]) => `${name}=(${xs.map(shellQuote).join(" ")})`;
  return [
    `vm=${shellQuote(vm)}`,
    arr("units", units),
    arr("helpers", helpers),
    arr("leftovers", [...leftovers].sort()),
    arr("taps", taps),
    arr("nnp", which((t) => last(t, "NoNewPrivileges") === "yes")),
    arr("seccomp", which((t) => last(t, "SystemCallFilter") !== undefined)),
    arr("strict", which((t) => last(t, "ProtectSystem") === "strict")),
    arr("privnet", which((t) => last(t, "PrivateNetwork") === "yes")),
    `console_expect=${shellQuote(e.console)}`,
    `graceful=${shellQuote(e.graceful)}`,
    `vmm_match=${shellQuote(e.vmm)}`,
    `wayland_app_id=${shellQuote(appId)}`,
  ].join("\n");
}

/** The driver's bash, beside this file in the repository. */
const LIFECYCLE = readFileSync(join(ROOT, "test", "e2e", "nspawn", "lifecycle.sh"), "utf8");

/** The driver: the lifecycle of each VM of `vms` (name → hypervisor), one after the other. */
export function lifecycleDriver(out: string, vms: Record<string, string>, expect: Record<string, Partial<VmExpectations>> = {}): string {
  const runs = Object.entries(vms).map(([vm, hv]) => `${vmFacts(out, vm, { ...expectationsFor(hv, vm), ...expect[vm] })}\nlifecycle\n`);
  return `${LIFECYCLE}\n${runs.join("\n")}\ncheck no-failed-units "[ -z \\"\\$(systemctl list-units --failed --no-legend 'vmsilo*')\\" ]"\n`;
}

/** The VMs of a configuration, name → hypervisor (crosvm unless it says otherwise). */
export function hypervisors(config: Record<string, any>): Record<string, string> {
  return Object.fromEntries(Object.entries(config.nixosVms as Record<string, any>).map(([name, vm]) => [name, vm.hypervisor ?? "crosvm"]));
}
