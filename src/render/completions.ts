import { OUT } from "../model/paths.js";
import { shellQuote } from "../shell/quote.js";
import { type GeneratedFile, provenance } from "./files.js";
import { renderTemplate } from "./templates.js";
import type { CliUsage } from "./usage.js";

/** vmsilo-usb's commands (its first operand). */
const USB_COMMANDS = ["list", "attach", "detach"];
const header = (cli: CliUsage) => provenance(`programs.vmsilo.nixosVms (the VM names) and ${cli.name}'s usage`).map((l) => `# ${l}`).join("\n");
const words = (o: CliUsage["options"][number]) => [...(o.short ? [o.short] : []), o.flag];

/**
 * bash, zsh and fish completions of a user CLI: its options from its usage, and the VM names of
 * this configuration where it takes VMs. One file per shell, where each shell looks for them.
 */
export function renderCompletions(cli: CliUsage, vms: readonly string[]): GeneratedFile[] {
  return [bash(cli, vms), zsh(cli, vms), fish(cli, vms)];
}

function bash(cli: CliUsage, vms: readonly string[]): GeneratedFile {
  const k = cli.operands;
  const content = renderTemplate("completion.bash.hbs", {
    header: header(cli),
    command: cli.name,
    fn: cli.name.replace(/-/g, "_"),
    valueOptions: cli.options.filter((o) => o.arg).flatMap(words).join(" | "),
    options: shellQuote(cli.options.flatMap(words).join(" ")),
    vms: shellQuote(vms.join(" ")),
    vmAt: k === "vms" ? "true" : k === "vm" || k === "vm-command" ? '[ "$operands" = 0 ]' : k === "usb" ? '[ "$operands" = 1 ] && [ "${COMP_WORDS[1]}" != list ]' : false,
    files: k === "file",
    commands: k === "vm-command",
    subcommands: k === "usb" ? shellQuote(USB_COMMANDS.join(" ")) : false,
  });
  return { path: `${OUT.bashCompletions}/${cli.name}`, mode: 0o644, content };
}

/** Text inside a zsh `_arguments` description, itself inside single quotes. */
const zshDesc = (text: string) => text.replace(/[\\[\]:]/g, (c) => `\\${c}`).replace(/'/g, "'\\''");

function zsh(cli: CliUsage, vms: readonly string[]): GeneratedFile {
  const specs: string[] = [];
  for (const o of cli.options) {
    const desc = `[${zshDesc(o.help)}]`;
    if (o.short) specs.push(`'${o.short}${o.arg ? "+" : ""}${desc}${o.arg ? `:${o.arg}: ` : ""}'`);
    specs.push(`'${o.flag}${o.arg ? "=" : ""}${desc}${o.arg ? `:${o.arg}: ` : ""}'`);
  }
  const vmAction = `(${vms.join(" ")})`;
  if (cli.operands === "vm") specs.push(`'1:VM:${vmAction}'`);
  if (cli.operands === "vms") specs.push(`'*:VM:${vmAction}'`);
  if (cli.operands === "vm-command") specs.push(`'1:VM:${vmAction}'`, "'2:command:_command_names -e'", "'*::argument:_files'");
  if (cli.operands === "file") specs.push("'1:script:_files'");
  if (cli.operands === "usb") specs.push(`'1:command:(${USB_COMMANDS.join(" ")})'`, `'2:VM:${vmAction}'`);
  const content = renderTemplate("completion.zsh.hbs", { header: header(cli), command: cli.name, specs });
  return { path: `${OUT.zshCompletions}/_${cli.name}`, mode: 0o644, content };
}

/** A fish single-quoted word. */
const fishWord = (text: string) => `'${text.replace(/[\\']/g, (c) => `\\${c}`)}'`;

function fish(cli: CliUsage, vms: readonly string[]): GeneratedFile {
  const c = `complete -c ${cli.name}`;
  const lines: string[] = [];
  // Only vm-run's command line and vm-exec's SCRIPT are files.
  if (cli.operands !== "file" && cli.operands !== "vm-command") lines.push(`${c} -f`);
  for (const o of cli.options) lines.push(`${c}${o.short ? ` -s ${o.short.slice(1)}` : ""} -l ${o.flag.slice(2)}${o.arg ? " -x" : ""} -d ${fishWord(o.help)}`);
  const names = fishWord(vms.join(" "));
  if (vms.length && cli.operands === "vms") lines.push(`${c} -a ${names} -d VM`);
  if (vms.length && (cli.operands === "vm" || cli.operands === "vm-command")) lines.push(`${c} -n ${fishWord(`not __fish_seen_subcommand_from ${vms.join(" ")}`)} -a ${names} -d VM`);
  if (cli.operands === "usb") {
    lines.push(`${c} -n __fish_use_subcommand -a ${fishWord(USB_COMMANDS.join(" "))}`);
    if (vms.length) lines.push(`${c} -n ${fishWord(`__fish_seen_subcommand_from attach detach; and not __fish_seen_subcommand_from ${vms.join(" ")}`)} -a ${names} -d VM`);
  }
  if (vms.length && cli.operands === "vm-command") lines.push(`${c} -n ${fishWord(`__fish_seen_subcommand_from ${vms.join(" ")}`)} -a '(__fish_complete_command)'`);
  const content = renderTemplate("completion.fish.hbs", { header: header(cli), command: cli.name, lines });
  return { path: `${OUT.fishCompletions}/${cli.name}.fish`, mode: 0o644, content };
}
