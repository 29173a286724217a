import { OUT } from "../model/paths.js";
import { type GeneratedFile, provenance } from "./files.js";
import { type CliUsage, wrap } from "./usage.js";

/** roff text: backslashes and hyphens escaped, a line never starting with a control character. */
const roff = (text: string) => text.replace(/\\/g, "\\e").replace(/-/g, "\\-").replace(/^([.'])/gm, "\\&$1");

/** Running text: lines of at most 80 bytes once escaped (mandoc's style limit). */
const text = (t: string) => wrap(t, 64).map(roff);

const optionHead = (o: CliUsage["options"][number]) =>
  [...(o.short ? [`\\fB${roff(o.short)}\\fR, `] : []), `\\fB${roff(o.flag)}\\fR`, ...(o.arg ? [`=\\fI${roff(o.arg)}\\fR`] : [])].join("");

/** The pages' date: when the CLIs' usage last changed (a constant, so the output stays the same for
 * the same input). Update it with usage.ts. */
const MAN_DATE = "2026-12-03";

/** share/man/man1/<cli>.1: the man page of a user CLI, from the same usage as its --help. */
export function renderManPage(cli: CliUsage, all: readonly CliUsage[]): GeneratedFile {
  const lines = [
    ...provenance("programs.vmsilo (the CLI's usage)").map((l) => `.\\" ${l}`),
    `.TH ${roff(cli.name.toUpperCase())} 1 ${MAN_DATE} vmsilo "vmsilo manual"`,
    ".SH NAME",
    `${roff(cli.name)} \\- ${roff(cli.summary)}`,
    ".SH SYNOPSIS",
    ...cli.synopsis.flatMap((s, i) => [...(i ? [".br"] : []), `.B ${roff(cli.name)}`, ...text(s)]),
    ".SH DESCRIPTION",
    ...cli.description.flatMap((p, i) => [...(i ? [".PP"] : []), ...text(p)]),
    ".SH OPTIONS",
    ...cli.options.flatMap((o) => [".TP", optionHead(o), ...text(o.help)]),
    ".SH EXIT STATUS",
    ...cli.exitStatus.flatMap((l) => [".TP", `.B ${roff(l.slice(0, l.indexOf(" ")))}`, ...text(l.slice(l.indexOf(" ") + 1))]),
    ".SH SEE ALSO",
    all
      .filter((c) => c.name !== cli.name)
      .map((c, i, others) => `.BR ${roff(c.name)} (1)${i < others.length - 1 ? "," : ""}`)
      .join("\n"),
  ];
  return { path: `${OUT.man1}/${cli.name}.1`, mode: 0o644, content: lines.join("\n") + "\n" };
}
