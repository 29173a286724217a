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
import { type GeneratorCommand, GENERATOR_USAGE } from "./cli-usage.js";

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

type Argv = Record<string, unknown> & { config: string; out: string; prefix?: string; "dry-run"?: boolean; format?: "dot" | "svg"; options: string };

/** What each subcommand does; their options and help come from cli-usage.ts. */
const ACTIONS: Record<GeneratorCommand, (argv: Argv) => void> = {
  render(argv) {
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
  },
  validate(argv) {
    const model = resolve(readConfig(argv.config));
    process.stdout.write(`${argv.config}: valid (${model.vms.length} VM${model.vms.length === 1 ? "" : "s"})\n`);
  },
  "schema-doc": () => void process.stdout.write(schemaReference()),
  graph(argv) {
    const dot = topologyDot(resolve(readConfig(argv.config)));
    if ((argv.format ?? "dot") === "dot") return void process.stdout.write(dot);
    const r = spawnSync("dot", ["-Tsvg"], { input: dot, encoding: "utf8", maxBuffer: 64 * 1024 * 1024 });
    if (r.error && (r.error as NodeJS.ErrnoException).code === "ENOENT") throw new BadInput("--format svg: Graphviz's dot program is not in PATH; install Graphviz, or use --format dot and draw it elsewhere");
    if (r.error) throw r.error;
    if (r.status !== 0) throw new Error(`dot -Tsvg failed (exit ${r.status}): ${r.stderr}`);
    process.stdout.write(r.stdout);
  },
  "options-doc"(argv) {
    const docs = readConfig(argv.options);
    const problems = optionDocsProblems(docs);
    if (problems.length) throw new BadInput(`${argv.options}: ${problems.join("; ")}`);
    process.stdout.write(optionsReference(docs as Record<string, OptionDoc>));
  },
};

const parser = yargs(hideBin(process.argv))
  .scriptName(GENERATOR_USAGE.name)
  .usage(`$0 <command>\n\n${GENERATOR_USAGE.description[0]}`);
for (const c of GENERATOR_USAGE.commands!) {
  parser.command(
    c.name,
    c.summary,
    (y) => {
      for (const o of c.options)
        y.option(o.flag.slice(2), { type: o.arg ? "string" : "boolean", demandOption: o.required === true, describe: o.help, ...(o.choices ? { choices: o.choices } : {}) });
      return y;
    },
    (argv) => run(() => ACTIONS[c.name as GeneratorCommand](argv as unknown as Argv)),
  );
}

await parser
  .demandCommand(1, "a command is required")
  .strict()
  .fail((msg, err) => {
    if (err) throw err;
    // The hint names the subcommand's own help when one was given (its options, not the list of commands).
    const command = hideBin(process.argv).find((a) => GENERATOR_USAGE.commands!.some((c) => c.name === a));
    process.stderr.write(`vmsilo-gen: ${msg}\nRun 'vmsilo-gen ${command ? `${command} ` : ""}--help' for usage.\n`);
    process.exit(EXIT_BAD_INPUT);
  })
  .help()
  .alias("h", "help")
  .parseAsync();
