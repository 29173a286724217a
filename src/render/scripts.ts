import type { Model, VmModel } from "../model/model.js";
import { OUT, RUN_ROOT, SHARED_LIBEXEC, USB_STATE } from "../model/paths.js";
import { stopWaves } from "../model/model.js";
import { CLIPBOARD_MAX_BYTES, cliUsage, usageText, VM_COPY_LIMITS } from "./usage.js";
import { driverFor } from "../hypervisors/index.js";
import { launchPlanOf } from "../hypervisors/driver.js";
import { shellJoin, shellLines, shellQuote } from "../shell/quote.js";
import type { Tools } from "./context.js";
import { type GeneratedEntry, type GeneratedFile, isVmSource, provenance, vmSource } from "./files.js";
import type { Units } from "./units/index.js";
import type { UnitFile } from "../systemd/unit.js";
import { renderTemplate } from "./templates.js";
import { renderVmExec } from "./vm-exec.js";
import { checkedDisks, handedOver } from "./disks.js";

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
  const common = {
    bash: t.bash,
    header: header(vmSource(vm.name)),
    vm: vm.name,
    iommu: ownBdfs.length ? { ownPattern: casePattern(ownBdfs), readlink: shellQuote(t.readlink), devices: ownBdfs.map(shellQuote) } : false,
    rmSockets: shellJoin([t.rm, "-f", "--", ...driver.ownSockets(vm)]),
  };
  const plan = launchPlanOf(driver, vm, model);
  const extra: GeneratedFile[] = [];
  let launch: GeneratedFile;
  if (plan.kind === "exec") launch = script(`${dir}/launch`, "launch.sh.hbs", { ...common, argv: shellLines(driver.launchCommand(vm, model)) });
  else {
    // Two-step launch (cloud-hypervisor): the VMM in the background, then create and boot over its API.
    const { uid, gid } = model.config.user;
    extra.push({ path: plan.configPath, mode: 0o644, content: plan.config });
    launch = script(`${dir}/launch`, "launch-api.sh.hbs", {
      ...common,
      apiSocket: shellQuote(plan.apiSocket),
      configFile: shellQuote(t.installed(plan.configPath)),
      seconds: model.config.startTimeout,
      sleep: shellQuote(t.sleep),
      vmm: shellLines(driver.launchCommand(vm, model)),
      // Program names for the messages (`cloud-hypervisor`, `ch-remote`).
      vmmName: driver.launchCommand(vm, model)[0]![0]!.replace(/^.*\//, ""),
      remoteName: plan.create[0]!.replace(/^.*\//, ""),
      create: shellJoin(plan.create),
      boot: shellJoin(plan.boot),
      userSockets: plan.userSockets.length ? plan.userSockets.map((p) => `if [ ! -S ${shellQuote(p)} ] || [ -L ${shellQuote(p)} ]; then fail ${shellQuote(`${p} is not the socket the VMM created`)}; fi\n${shellJoin([t.chown, "-h", `${uid}:${gid}`, "--", p])}`).join("\n") : false,
      notify: shellJoin([t.systemdNotify, "--ready"]),
    });
  }
  const seconds = model.config.stopTimeout;
  const stop = script(`${dir}/stop`, "stop.sh.hbs", {
    bash: t.bash,
    header: header(vmSource(vm.name)),
    vm: vm.name,
    seconds,
    graceful: shellJoin(driver.gracefulStopArgv(vm, model, t)),
    force: shellJoin(driver.forceStopArgv(vm, model, t)),
    waitExit: shellJoin([t.timeout, String(seconds), t.tail, "-s", "0.2", "-f", "/dev/null"]),
  });
  const handed = handedOver(vm);
  if (handed) {
    extra.push(
      script(`${dir}/hand-over`, "hand-over.sh.hbs", {
        ...common,
        user: vm.vmmUser,
        owner: shellQuote(`${vm.vmmUser}:${vm.vmmUser}`),
        rw: handed.rw.map(shellQuote).join(" "),
        ro: handed.ro.map(shellQuote).join(" "),
        vfio: ownBdfs.map(shellQuote).join(" "),
        readlink: shellQuote(t.readlink),
        chown: shellQuote(t.chown),
        chmod: shellQuote(t.chmod),
        stat: shellQuote(t.stat),
      }),
    );
  }
  return [launch, stop, ...extra];
}

export function renderSharedScripts(t: Tools, model?: Model): GeneratedFile[] {
  const files = [script(`${OUT.libexec}/${SHARED_LIBEXEC.waitForSocket}`, "wait-for-socket.sh.hbs", { bash: t.bash, header: header("programs.vmsilo.startTimeout"), sleep: shellQuote(t.sleep) })];
  if (model) files.push(...renderQemuHelpers(model, t));
  if (model?.config.isolatedPciDevices.length) {
    files.push(script(`${OUT.libexec}/${SHARED_LIBEXEC.vfioBind}`, "vfio-bind.sh.hbs", { bash: t.bash, header: header("programs.vmsilo.isolatedPciDevices"), readlink: shellQuote(t.readlink), sleep: shellQuote(t.sleep) }));
  }
  return files;
}

/** ssh's ProxyCommand: the VM's ssh socket, whose proxy unit reaches the guest's port 22 on every
 * hypervisor (it holds the capability the privileged source port needs; the user does not). */
const sshConnect = (vm: VmModel, t: Tools): string[] => [t.socat, "-", `UNIX-CONNECT:${vm.paths.sshSocket}`];

export function renderUserClis(model: Model, t: Tools, units: Units): GeneratedEntry[] {
  const vmList = model.vms.length ? model.vms.map((v) => v.name).join(", ") : "(none configured)";
  const waves = stopWaves(model.vms);
  // vm-start leaves disposable slots out: taking a slot starts it (units/disposable.ts).
  const startable = (verb: string) => model.vms.filter((v) => verb === "stop" || v.slot === null);
  const verbCli = (command: "vm-start" | "vm-stop", verb: string) =>
    script(`${OUT.bin}/${command}`, "vm-unit-verb.sh.hbs", {
      bash: t.bash,
      header: header("programs.vmsilo.nixosVms"),
      command,
      verb,
      summary: cliUsage(command).summary,
      usage: usageText(cliUsage(command)),
      vmList,
      stop: verb === "stop",
      // The state `systemctl is-active` prints for a VM the verb got where it should.
      wanted: verb === "stop" ? "inactive" : "active",
      allVms: startable(verb).map((v) => shellQuote(v.name)).join(" "),
      waves: Math.max(0, ...waves.values()) + 1,
      systemctl: shellQuote(t.systemctl),
      // A start that failed: the guest may have printed why (the console relay's console.log).
      consoleLogs: verb === "start",
      runRoot: RUN_ROOT,
      vms: startable(verb).map((v) => ({ pattern: casePattern([v.name]), unit: shellQuote(v.units.vm), wave: waves.get(v.name)! })),
      // A disposable VM runs only as its slots, and a slot starts only when taken.
      refused: verb === "stop" ? [] : [
        ...model.disposables.map((d) => ({ pattern: casePattern([d.name]), why: shellQuote(`${d.name} is a disposable VM: run a command in a fresh instance with vm-run --disposable ${d.name} COMMAND`) })),
        ...model.vms.filter((v) => v.slot !== null).map((v) => ({ pattern: casePattern([v.name]), why: shellQuote(`${v.name} is a slot of disposable VM ${v.slot!.pattern}, started by vm-run --disposable ${v.slot!.pattern}`) })),
      ],
    });
  const shell = script(`${OUT.bin}/vm-shell`, "vm-shell.sh.hbs", {
    bash: t.bash,
    usage: usageText(cliUsage("vm-shell")),
    header: header("programs.vmsilo.nixosVms"),
    vmList,
    ssh: t.ssh === null ? false : shellQuote(t.ssh),
    socat: shellQuote(t.socat),
    systemctl: shellQuote(t.systemctl),
    sleep: shellQuote(t.sleep),
    vms: model.vms.map((v) => ({
      pattern: casePattern([v.name]),
      unit: shellQuote(v.units.vm),
      // ssh runs ProxyCommand with `sh -c` after expanding %-tokens: shell-quote it, then double `%`.
      proxyCommand: t.ssh === null ? false : shellQuote(`ProxyCommand=${shellJoin(sshConnect(v, t)).replace(/%/g, "%%")}`),
      console: shellQuote(v.paths.console),
    })),
  });
  return [
    verbCli("vm-start", "start"),
    verbCli("vm-stop", "stop"),
    // The C client itself, not a script around it: no interpreter start-up on every call (issue 4).
    // It checks the VM name against the D1 grammar and takes /run/vmsilo/<vm>/command.socket, the
    // path paths.ts gives every VM, and lists the VMs with a command socket on a usage error.
    { path: `${OUT.bin}/vm-run`, link: t.vmRun },
    shell,
    script(`${OUT.bin}/vm-copy`, "vm-copy.sh.hbs", {
      bash: t.bash,
      header: header("programs.vmsilo.nixosVms"),
      summary: cliUsage("vm-copy").summary,
      usage: usageText(cliUsage("vm-copy")),
      vmList,
      vms: model.vms.map((v) => ({ pattern: casePattern([v.name]) })),
      vmRun: shellQuote(t.vmRun),
      check: shellQuote(t.copyCheck),
      maxBytes: VM_COPY_LIMITS.maxBytes,
      maxEntries: VM_COPY_LIMITS.maxEntries,
      mktemp: shellQuote(t.mktemp),
      rm: shellQuote(t.rm),
      stat: shellQuote(t.stat),
      cat: shellQuote(t.cat),
      head: shellQuote(t.head),
      tr: shellQuote(t.tr),
    }),
    t.wlCopy === null || t.wlPaste === null
      ? script(`${OUT.bin}/vm-clipboard`, "unavailable.sh.hbs", { bash: t.bash, header: header("programs.wlClipboard"), command: "vm-clipboard", usage: usageText(cliUsage("vm-clipboard")), why: "programs.wlClipboard is not set in vmsilo.json" })
      : script(`${OUT.bin}/vm-clipboard`, "vm-clipboard.sh.hbs", {
          bash: t.bash,
          header: header("programs.vmsilo.nixosVms"),
          summary: cliUsage("vm-clipboard").summary,
          usage: usageText(cliUsage("vm-clipboard")),
          vmList,
          vms: model.vms.map((v) => ({ pattern: casePattern([v.name]) })),
          vmRun: shellQuote(t.vmRun),
          wlCopy: shellQuote(t.wlCopy),
          wlPaste: shellQuote(t.wlPaste),
          limit: CLIPBOARD_MAX_BYTES,
          limitPlusOne: CLIPBOARD_MAX_BYTES + 1,
          mktemp: shellQuote(t.mktemp),
          rm: shellQuote(t.rm),
          stat: shellQuote(t.stat),
          head: shellQuote(t.head),
        }),
    ...renderStateClis(model, t, units, vmList),
    ...renderVmExec(model, t),
  ];
}

/** vm-list and vm-status: what runs, read from systemd, the tree's manifest and the VMs' run directories. */
function renderStateClis(model: Model, t: Tools, units: Units, vmList: string): GeneratedFile[] {
  if (t.jq === null) {
    // Without jq there is nothing to read the manifest with: each says so instead.
    return (["vm-list", "vm-status"] as const).map((command) =>
      script(`${OUT.bin}/${command}`, "unavailable.sh.hbs", { bash: t.bash, header: header("programs.jq"), command, usage: usageText(cliUsage(command)), why: "programs.jq is not set in vmsilo.json" }),
    );
  }
  const list = script(`${OUT.bin}/vm-list`, "vm-list.sh.hbs", {
    bash: t.bash,
    header: header("programs.vmsilo.nixosVms"),
    usage: usageText(cliUsage("vm-list")),
    names: model.vms.map((v) => shellQuote(v.name)).join(" "),
    units: model.vms.map((v) => shellQuote(v.units.vm)).join(" "),
    systemctl: shellQuote(t.systemctl),
    jq: shellQuote(t.jq),
    manifest: shellQuote(t.installed(OUT.manifest)),
    runRoot: RUN_ROOT,
    usbState: shellQuote(USB_STATE),
  });
  const status = script(`${OUT.bin}/vm-status`, "vm-status.sh.hbs", {
    bash: t.bash,
    header: header("programs.vmsilo.nixosVms"),
    usage: usageText(cliUsage("vm-status")),
    vmList,
    vmListCommand: shellQuote(t.installed(`${OUT.bin}/vm-list`)),
    systemctl: shellQuote(t.systemctl),
    tail: shellQuote(t.tail),
    runRoot: RUN_ROOT,
    vms: model.vms.map((v) => ({
      pattern: casePattern([v.name]),
      systemUnits: ownUnitPatterns(units.system, v).map(shellQuote).join(" "),
      userUnits: ownUnitPatterns(units.user, v).map(shellQuote).join(" "),
    })),
  });
  return [list, status];
}

/** A VM's units as `systemctl list-units` patterns: a template's instances for an `@`-template. */
const ownUnitPatterns = (units: readonly UnitFile[], vm: VmModel) => units.filter((u) => isVmSource(u.source, vm.name)).map((u) => u.name.replace(/@\./, "@*.")).sort();

/** The QMP client (trees with a qemu VM) and the disk creator (trees with a `createSize` disk). */
function renderQemuHelpers(model: Model, t: Tools): GeneratedFile[] {
  const files: GeneratedFile[] = [];
  if (model.vms.some((v) => v.config.hypervisor === "qemu")) {
    files.push(script(`${OUT.libexec}/${SHARED_LIBEXEC.qmp}`, "qmp.sh.hbs", { bash: t.bash, header: header("programs.vmsilo.nixosVms.*.hypervisor"), socat: shellQuote(t.socat), seconds: model.config.startTimeout }));
  }
  if (model.vms.some((v) => checkedDisks(v).length > 0)) {
    files.push(script(`${OUT.libexec}/${SHARED_LIBEXEC.checkDisks}`, "check-disks.sh.hbs", { bash: t.bash, header: header("programs.vmsilo.nixosVms.*.additionalDisks"), realpath: shellQuote(t.realpath), stat: shellQuote(t.stat) }));
  }
  if (model.vms.some((v) => v.createdDisks.length > 0)) {
    files.push(
      script(`${OUT.libexec}/${SHARED_LIBEXEC.createDisk}`, "create-disk.sh.hbs", {
        bash: t.bash,
        header: header("programs.vmsilo.nixosVms.*.additionalDisks.*.createSize"),
        rm: shellQuote(t.rm),
        truncate: shellQuote(t.truncate),
        mv: shellQuote(t.mv),
        qemuImg: t.qemuImg === null ? false : shellQuote(t.qemuImg),
      }),
    );
  }
  return files;
}

