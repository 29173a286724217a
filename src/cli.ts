#!/usr/bin/env node
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { resolve as resolvePath } from "node:path";
import yargs from "yargs";
import { hideBin } from "yargs/helpers";
import { ConfigError, generate, resolve } from "./generate.js";
import { isLink } from "./render/files.js";
import { outRefusal, writeTreeAtomically } from "./write-tree.js";
import { schemaReference } from "./config/reference.js";
import { optionDocsProblems, optionsReference, type OptionDoc } from "./config/options-reference.js";
import { storePathProblem } from "./config/grammar.js";
import { describe } from "./config/types.js";
import { topologyDot } from "./render/graph.js";

/** Exit statuses (D16): 0 success, 1 internal error, 2 bad input (nothing written). */
const EXIT_BAD_INPUT = 2;
const EXIT_INTERNAL = 1;

class BadInput extends Error {}

function readConfig(file: string): unknown {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (e) {
    throw new BadInput(`${file}: cannot read: ${(e as Error).message}`);
  }
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new BadInput(`${file}: not valid JSON: ${(e as Error).message}`);
  }
}

async function run(action: () => void | Promise<void>): Promise<void> {
  try {
    await action();
  } catch (e) {
    if (e instanceof ConfigError) {
      process.stderr.write(`vmsilo-gen: invalid configuration (${e.issues.length} issue${e.issues.length === 1 ? "" : "s"}):\n`);
      for (const i of e.issues) process.stderr.write(`  ${i.path}: ${i.message}\n`);
      process.exitCode = EXIT_BAD_INPUT;
    } else if (e instanceof BadInput) {
      process.stderr.write(`vmsilo-gen: ${e.message}\n`);
      process.exitCode = EXIT_BAD_INPUT;
    } else {
      process.stderr.write(`vmsilo-gen: internal error: ${(e as Error).stack ?? String(e)}\n`);
      process.exitCode = EXIT_INTERNAL;
    }
  }
}

/** The subcommands, for the usage hint of a failed one. */
const COMMANDS = ["render", "validate", "schema-doc"];

await yargs(hideBin(process.argv))
  .scriptName("vmsilo-gen")
  .usage("$0 <command>\n\nGenerates vmsilo's launchers, systemd units, CLIs, polkit and tmpfiles rules from vmsilo.json.")
  .command(
    "render",
    "render the whole tree into --out (atomically), or print it with --dry-run",
    (y) =>
      y
        .option("config", { type: "string", demandOption: true, describe: "vmsilo.json to read" })
        .option("out", { type: "string", demandOption: true, describe: "output directory (replaced as a whole)" })
        .option("prefix", { type: "string", describe: "absolute path the tree is installed at (default: the absolute --out)" })
        .option("dry-run", { type: "boolean", default: false, describe: "print every file as ---path--- then its content; write nothing" }),
    (argv) =>
      run(async () => {
        const out = resolvePath(argv.out);
        const prefix = argv.prefix ?? out;
        // Scripts and units name their programs under the prefix: a `#!` line and systemd's executable
        // names cannot quote, so it is a store path's characters too.
        const prefixProblem = prefix === "/" ? null : storePathProblem(prefix);
        if (prefixProblem !== null) throw new BadInput(`--prefix${argv.prefix === undefined ? " (the absolute --out)" : ""}: must be ${prefixProblem}, got ${describe(prefix)}`);
        const tree = generate(readConfig(argv.config), { prefix });
        if (argv["dry-run"]) {
          for (const f of tree.values()) process.stdout.write(isLink(f) ? `---${f.path} -> ${f.link}---\n` : `---${f.path}---\n${f.content}`);
          return;
        }
        const refusal = outRefusal(out, resolvePath(argv.config));
        if (refusal !== null) throw new BadInput(`--out ${out}: ${refusal}`);
        try {
          writeTreeAtomically(tree, out);
        } catch (e) {
          // The file system refused (a parent that is a file, no permission, a full disk): the --out given, not a bug.
          if (typeof (e as NodeJS.ErrnoException).code === "string") throw new BadInput(`--out ${out}: cannot write: ${(e as Error).message}`);
          throw e;
        }
      }),
  )
  .command(
    "validate",
    "check vmsilo.json and report every issue",
    (y) => y.option("config", { type: "string", demandOption: true, describe: "vmsilo.json to read" }),
    (argv) =>
      run(() => {
        const model = resolve(readConfig(argv.config));
        process.stdout.write(`${argv.config}: valid (${model.vms.length} VM${model.vms.length === 1 ? "" : "s"})\n`);
      }),
  )
  .command("schema-doc", "print the vmsilo.json reference (docs/schema.md)", {}, () => run(() => void process.stdout.write(schemaReference())))
  .command(
    "graph",
    "print the topology of a configuration (VMs, network VMs, bridges, shares, devices) as Graphviz DOT or SVG",
    (y) =>
      y
        .option("config", { type: "string", demandOption: true, describe: "vmsilo.json to read" })
        .option("format", { choices: ["dot", "svg"] as const, default: "dot" as const, describe: "DOT text, or SVG drawn by Graphviz's dot (which must be in PATH)" }),
    (argv) =>
      run(() => {
        const dot = topologyDot(resolve(readConfig(argv.config)));
        if (argv.format === "dot") return void process.stdout.write(dot);
        const r = spawnSync("dot", ["-Tsvg"], { input: dot, encoding: "utf8", maxBuffer: 64 * 1024 * 1024 });
        if (r.error && (r.error as NodeJS.ErrnoException).code === "ENOENT") throw new BadInput("--format svg: Graphviz's dot program is not in PATH; install Graphviz, or use --format dot and draw it elsewhere");
        if (r.error) throw r.error;
        if (r.status !== 0) throw new Error(`dot -Tsvg failed (exit ${r.status}): ${r.stderr}`);
        process.stdout.write(r.stdout);
      }),
  )
  .command(
    "options-doc",
    "print the NixOS options reference (docs/options.md) from nixosOptionsDoc's options.json",
    (y) => y.option("options", { type: "string", demandOption: true, describe: "options.json to read" }),
    (argv) =>
      run(() => {
        const docs = readConfig(argv.options);
        const problems = optionDocsProblems(docs);
        if (problems.length) throw new BadInput(`${argv.options}: ${problems.join("; ")}`);
        process.stdout.write(optionsReference(docs as Record<string, OptionDoc>));
      }),
  )
  .demandCommand(1, "a command is required")
  .strict()
  .fail((msg, err) => {
    if (err) throw err;
    // The hint names the subcommand's own help when one was given (its options, not the list of commands).
    const command = hideBin(process.argv).find((a) => COMMANDS.includes(a));
    process.stderr.write(`vmsilo-gen: ${msg}\nRun 'vmsilo-gen ${command ? `${command} ` : ""}--help' for usage.\n`);
    process.exit(EXIT_BAD_INPUT);
  })
  .help()
  .alias("h", "help")
  .parseAsync();
