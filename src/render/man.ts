import { OUT } from "../model/paths.js";
import { type GeneratedFile, provenance } from "./files.js";
import { type CliCommand, type CliUsage, wrap } from "./usage.js";

/** roff text: backslashes and hyphens escaped, a line never starting with a control character. */
const roff = (text: string) => text.replace(/\\/g, "\\e").replace(/-/g, "\\-").replace(/^([.'])/gm, "\\&$1");

/** Running text: lines of at most 80 bytes once escaped (mandoc's style limit). */
const text = (t: string) => wrap(t, 64).map(roff);

const optionHead = (o: CliUsage["options"][number]) =>
  [...(o.short ? [`\\fB${roff(o.short)}\\fR, `] : []), `\\fB${roff(o.flag)}\\fR`, ...(o.arg ? [`=\\fI${roff(o.arg)}\\fR`] : [])].join("");

/** The pages' date: when the CLIs' usage last changed (a constant, so the output stays the same for
 * the same input). Update it with usage.ts. */
const MAN_DATE = "2026-12-03";

/** A subcommand's entry in COMMANDS: its synopsis, summary and options, indented under it. */
const commandEntry = (c: CliCommand) => [
  ".TP",
  `.B ${roff(c.name)}`,
  ...text(c.summary),
  ...(c.options.length ? [".RS", ...c.options.flatMap((o) => [".TP", optionHead(o), ...text(o.help)]), ".RE"] : []),
];

/**
 * share/man/man1/<cli>.1: the man page of a CLI, from the same usage as its --help; `header` is its
 * provenance comment, `seeAlso` the other pages it points to.
 */
export function renderManPage(cli: CliUsage, seeAlso: readonly string[], header: readonly string[] = provenance("programs.vmsilo (the CLI's usage)")): GeneratedFile {
  const lines = [
    ...header.map((l) => `.\\" ${l}`),
    `.TH ${roff(cli.name.toUpperCase())} 1 ${MAN_DATE} vmsilo "vmsilo manual"`,
    ".SH NAME",
    `${roff(cli.name)} \\- ${roff(cli.summary)}`,
    ".SH SYNOPSIS",
    ...cli.synopsis.flatMap((s, i) => [...(i ? [".br"] : []), `.B ${roff(cli.name)}`, ...text(s)]),
    ".SH DESCRIPTION",
    ...cli.description.flatMap((p, i) => [...(i ? [".PP"] : []), ...text(p)]),
    ...(cli.commands ? [".SH COMMANDS", ...cli.commands.flatMap(commandEntry)] : []),
    ".SH OPTIONS",
    ...cli.options.flatMap((o) => [".TP", optionHead(o), ...text(o.help)]),
    ".SH EXIT STATUS",
    ...cli.exitStatus.flatMap((l) => [".TP", `.B ${roff(l.slice(0, l.indexOf(" ")))}`, ...text(l.slice(l.indexOf(" ") + 1))]),
    ...(seeAlso.length ? [".SH SEE ALSO", ...seeAlso.map((name, i) => `.BR ${roff(name)} (1)${i < seeAlso.length - 1 ? "," : ""}`)] : []),
  ];
  return { path: `${OUT.man1}/${cli.name}.1`, mode: 0o644, content: lines.join("\n") + "\n" };
}
