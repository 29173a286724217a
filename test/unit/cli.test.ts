/** The vmsilo-gen command line (SPEC D16): commands, usage errors, validate, render, dry runs, modes. */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { copyFileSync, existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, readlinkSync, rmSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { CLI, example, EXAMPLES, fileAt, regularFiles, render, ROOT, runCli, tempDir } from "../support/harness.js";
import { isLink } from "../../src/render/files.js";
import { describe } from "../../src/config/types.js";
import { GENERATOR_USAGE } from "../../src/cli-usage.js";

const USAGE_HINT = "Run 'vmsilo-gen --help' for usage.\n";
/** The hint after a subcommand's usage error names that subcommand's help. */
const hintFor = (command: string) => `Run 'vmsilo-gen ${command} --help' for usage.\n`;
const exampleFile = (name: string) => join(ROOT, "examples", `${name}.json`);

/** Every file and link under `dir`, relative, sorted (directories left out). */
function files(dir: string): string[] {
  return readdirSync(dir, { recursive: true, encoding: "utf8" })
    .filter((p) => !lstatSync(join(dir, p)).isDirectory())
    .sort();
}

function withTemp(label: string, body: (dir: string) => void): void {
  const dir = tempDir(label);
  try {
    body(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

test("--help exits 0 and lists every subcommand with its summary", () => {
  const r = runCli(["--help"]);
  assert.equal(r.status, 0);
  assert.equal(r.stderr, "");
  assert.match(r.stdout, /^vmsilo-gen <command>/);
  assert.match(r.stdout, /^ {2}vmsilo-gen render +render the whole tree into --out/m);
  assert.match(r.stdout, /^ {2}vmsilo-gen validate +check a vmsilo\.json and report every issue/m);
  for (const c of GENERATOR_USAGE.commands!) assert.match(r.stdout, new RegExp(`^ {2}vmsilo-gen ${c.name} `, "m"), c.name);
});

test("-h is --help; a usage error points at the help of the subcommand it was in", () => {
  const h = runCli(["-h"]);
  assert.equal(h.status, 0);
  assert.equal(h.stdout, runCli(["--help"]).stdout);
  assert.match(runCli(["render", "-h"]).stdout, /--dry-run/);
  for (const [args, hint] of [[["render", "--config", "x.json"], "vmsilo-gen render --help"], [["validate"], "vmsilo-gen validate --help"], [["graph", "--format", "png", "--config", "x.json"], "vmsilo-gen graph --help"], [["options-doc"], "vmsilo-gen options-doc --help"], [[], "vmsilo-gen --help"], [["bogus"], "vmsilo-gen --help"]] as const) {
    const r = runCli([...args]);
    assert.equal(r.status, 2, args.join(" "));
    assert.ok(r.stderr.endsWith(`Run '${hint}' for usage.\n`), r.stderr);
  }
});

test("render --help names its options", () => {
  const r = runCli(["render", "--help"]);
  assert.equal(r.status, 0);
  for (const opt of ["--config", "--out", "--prefix", "--dry-run"]) assert.ok(r.stdout.includes(opt), opt);
});

test("no command: exit 2 with a usage hint", () => {
  const r = runCli([]);
  assert.equal(r.status, 2);
  assert.equal(r.stdout, "");
  assert.equal(r.stderr, `vmsilo-gen: a command is required\n${USAGE_HINT}`);
});

test("an unknown command: exit 2 naming it", () => {
  const r = runCli(["frobnicate"]);
  assert.equal(r.status, 2);
  assert.equal(r.stdout, "");
  assert.equal(r.stderr, `vmsilo-gen: Unknown argument: frobnicate\n${USAGE_HINT}`);
});

test("an unknown option: exit 2 naming it, nothing written", () => {
  withTemp("cli", (dir) => {
    const r = runCli(["render", "--config", exampleFile("minimal"), "--out", join(dir, "out"), "--outt", "x"]);
    assert.equal(r.status, 2);
    assert.equal(r.stderr, `vmsilo-gen: Unknown argument: outt\n${hintFor("render")}`);
    assert.deepEqual(readdirSync(dir), []);
  });
});

test("missing --config: exit 2 for render and validate", () => {
  withTemp("cli", (dir) => {
    for (const args of [["render", "--out", join(dir, "out")], ["validate"]]) {
      const r = runCli(args);
      assert.equal(r.status, 2, args.join(" "));
      assert.equal(r.stdout, "");
      assert.equal(r.stderr, `vmsilo-gen: Missing required argument: config\n${hintFor(args[0]!)}`);
    }
    assert.deepEqual(readdirSync(dir), []);
  });
});

test("render without --out: exit 2", () => {
  const r = runCli(["render", "--config", exampleFile("minimal")]);
  assert.equal(r.status, 2);
  assert.equal(r.stderr, `vmsilo-gen: Missing required argument: out\n${hintFor("render")}`);
});

for (const name of EXAMPLES) {
  test(`validate examples/${name}.json prints valid and exits 0`, () => {
    const file = exampleFile(name);
    const r = runCli(["validate", "--config", file]);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stderr, "");
    const n = Object.keys(example(name).nixosVms as object).length;
    assert.equal(r.stdout, `${file}: valid (${n} VM${n === 1 ? "" : "s"})\n`);
  });
}

test("validate on a bad config exits 2 and prints the issues, not valid", () => {
  withTemp("cli", (dir) => {
    const file = join(dir, "bad.json");
    const c = example("minimal") as { nixosVms: { work: Record<string, unknown> } };
    c.nixosVms.work.cpus = 0;
    writeFileSync(file, JSON.stringify(c));
    const r = runCli(["validate", "--config", file]);
    assert.equal(r.status, 2);
    assert.equal(r.stdout, "");
    assert.equal(r.stderr, "vmsilo-gen: invalid configuration (1 issue):\n  nixosVms.work.cpus: must be an integer from 1 to 512, got 0\n");
  });
});

test("render --dry-run prints every file as a ---path--- block and writes nothing", () => {
  withTemp("cli", (dir) => {
    const out = join(dir, "nested", "out");
    const r = runCli(["render", "--config", exampleFile("desktop"), "--out", out, "--dry-run"]);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stderr, "");
    const tree = render(example("desktop"), out);
    const expected = [...tree.values()].map((f) => (isLink(f) ? `---${f.path} -> ${f.link}---\n` : `---${f.path}---\n${f.content}`)).join("");
    assert.equal(r.stdout, expected);
    assert.ok(r.stdout.startsWith("---bin/"));
    assert.equal((r.stdout.match(/^---[^\n]+---$/gm) ?? []).length, tree.size);
    assert.deepEqual(readdirSync(dir), [], "neither --out nor its parent is created");
  });
});

test("render writes the same tree generate() returns, with the absolute --out as prefix", () => {
  withTemp("cli", (dir) => {
    const out = join(dir, "out");
    const r = runCli(["render", "--config", exampleFile("desktop"), "--out", out]);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout, "");
    assert.equal(r.stderr, "");
    const tree = render(example("desktop"), out);
    assert.deepEqual(files(out), [...tree.keys()].sort());
    for (const f of tree.values()) {
      if (isLink(f)) assert.equal(readlinkSync(join(out, f.path)), f.link, f.path);
      else assert.equal(readFileSync(join(out, f.path), "utf8"), f.content, f.path);
    }
    assert.equal(statSync(out).mode & 0o7777, 0o755, "the tree's top directory is readable by everyone");
    assert.deepEqual(readdirSync(dir), ["out"], "no temporary directory is left next to --out");
  });
});

test("render --prefix sets the install path the files refer to", () => {
  withTemp("cli", (dir) => {
    const out = join(dir, "out");
    const prefix = "/nix/store/11111111111111111111111111111111-vmsilo";
    assert.equal(runCli(["render", "--config", exampleFile("minimal"), "--out", out, "--prefix", prefix]).status, 0);
    const tree = render(example("minimal"), prefix);
    for (const f of regularFiles(tree)) assert.equal(readFileSync(join(out, f.path), "utf8"), f.content, f.path);
    assert.ok(regularFiles(tree).some((f) => f.content.includes(prefix)), "the prefix appears in the output");
  });
});

test("a relative --prefix is bad input: exit 2, nothing written", () => {
  withTemp("cli", (dir) => {
    const out = join(dir, "out");
    const r = runCli(["render", "--config", exampleFile("minimal"), "--out", out, "--prefix", "nix/store/x"]);
    assert.equal(r.status, 2);
    assert.equal(r.stderr, 'vmsilo-gen: --prefix: must be an absolute path (starting with "/"), got "nix/store/x"\n');
    assert.equal(existsSync(out), false);
  });
});

test("--prefix follows the path grammar and a store path's characters: exit 2 naming the rule, nothing written", () => {
  withTemp("cli", (dir) => {
    const out = join(dir, "out");
    for (const [prefix, rule] of [
      ["/nix/store/x/../y", 'a normalised path (no "." or ".." components)'],
      ["/nix/store/x/", 'a path without a trailing "/"'],
      ["/nix//store", 'a path without empty components ("//")'],
      ['/nix/store/x"y', "a store path (letters, digits and + . _ ? = - /)"],
      ["/nix/store/x y", "a store path (letters, digits and + . _ ? = - /)"],
      [`/${"n".repeat(256)}`, "a path whose names are at most 255 bytes, not 256"],
    ] as const) {
      const r = runCli(["render", "--config", exampleFile("minimal"), "--out", out, "--prefix", prefix]);
      assert.equal(r.status, 2, prefix);
      assert.equal(r.stderr, `vmsilo-gen: --prefix: must be ${rule}, got ${describe(prefix)}\n`);
    }
    // Without --prefix the absolute --out is the prefix, and is checked as such.
    const spaced = join(dir, "my out");
    const r = runCli(["render", "--config", exampleFile("minimal"), "--out", spaced]);
    assert.equal(r.status, 2);
    assert.equal(r.stderr, `vmsilo-gen: --prefix (the absolute --out): must be a store path (letters, digits and + . _ ? = - /), got ${describe(spaced)}\n`);
    assert.deepEqual(readdirSync(dir), []);
  });
});

/** Every file under `dir` with its bytes, and every link with its target: to show nothing changed. */
function snapshot(dir: string): Array<[string, string]> {
  return readdirSync(dir, { recursive: true, encoding: "utf8" })
    .sort()
    .map((p) => {
      const full = join(dir, p);
      const st = lstatSync(full);
      return [p, st.isSymbolicLink() ? `-> ${readlinkSync(full)}` : st.isDirectory() ? `dir ${st.mode}` : `${st.mode} ${readFileSync(full, "base64")}`];
    });
}

/** render into `out` is refused with exit 2 and `reason`, and nothing under `dir` changes. */
function refusesOut(dir: string, config: string, out: string, reason: string): void {
  const before = snapshot(dir);
  const r = runCli(["render", "--config", config, "--out", out]);
  assert.equal(r.status, 2, r.stderr);
  assert.equal(r.stdout, "");
  assert.equal(r.stderr, `vmsilo-gen: --out ${out}: ${reason}\n`);
  assert.deepEqual(snapshot(dir), before, "nothing is touched");
}

const NOT_OURS = 'exists and is not a tree vmsilo-gen rendered (its share/vmsilo/manifest.json has no "vmsiloGenTree": 1); give a new path, or one vmsilo-gen rendered before';

test("render refuses --out /", () => {
  const r = runCli(["render", "--config", exampleFile("minimal"), "--out", "/"]);
  assert.equal(r.status, 2);
  assert.equal(r.stderr, "vmsilo-gen: --out /: is the root directory; give a directory of its own\n");
});

test("render refuses an --out that is the config file, or a directory holding it", () => {
  withTemp("cli", (dir) => {
    const config = join(dir, "conf", "vmsilo.json");
    mkdirSync(join(dir, "conf"));
    copyFileSync(exampleFile("minimal"), config);
    const holds = `holds the configuration ${config}, which replacing it would delete; render into another directory`;
    refusesOut(dir, config, config, holds);
    refusesOut(dir, config, join(dir, "conf"), holds);
    refusesOut(dir, config, dir, holds);
    // Through a link to the config's directory too.
    symlinkSync(join(dir, "conf"), join(dir, "link"));
    refusesOut(dir, config, join(dir, "link"), holds);
    assert.equal(readFileSync(config, "utf8"), readFileSync(exampleFile("minimal"), "utf8"));
  });
});

test("render refuses an existing --out it did not write: the user's directory, a file, a link", () => {
  withTemp("cli", (dir) => {
    const mine = join(dir, "mine");
    mkdirSync(join(mine, "share", "vmsilo"), { recursive: true });
    writeFileSync(join(mine, "notes.txt"), "my notes\n");
    refusesOut(dir, exampleFile("minimal"), mine, NOT_OURS);
    // A manifest without the marker (or not JSON) is not ours either.
    writeFileSync(join(mine, "share", "vmsilo", "manifest.json"), '{"vms": {}}\n');
    refusesOut(dir, exampleFile("minimal"), mine, NOT_OURS);
    writeFileSync(join(mine, "share", "vmsilo", "manifest.json"), "not json");
    refusesOut(dir, exampleFile("minimal"), mine, NOT_OURS);
    const empty = join(dir, "empty");
    mkdirSync(empty);
    refusesOut(dir, exampleFile("minimal"), empty, NOT_OURS);
    const file = join(dir, "file");
    writeFileSync(file, "a file\n");
    refusesOut(dir, exampleFile("minimal"), file, "exists and is not a directory");
    // A link, even to a tree vmsilo-gen rendered: replacing would swap the link, not the tree.
    const tree = join(dir, "tree");
    assert.equal(runCli(["render", "--config", exampleFile("minimal"), "--out", tree]).status, 0);
    symlinkSync(tree, join(dir, "tree-link"));
    refusesOut(dir, exampleFile("minimal"), join(dir, "tree-link"), "is a symbolic link; give the directory itself");
    assert.equal(readFileSync(join(mine, "notes.txt"), "utf8"), "my notes\n");
  });
});

test("render into an --out under a regular file is bad input, not an internal error", () => {
  withTemp("cli", (dir) => {
    writeFileSync(join(dir, "file"), "x");
    const out = join(dir, "file", "out");
    const r = runCli(["render", "--config", exampleFile("minimal"), "--out", out]);
    assert.equal(r.status, 2);
    assert.equal(r.stderr, `vmsilo-gen: --out ${out}: cannot write: EEXIST: file already exists, mkdir '${join(dir, "file")}'\n`);
    assert.deepEqual(readdirSync(dir), ["file"]);
  });
});

test("rendering twice into the same --out replaces the whole tree", () => {
  withTemp("cli", (dir) => {
    const out = join(dir, "out");
    assert.equal(runCli(["render", "--config", exampleFile("desktop"), "--out", out]).status, 0);
    assert.ok(existsSync(join(out, "libexec", "vmsilo", "banking", "launch")));
    writeFileSync(join(out, "stray-file"), "left by hand\n");
    const r = runCli(["render", "--config", exampleFile("minimal"), "--out", out]);
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(files(out), [...render(example("minimal"), out).keys()].sort(), "only minimal's files: nothing from desktop, no stray file");
    assert.ok(!existsSync(join(out, "libexec", "vmsilo", "banking")));
    assert.deepEqual(readdirSync(dir), ["out"], "no temporary or old tree is left next to --out");
  });
});

test("rendered files are 0755 for scripts and 0644 otherwise, whatever the umask", () => {
  withTemp("cli", (dir) => {
    const out = join(dir, "out");
    // A restrictive umask must not change the modes: the CLI sets them explicitly.
    const r = spawnSync("sh", ["-c", 'umask 077 && exec "$0" "$@"', process.execPath, CLI, "render", "--config", exampleFile("desktop"), "--out", out], { encoding: "utf8" });
    assert.equal(r.status, 0, r.stderr);
    const tree = render(example("desktop"), out);
    let scripts = 0;
    for (const p of files(out)) {
      if (lstatSync(join(out, p)).isSymbolicLink()) continue;
      const mode = statSync(join(out, p)).mode & 0o7777;
      const isScript = p.startsWith("bin/") || p.startsWith("libexec/");
      assert.equal(mode, isScript ? 0o755 : 0o644, `${p}: mode ${mode.toString(8)}`);
      assert.equal(mode, fileAt(tree, p).mode, p);
      if (isScript) {
        scripts++;
        assert.ok(readFileSync(join(out, p), "utf8").startsWith("#!/nix/store/"), `${p} starts with a shebang`);
      }
    }
    assert.ok(scripts >= 6, `${scripts} scripts`);
    assert.ok(files(out).some((p) => p.endsWith(".service")));
  });
});

test("render accepts a relative --out, resolved against the working directory", () => {
  withTemp("cli", (dir) => {
    const r = spawnSync(process.execPath, [CLI, "render", "--config", exampleFile("minimal"), "--out", "rel/out"], { cwd: dir, encoding: "utf8" });
    assert.equal(r.status, 0, r.stderr);
    const out = join(dir, "rel", "out");
    const tree = render(example("minimal"), out);
    assert.deepEqual(files(out), [...tree.keys()].sort());
    for (const f of regularFiles(tree)) assert.equal(readFileSync(join(out, f.path), "utf8"), f.content, f.path);
    assert.ok(regularFiles(tree).some((f) => f.content.includes(`${out}/`)), "the default prefix is the absolute --out");
  });
});
