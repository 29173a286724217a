import { OUT } from "../model/paths.js";
import { shellQuote } from "../shell/quote.js";
import { type GeneratedFile, provenance } from "./files.js";
import { renderTemplate } from "./templates.js";
import { type CliCommand, type CliOption, type CliUsage, HELP } from "./usage.js";

/** vmsilo-usb's commands (its first operand). */
const USB_COMMANDS = ["list", "attach", "detach"];
const userHeader = (cli: CliUsage) => provenance(`programs.vmsilo.nixosVms (the VM names) and ${cli.name}'s usage`);
const words = (o: CliOption) => [...(o.short ? [o.short] : []), o.flag];

/** How an option's value completes: from its choices, as a directory, as a file, or not at all. */
type ValueKind = "choices" | "dir" | "file" | "none";
const valueKind = (o: CliOption): ValueKind => (o.choices ? "choices" : o.arg === "DIR" ? "dir" : o.arg === "FILE" ? "file" : "none");

/**
 * bash, zsh and fish completions of a CLI: its options (or subcommands and theirs) from its usage,
 * and the VM names of this configuration where it takes VMs. One file per shell, where each shell
 * looks for them. `header` is the files' provenance.
 */
export function renderCompletions(cli: CliUsage, vms: readonly string[], header: readonly string[] = userHeader(cli)): GeneratedFile[] {
  const h = header.map((l) => `# ${l}`).join("\n");
  if (cli.commands) return [bashCommands(cli, cli.commands, h), zshCommands(cli, cli.commands, h), fishCommands(cli, cli.commands, h)];
  return [bash(cli, vms, h), zsh(cli, vms, h), fish(cli, vms, h)];
}

const bashPath = (cli: CliUsage) => `${OUT.bashCompletions}/${cli.name}`;
const zshPath = (cli: CliUsage) => `${OUT.zshCompletions}/_${cli.name}`;
const fishPath = (cli: CliUsage) => `${OUT.fishCompletions}/${cli.name}.fish`;

function bash(cli: CliUsage, vms: readonly string[], header: string): GeneratedFile {
  const k = cli.operands;
  const content = renderTemplate("completion.bash.hbs", {
    header,
    command: cli.name,
    fn: cli.name.replace(/-/g, "_"),
    valueOptions: cli.options.filter((o) => o.arg).flatMap(words).join(" | "),
    options: shellQuote(cli.options.flatMap(words).join(" ")),
    // Where options go: before the operands, or (vmsilo-usb list --json) after the subcommand.
    optionsAt: k === "usb" ? '[ "$operands" -le 1 ]' : '[ "$operands" = 0 ]',
    vms: shellQuote(vms.join(" ")),
    vmAt: k === "vms" ? "true" : k === "vm" || k === "vm-command" ? '[ "$operands" = 0 ]' : k === "usb" ? '[ "$operands" = 1 ] && [ "${COMP_WORDS[1]}" != list ]' : false,
    files: k === "file",
    commands: k === "vm-command",
    subcommands: k === "usb" ? shellQuote(USB_COMMANDS.join(" ")) : false,
  });
  return { path: bashPath(cli), mode: 0o644, content };
}

const BASH_VALUES: Record<Exclude<ValueKind, "none">, (o: CliOption) => string> = {
  choices: (o) => `-W ${shellQuote(o.choices!.join(" "))}`,
  dir: () => "-d",
  file: () => "-f",
};

function bashCommands(cli: CliUsage, commands: readonly CliCommand[], header: string): GeneratedFile {
  const values = commands.flatMap((c) =>
    c.options.filter((o) => o.arg).map((o) => {
      const kind = valueKind(o);
      // A value nothing completes (a number) still ends the option list's completion.
      return { pattern: shellQuote(`${c.name} ${o.flag}`), action: kind === "none" ? "-W ''" : BASH_VALUES[kind](o) };
    }),
  );
  const content = renderTemplate("completion-commands.bash.hbs", {
    header,
    command: cli.name,
    fn: cli.name.replace(/-/g, "_"),
    values,
    top: shellQuote([...commands.map((c) => c.name), ...cli.options.flatMap(words)].join(" ")),
    commands: commands.map((c) => ({ name: shellQuote(c.name), options: shellQuote([...c.options, HELP].flatMap(words).join(" ")) })),
  });
  return { path: bashPath(cli), mode: 0o644, content };
}

