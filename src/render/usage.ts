/**
 * The user CLIs' usage, defined once: the generated scripts print it for --help and after a usage
 * error, and the man pages and shell completions are made from it, so the three cannot disagree.
 */

export interface CliOption {
  /** The long form, `--json`. */
  readonly flag: string;
  readonly short?: string;
  /** The option's value, written `--lines=N` in help and `--lines N` accepted too where the script says so.
   * FILE and DIR complete as paths. */
  readonly arg?: string;
  /** The values it takes, for completion and the generator's checking. */
  readonly choices?: readonly string[];
  readonly help: string;
  /** The generator's subcommands: an option it cannot do without (shown unbracketed in the synopsis). */
  readonly required?: boolean;
}

/**
 * What a CLI's operands are, for completion: one configured VM, several, a VM then a command line
 * (vm-run), a file (vm-exec's SCRIPT), a subcommand (vmsilo-gen's `commands`), vmsilo-usb's command
 * (list, attach, detach) then a VM, or none.
 */
export type Operands = "vm" | "vms" | "vm-command" | "file" | "command" | "usb" | "none";

/** A subcommand: its name, what it does and its own options. */
export interface CliCommand {
  readonly name: string;
  readonly summary: string;
  readonly options: readonly CliOption[];
}

export interface CliUsage {
  readonly name: string;
  /** One line: what the command does (the man page's NAME line). */
  readonly summary: string;
  /** The argument forms after the name, one usage line each. */
  readonly synopsis: readonly string[];
  readonly options: readonly CliOption[];
  readonly operands: Operands;
  /** Paragraphs after the options. */
  readonly description: readonly string[];
  /** `STATUS meaning` lines. */
  readonly exitStatus: readonly string[];
  /** With operands "command": the subcommands, each in the synopsis and the man page's COMMANDS. */
  readonly commands?: readonly CliCommand[];
}

export const HELP: CliOption = { flag: "--help", short: "-h", help: "print this help and exit" };

const CLIS = {
  "vm-start": {
    name: "vm-start",
    summary: "start VMs",
    synopsis: ["<vm>...", "--all"],
    options: [{ flag: "--all", help: "start every configured VM" }, HELP],
    operands: "vms",
    description: [
      "Starts each VM's service (vmsilo-<vm>-vm.service) and what it needs, in one systemd transaction; a VM is started after the VMs it depends on. polkit lets the vmsilo user do this from a local, active session.",
      "When a VM does not start, says which unit's journal tells why and where the guest's console output is.",
    ],
    exitStatus: ["0 every VM started", "1 a VM did not start", "2 usage error (unknown VM, unknown option)"],
  },
  "vm-stop": {
    name: "vm-stop",
    summary: "shut VMs down cleanly, then stop them",
    synopsis: ["[--wait] <vm>...", "[--wait] --all"],
    options: [
      { flag: "--all", help: "stop every configured VM" },
      { flag: "--wait", help: "stop in reverse dependency order: each VM is down before the VMs it depends on are stopped" },
      HELP,
    ],
    operands: "vms",
    description: [
      "Asks each guest to power off (the VMM's power button) and stops it hard after stopTimeout; returns when the VMs are stopped. Without --wait the VMs are stopped together, in one systemd transaction.",
    ],
    exitStatus: ["0 every VM stopped", "1 a stop failed", "2 usage error (unknown VM, unknown option)"],
  },
  "vm-list": {
    name: "vm-list",
    summary: "list the configured VMs and their state",
    synopsis: ["[--json] [--running]"],
    options: [
      { flag: "--json", help: "print a JSON array, one object per VM (fields below)" },
      { flag: "--running", help: "only VMs that are running, starting or stopping" },
      HELP,
    ],
    operands: "none",
    description: [
      "For each configured VM: its state (running, starting, stopping, stopped or failed, from systemd), hypervisor, memory in MiB, colour, network VM, attached USB devices and whether a restart is pending.",
      "A restart is pending when the VM runs a definition older than the configuration: nixos-rebuild switch leaves running VMs alone, and the new definition applies at the next start.",
      "USB devices come from the USB broker's state file, /run/vmsilo/usb-state.json; the list is empty when it is absent or not valid. The network VM is null while the VM has none.",
      "JSON fields: name, state, hypervisor, memory, color, netvm, usb (objects with devpath, vid, pid), restartPending, unit.",
    ],
    exitStatus: ["0 listed", "1 systemd could not be asked", "2 usage error"],
  },
  "vm-status": {
    name: "vm-status",
    summary: "show a VM's units and the end of its console log",
    synopsis: ["[--lines=N] <vm>"],
    options: [{ flag: "--lines", short: "-n", arg: "N", help: "how many console lines to show (default 20)" }, HELP],
    operands: "vm",
    description: ["Shows the VM's line of vm-list, the state of each of its systemd units, and the last lines the guest printed on its console (/run/vmsilo/<vm>/console.log)."],
    exitStatus: ["0 shown", "2 usage error (unknown VM, bad --lines)"],
  },
  "vm-shell": {
    name: "vm-shell",
    summary: "attach to a VM's console, or log in over ssh",
    synopsis: ["[--ssh [--root]] <vm>"],
    options: [
      { flag: "--ssh", help: "use ssh over vsock (the guest needs your key)" },
      { flag: "--root", help: "log in as root (only with --ssh)" },
      HELP,
    ],
    operands: "vm",
    description: ["Without --ssh, attaches to the serial console; detach with Ctrl+]."],
    exitStatus: ["0 detached or logged out", "1 no console (the VM is not running) or ssh not available", "2 usage error (unknown VM, unknown option)"],
  },
  "vm-run": {
    name: "vm-run",
    summary: "run a command in a VM",
    synopsis: ["[--raw] VM COMMAND [ARGUMENT...]"],
    options: [{ flag: "--raw", help: "pass the guest's terminal control sequences through" }, HELP],
    operands: "vm-command",
    description: [
      "Runs COMMAND in VM; stdin is forwarded, stdout and stderr come back, and vm-run exits with the command's status. On a terminal the guest's control sequences are dropped; --raw passes them through.",
    ],
    exitStatus: ["N the command's status (128+N when signal N killed it)", "2 usage error or unknown VM", "125 the agent could not start the command", "126 not executable", "127 command not found", "255 connection or protocol failure"],
  },
  "vm-exec": {
    name: "vm-exec",
    summary: "run a script in a throwaway qemu VM",
    synopsis: ["[--quiet] [--initrd-console] [--shared=DIR] SCRIPT [-- EXTRA-QEMU-ARGS...]"],
    options: [
      { flag: "--quiet", help: "print nothing but SCRIPT's output (no kernel or qemu messages unless the VM fails)" },
      { flag: "--initrd-console", help: "show the kernel's and the initrd's console while the VM boots" },
      { flag: "--shared", arg: "DIR", help: "mount the host directory DIR read-write at /tmp/shared in the VM" },
      HELP,
    ],
    operands: "file",
    description: ["SCRIPT runs as root with bash in the VM, with the host's store shared read-only and no stdin; its output is streamed here."],
    exitStatus: ["N SCRIPT's exit status", "125 the VM itself failed", "2 usage error (before any VM starts)"],
  },
  "vmsilo-usb": {
    name: "vmsilo-usb",
    summary: "list USB devices, attach one to a VM or detach it",
    synopsis: ["[list [--json]]", "attach <vm> <bus-path|vid:pid>", "detach <vm> <bus-path|vid:pid>"],
    options: [{ flag: "--json", help: "list: print a JSON array, one object per device (fields below)" }, HELP],
    operands: "usb",
    description: [
      "Without a command, or with list: every USB device plugged in (hubs included; root hubs not), with its VID:PID, bus path (like 1-3.2), serial, manufacturer, product and the VM it is attached to.",
      "attach moves the device into the VM, detaching it from another VM first; detach gives it back to the host. A device is named by its bus path or by VID:PID in any case (every device with those ids). The VM must be running, with crosvm, or with qemu and a USB controller; cloud-hypervisor VMs have no USB passthrough.",
      "The move is done by the USB broker, a root service that polkit lets the vmsilo user start from a local, active session; it checks the VM and the device itself, and its message is printed here.",
      "JSON fields: vid, pid, devpath, serial, manufacturer, product (strings, empty when the device has none), vm (null when on the host).",
    ],
    exitStatus: ["0 listed, or every device named moved", "1 refused or failed (the reason is printed)", "2 usage error (unknown VM, command or option; a device that is neither a bus path nor VID:PID)"],
  },
} as const satisfies Record<string, CliUsage>;

