/**
 * vmsilo-gen's own command line, defined once: the CLI (cli.ts) builds its parser from it, and the
 * package's man page and completions (own-docs.ts) are made from it, so they cannot disagree.
 */
import { type CliCommand, type CliUsage, commandSynopsis, HELP } from "./render/usage.js";

const CONFIG = { flag: "--config", arg: "FILE", required: true, help: "the vmsilo.json to read (the NixOS module writes it)" } as const;

const COMMANDS = [
  {
    name: "render",
    summary: "render the whole tree into --out (replacing it atomically), or print it with --dry-run",
    options: [
      CONFIG,
      { flag: "--out", arg: "DIR", required: true, help: "output directory; replaced as a whole, and only when it is a tree vmsilo-gen rendered before" },
      { flag: "--prefix", arg: "DIR", help: "absolute path the tree is installed at (default: the absolute --out)" },
      { flag: "--dry-run", help: "print every file as ---path--- then its content; write nothing" },
    ],
  },
  { name: "validate", summary: "check a vmsilo.json and report every issue, each with its option path", options: [CONFIG] },
  { name: "schema-doc", summary: "print the vmsilo.json reference (docs/schema.md)", options: [] },
  {
    name: "graph",
    summary: "print the topology of a configuration (VMs, network VMs, bridges, shares, devices) as Graphviz DOT or SVG",
    options: [CONFIG, { flag: "--format", arg: "FORMAT", choices: ["dot", "svg"], help: "dot (the default), or svg drawn by Graphviz's dot, which must be in PATH" }],
  },
  {
    name: "options-doc",
    summary: "print the NixOS options reference (docs/options.md) from nixosOptionsDoc's options.json",
    options: [{ flag: "--options", arg: "FILE", required: true, help: "the options.json to read" }],
  },
] as const satisfies readonly CliCommand[];

export type GeneratorCommand = (typeof COMMANDS)[number]["name"];

export const GENERATOR_USAGE: CliUsage = {
  name: "vmsilo-gen",
  summary: "generate vmsilo's launchers, units, commands and rules",
  synopsis: [...COMMANDS.map(commandSynopsis), "COMMAND --help", "--help"],
  options: [HELP],
  operands: "command",
  commands: COMMANDS,
  description: [
    "vmsilo-gen turns vmsilo.json, which the NixOS module writes from programs.vmsilo, into the files a host needs to run its VMs: a launcher and systemd units per VM, the user's commands (vm-start, vm-run, vm-list, ...), polkit and tmpfiles rules, man pages and completions. nixos-rebuild runs it; it also works on any machine with Node.js, to render or check a configuration by hand.",
    "Output is deterministic: the same vmsilo.json gives the same tree, and every generated file says where it came from.",
  ],
  exitStatus: [
    "0 done",
    "1 internal error (a bug in vmsilo-gen; the message says where)",
    "2 bad input: an invalid configuration (each issue with its option path), an unknown option, or an --out it may not replace; nothing was written",
  ],
};
