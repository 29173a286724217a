import type { Model, VmModel } from "../model/model.js";
import { OUT } from "../model/paths.js";
import { driverFor } from "../hypervisors/index.js";
import { shellJoin, shellLines, shellQuote } from "../shell/quote.js";
import type { Tools } from "./context.js";
import { type GeneratedFile, provenance, vmSource } from "./files.js";
import { renderTemplate } from "./templates.js";

const header = (source: string) => provenance(source).map((l) => `# ${l}`).join("\n");

function script(path: string, template: string, data: object): GeneratedFile {
  return { path, mode: 0o755, content: renderTemplate(template, data) };
}

/** A `case` pattern matching exactly these words (quoted, so nothing in them is a glob). */
const casePattern = (words: readonly string[]) => words.map(shellQuote).join(" | ");

export function renderVmScripts(model: Model, vm: VmModel, t: Tools): GeneratedFile[] {
  const driver = driverFor(vm.config.hypervisor);
  const dir = `${OUT.libexec}/${vm.name}`;
  const ownBdfs = vm.pciSysfsPaths.map((p) => p.slice(p.lastIndexOf("/") + 1));
  const launch = script(`${dir}/launch`, "launch.sh.hbs", {
    bash: t.bash,
    header: header(vmSource(vm.name)),
    vm: vm.name,
    iommu: ownBdfs.length ? { ownPattern: casePattern(ownBdfs), readlink: shellQuote(t.readlink), devices: ownBdfs.map(shellQuote) } : false,
    rmSockets: shellJoin([t.rm, "-f", "--", ...driver.ownSockets(vm)]),
    argv: shellLines(driver.launchCommand(vm, model)),
  });
  const seconds = model.config.stopTimeout;
  const stop = script(`${dir}/stop`, "stop.sh.hbs", {
    bash: t.bash,
    header: header(vmSource(vm.name)),
    vm: vm.name,
    seconds,
    graceful: shellJoin(driver.gracefulStopArgv(vm, model)),
    force: shellJoin(driver.forceStopArgv(vm, model)),
    waitExit: shellJoin([t.timeout, String(seconds), t.tail, "-s", "0.2", "-f", "/dev/null"]),
  });
  return [launch, stop];
}

export function renderSharedScripts(t: Tools): GeneratedFile[] {
  return [script(`${OUT.libexec}/wait-for-socket`, "wait-for-socket.sh.hbs", { bash: t.bash, header: header("programs.vmsilo.startTimeout"), sleep: shellQuote(t.sleep) })];
}

export function renderUserClis(model: Model, t: Tools): GeneratedFile[] {
  const vmList = model.vms.length ? model.vms.map((v) => v.name).join(", ") : "(none configured)";
  const verbCli = (command: string, verb: string, summary: string) =>
    script(`${OUT.bin}/${command}`, "vm-unit-verb.sh.hbs", {
      bash: t.bash,
      header: header("programs.vmsilo.nixosVms"),
      command,
      verb,
      summary,
      vmList,
      systemctl: shellQuote(t.systemctl),
      vms: model.vms.map((v) => ({ pattern: casePattern([v.name]), unit: shellQuote(v.units.vm) })),
    });
  const shell = script(`${OUT.bin}/vm-shell`, "vm-shell.sh.hbs", {
    bash: t.bash,
    header: header("programs.vmsilo.nixosVms"),
    vmList,
    ssh: t.ssh === null ? false : shellQuote(t.ssh),
    socat: shellQuote(t.socat),
    vms: model.vms.map((v) => ({ pattern: casePattern([v.name]), cid: v.id, console: shellQuote(v.paths.console) })),
  });
  return [
    verbCli("vm-start", "start", "start a VM (authorised by polkit for the vmsilo user)"),
    verbCli("vm-stop", "stop", "shut a VM down cleanly, then stop it"),
    shell,
  ];
}