export type CliName = keyof typeof CLIS;

/** Every user CLI with a usage here; a tree with bin/<name> gets its man page and completions
 * (a new CLI, vmsilo-usb for one, only needs its entry above). */
export const CLI_NAMES = Object.keys(CLIS) as CliName[];

export const cliUsage = (name: CliName): CliUsage => CLIS[name];

export const optionWords = (o: CliOption) => [o.short, o.arg ? `${o.flag}=${o.arg}` : o.flag].filter((w) => w !== undefined).join(", ");

/** A subcommand's synopsis: its required options as they are, the others in brackets. */
export const commandSynopsis = (c: CliCommand) =>
  [c.name, ...c.options.map((o) => (o.required ? optionWords(o) : `[${optionWords(o)}]`))].join(" ");

/** The text `--help` prints and a usage error ends with. */
export function usageText(cli: CliUsage): string {
  const lines = cli.synopsis.map((s, i) => `${i === 0 ? "usage:" : "      "} ${cli.name} ${s}`);
  const width = Math.max(...cli.options.map((o) => optionWords(o).length));
  const options = cli.options.map((o) => `  ${optionWords(o).padEnd(width)}  ${o.help}`);
  const statusWidth = Math.max(...cli.exitStatus.map((l) => l.indexOf(" ")));
  const statuses = cli.exitStatus.map((l) => `  ${l.slice(0, l.indexOf(" ")).padEnd(statusWidth)}  ${l.slice(l.indexOf(" ") + 1)}`);
  return [...lines, "", ...options, ...cli.description.flatMap((p) => ["", ...wrap(p, 100)]), "", "Exit status:", ...statuses].join("\n");
}

/** Words of `text` in lines of at most `width` characters (a longer word stays whole). */
export function wrap(text: string, width: number): string[] {
  const out: string[] = [];
  let line = "";
  for (const word of text.split(" ")) {
    if (line && line.length + 1 + word.length > width) {
      out.push(line);
      line = word;
    } else line = line ? `${line} ${word}` : word;
  }
  if (line) out.push(line);
  return out;
}

/** vm-run's usage as a C header for the client (agent/vmsilo-run.c), which has no other copy of it. */
export function vmRunUsageHeader(): string {
  const lines = `${usageText(cliUsage("vm-run"))}\n`.split(/(?<=\n)/);
  const literal = lines.map((l) => `  "${l.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n")}"`).join("\n");
  return `/* Generated by vmsilo-gen from src/render/usage.ts (vm-run's usage, also its man page).
 * Do not edit: change usage.ts and run UPDATE_DOCS=1 node --test dist/test/vmrun/usage.test.js. */
static const char VM_RUN_USAGE[] =\n${literal};\n`;
}