/** Text inside a zsh `_arguments` description, itself inside single quotes. */
const zshDesc = (text: string) => text.replace(/[\\[\]:]/g, (c) => `\\${c}`).replace(/'/g, "'\\''");

const ZSH_VALUES: Record<ValueKind, (o: CliOption) => string> = {
  choices: (o) => `(${o.choices!.join(" ")})`,
  dir: () => "_files -/",
  file: () => "_files",
  none: () => " ",
};

/** `_arguments` specs of options: each spelling, its description and how its value completes. */
function zshOptionSpecs(options: readonly CliOption[]): string[] {
  const specs: string[] = [];
  for (const o of options) {
    const desc = `[${zshDesc(o.help)}]`;
    const value = o.arg ? `:${o.arg}:${ZSH_VALUES[valueKind(o)](o)}` : "";
    if (o.short) specs.push(`'${o.short}${o.arg ? "+" : ""}${desc}${value}'`);
    specs.push(`'${o.flag}${o.arg ? "=" : ""}${desc}${value}'`);
  }
  return specs;
}

function zshCommands(cli: CliUsage, commands: readonly CliCommand[], header: string): GeneratedFile {
  const content = renderTemplate("completion-commands.zsh.hbs", {
    header,
    command: cli.name,
    commands: commands.map((c) => `'${`${c.name}:${c.summary}`.replace(/'/g, "'\\''")}'`),
    top: zshOptionSpecs(cli.options),
    cases: commands.map((c) => ({ name: c.name, specs: zshOptionSpecs([...c.options, HELP]) })),
  });
  return { path: zshPath(cli), mode: 0o644, content };
}

function zsh(cli: CliUsage, vms: readonly string[], header: string): GeneratedFile {
  const specs = zshOptionSpecs(cli.options);
  const vmAction = `(${vms.join(" ")})`;
  if (cli.operands === "vm") specs.push(`'1:VM:${vmAction}'`);
  if (cli.operands === "vms") specs.push(`'*:VM:${vmAction}'`);
  if (cli.operands === "vm-command") specs.push(`'1:VM:${vmAction}'`, "'2:command:_command_names -e'", "'*::argument:_files'");
  if (cli.operands === "file") specs.push("'1:script:_files'");
  if (cli.operands === "usb") specs.push(`'1:command:(${USB_COMMANDS.join(" ")})'`, `'2:VM:${vmAction}'`);
  const content = renderTemplate("completion.zsh.hbs", { header, command: cli.name, specs });
  return { path: zshPath(cli), mode: 0o644, content };
}

/** A fish single-quoted word. */
const fishWord = (text: string) => `'${text.replace(/[\\']/g, (c) => `\\${c}`)}'`;

const FISH_VALUES: Record<ValueKind, (o: CliOption) => string> = {
  choices: (o) => ` -x -a ${fishWord(o.choices!.join(" "))}`,
  dir: () => " -x -a '(__fish_complete_directories)'",
  file: () => " -r -F",
  none: () => " -x",
};

/** A fish `complete` line per option, under the condition `when` (a fish word) if given. */
const fishOptions = (c: string, options: readonly CliOption[], when?: string) =>
  options.map((o) => `${c}${when ? ` -n ${when}` : ""}${o.short ? ` -s ${o.short.slice(1)}` : ""} -l ${o.flag.slice(2)}${o.arg ? FISH_VALUES[valueKind(o)](o) : ""} -d ${fishWord(o.help)}`);

function fishCommands(cli: CliUsage, commands: readonly CliCommand[], header: string): GeneratedFile {
  const c = `complete -c ${cli.name}`;
  const lines = [
    `${c} -f`,
    ...fishOptions(c, cli.options),
    ...commands.map((s) => `${c} -n __fish_use_subcommand -a ${s.name} -d ${fishWord(s.summary)}`),
    ...commands.flatMap((s) => fishOptions(c, s.options, fishWord(`__fish_seen_subcommand_from ${s.name}`))),
  ];
  const content = renderTemplate("completion.fish.hbs", { header, command: cli.name, what: "its subcommands, then each one's options and their values", lines });
  return { path: fishPath(cli), mode: 0o644, content };
}

function fish(cli: CliUsage, vms: readonly string[], header: string): GeneratedFile {
  const c = `complete -c ${cli.name}`;
  const lines: string[] = [];
  // Only vm-run's command line and vm-exec's SCRIPT are files.
  if (cli.operands !== "file" && cli.operands !== "vm-command") lines.push(`${c} -f`);
  lines.push(...fishOptions(c, cli.options));
  const names = fishWord(vms.join(" "));
  if (vms.length && cli.operands === "vms") lines.push(`${c} -a ${names} -d VM`);
  if (vms.length && (cli.operands === "vm" || cli.operands === "vm-command")) lines.push(`${c} -n ${fishWord(`not __fish_seen_subcommand_from ${vms.join(" ")}`)} -a ${names} -d VM`);
  if (cli.operands === "usb") {
    lines.push(`${c} -n __fish_use_subcommand -a ${fishWord(USB_COMMANDS.join(" "))}`);
    if (vms.length) lines.push(`${c} -n ${fishWord(`__fish_seen_subcommand_from attach detach; and not __fish_seen_subcommand_from ${vms.join(" ")}`)} -a ${names} -d VM`);
  }
  if (vms.length && cli.operands === "vm-command") lines.push(`${c} -n ${fishWord(`__fish_seen_subcommand_from ${vms.join(" ")}`)} -a '(__fish_complete_command)'`);
  const content = renderTemplate("completion.fish.hbs", { header, command: cli.name, what: "its options and the configured VMs", lines });
  return { path: fishPath(cli), mode: 0o644, content };
}
