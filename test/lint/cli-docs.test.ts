/**
 * The user CLIs' man pages and completions, by the real consumers: mandoc's linter, bash with
 * bash-completion (complete -p, the completion function as readline calls it), zsh's completion
 * system driven through a pseudo-terminal (zpty), and fish's `complete -C`. And the one usage
 * source: each CLI's --help is what its man page and completions were made from.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { CLI, example, render, ROOT, tempDir, TEST_PREFIX, writeTree } from "../support/harness.js";
import { ensureDebs, skip } from "../e2e/support.js";
import { CLI_NAMES, cliUsage, usageText } from "../../src/render/usage.js";
import { GENERATOR_USAGE } from "../../src/cli-usage.js";

const VMS = ["banking", "dev", "net", "work"];
/** examples/desktop.json with vm-exec: every CLI but vm-run is a script of the tree. */
function tree(): string {
  const config = example("desktop") as any;
  config.vmExec = { ...config.vmExec, enable: true, kernel: "/nix/store/00000000000000000000000000000000-k/bzImage", initramfs: "/nix/store/00000000000000000000000000000000-k/initrd" };
  config.programs.qemu = "/nix/store/7q3ma1k6lq7w0b4j5b5n7m5ax9w5q2yz-qemu-10.1.2";
  config.programs.virtiofsd ??= "/nix/store/7m2p0x5v8n6r9h1y3zk2b4w6q8d0f1g3-virtiofsd-1.13.2";
  // The scripts run here (--help): this machine's bash.
  config.programs.bash = "/usr";
  return writeTree(render(config, TEST_PREFIX), join(tempDir("cli-docs"), "out"));
}
const out = tree();
/** vmsilo-gen's own pages, written as its package's postInstall does. */
const own = (() => {
  const dir = tempDir("own-docs");
  const r = spawnSync(process.execPath, [join(ROOT, "dist/src/own-docs.js"), dir], { encoding: "utf8" });
  assert.equal(r.status, 0, r.stderr);
  return dir;
})();
const sh = (cmd: string, args: string[], cwd = out) => spawnSync(cmd, args, { encoding: "utf8", cwd, timeout: 60_000 });

test("every user CLI of the tree has a man page and completions for bash, zsh and fish", () => {
  const bins = readdirSync(join(out, "bin")).sort();
  assert.deepEqual(bins, [...CLI_NAMES].sort(), "the tree's CLIs are the ones with a usage");
  assert.deepEqual(readdirSync(join(out, "share/man/man1")).sort(), bins.map((b) => `${b}.1`));
  assert.deepEqual(readdirSync(join(out, "share/bash-completion/completions")).sort(), bins);
  assert.deepEqual(readdirSync(join(out, "share/zsh/site-functions")).sort(), bins.map((b) => `_${b}`));
  assert.deepEqual(readdirSync(join(out, "share/fish/vendor_completions.d")).sort(), bins.map((b) => `${b}.fish`));
});

test("--help prints the usage the man page is made from", () => {
  for (const name of CLI_NAMES.filter((n) => n !== "vm-run")) {
    const r = sh(join(out, "bin", name), ["--help"]);
    assert.equal(r.status, 0, name);
    assert.ok(r.stdout.startsWith(usageText(cliUsage(name))), `${name} --help:\n${r.stdout}`);
    const page = readFileSync(join(out, "share/man/man1", `${name}.1`), "utf8");
    for (const o of cliUsage(name).options) assert.ok(page.includes(o.flag.replace(/-/g, "\\-")), `${name}.1 documents ${o.flag}`);
  }
});

test("man pages: mandoc -T lint finds nothing, not even style", (t) => {
  const why = ensureDebs(["mandoc"]);
  if (why) return skip(t, why);
  const pages = [...readdirSync(join(out, "share/man/man1")).map((p) => join(out, "share/man/man1", p)), join(own, "share/man/man1/vmsilo-gen.1")];
  const r = sh("mandoc", ["-T", "lint", "-W", "style", ...pages]);
  assert.equal(r.status, 0, r.stdout + r.stderr);
  assert.equal(r.stdout + r.stderr, "");
  // And it renders: the synopsis and an option of vm-list.
  const text = sh("mandoc", ["-T", "utf8", join(out, "share/man/man1/vm-list.1")]).stdout.replace(/.\x08/g, "");
  assert.match(text, /vm-list \[--json\] \[--running\]/);
  assert.match(text, /--running\n +only VMs that are running/);
});

test("vmsilo-gen: its man page, completions and every subcommand's --help come from one usage", (t) => {
  assert.deepEqual(
    ["share/man/man1/vmsilo-gen.1", "share/bash-completion/completions/vmsilo-gen", "share/zsh/site-functions/_vmsilo-gen", "share/fish/vendor_completions.d/vmsilo-gen.fish"].filter((f) => !readFileSync(join(own, f), "utf8").includes("src/cli-usage.ts")),
    [],
  );
  const page = readFileSync(join(own, "share/man/man1/vmsilo-gen.1"), "utf8");
  for (const c of GENERATOR_USAGE.commands!) {
    const help = spawnSync(process.execPath, [CLI, c.name, "--help"], { encoding: "utf8" });
    assert.equal(help.status, 0, c.name);
    const flat = help.stdout.replace(/\s+/g, " ");
    assert.ok(flat.includes(c.summary), `${c.name} --help has its summary`);
    assert.ok(page.includes(`.B ${c.name.replace(/-/g, "\\-")}`), `the page has ${c.name}`);
    for (const o of c.options) {
      assert.ok(flat.includes(o.flag) && flat.includes(o.help.slice(0, 20)), `${c.name} --help documents ${o.flag}`);
      assert.ok(page.includes(o.flag.replace(/-/g, "\\-")), `the page documents ${c.name} ${o.flag}`);
    }
  }
  // The package installs them (a build here has no Nix to run it).
  assert.match(readFileSync(join(ROOT, "nixos-module/pkgs/vmsilo-gen.nix"), "utf8"), /node dist\/src\/own-docs\.js "\$out"/);
  const why = ensureDebs(["mandoc"]);
  if (why) return skip(t, why);
  const text = sh("mandoc", ["-T", "utf8", join(own, "share/man/man1/vmsilo-gen.1")]).stdout.replace(/.\x08/g, "");
  assert.match(text, /vmsilo-gen render --config=FILE --out=DIR \[--prefix=DIR\] \[--dry-run\]/);
  assert.match(text, /COMMANDS\n +render +render the whole tree/);
});

/** Candidates bash offers for the words typed (the last one is being completed), from the
 * completions under `share`. */
function bashComplete(words: string[], share = join(out, "share")): string[] {
  const cmd = words[0]!;
  const script = [
    // bash-completion's own loader finds the file under XDG_DATA_DIRS, as on NixOS.
    ". /usr/share/bash-completion/bash_completion",
    `__load_completion ${cmd}`,
    `complete -p ${cmd}`,
    `COMP_WORDS=(${words.map((w) => `'${w}'`).join(" ")}); COMP_CWORD=${words.length - 1}; COMP_LINE='${words.join(" ")}'; COMP_POINT=\${#COMP_LINE}`,
    `$(complete -p ${cmd} | sed -n 's/.*-F \\([^ ]*\\) .*/\\1/p') ${cmd} '${words.at(-1)}' '${words.at(-2)}'`,
    'printf "%s\\n" "${COMPREPLY[@]}"',
  ].join("\n");
  const r = spawnSync("bash", ["--norc", "--noprofile", "-c", script], { encoding: "utf8", cwd: tempDir("bash-complete"), env: { ...process.env, XDG_DATA_DIRS: share } });
  assert.equal(r.status, 0, r.stderr);
  const [spec, ...candidates] = r.stdout.split("\n").filter(Boolean);
  assert.equal(spec, `complete -F _vmsilo_${cmd.replace(/-/g, "_")} ${cmd}`);
  return candidates.sort();
}

test("bash: complete -p and compgen give the options and the configured VMs", (t) => {
  const why = ensureDebs(["bash-completion"]);
  if (why) return skip(t, why);
  assert.deepEqual(bashComplete(["vm-start", ""]), VMS);
  assert.deepEqual(bashComplete(["vm-start", "work", "n"]), ["net"], "several VMs");
  assert.deepEqual(bashComplete(["vm-stop", "--"]), ["--all", "--help", "--wait"]);
  assert.deepEqual(bashComplete(["vm-status", "w"]), ["work"]);
  assert.deepEqual(bashComplete(["vm-status", "work", ""]), [], "one VM only");
  assert.deepEqual(bashComplete(["vm-status", "-n", ""]), [], "-n takes a number");
  assert.deepEqual(bashComplete(["vm-status", "-n", "5", "b"]), ["banking"]);
  assert.deepEqual(bashComplete(["vm-list", "--r"]), ["--running"]);
  assert.deepEqual(bashComplete(["vm-list", ""]), []);
  assert.deepEqual(bashComplete(["vm-shell", "--ssh", "d"]), ["dev"]);
  assert.deepEqual(bashComplete(["vm-run", "d"]), ["dev"]);
  assert.ok(bashComplete(["vm-run", "dev", "bas"]).includes("bash"), "then a command");
  assert.deepEqual(bashComplete(["vm-exec", "--q"]), ["--quiet"]);
  assert.deepEqual(bashComplete(["vmsilo-usb", ""]), ["attach", "detach", "list"]);
  assert.deepEqual(bashComplete(["vmsilo-usb", "attach", "w"]), ["work"]);
  assert.deepEqual(bashComplete(["vmsilo-usb", "list", "--"]), ["--help", "--json"]);
  assert.deepEqual(bashComplete(["vmsilo-usb", "list", ""]), [], "list takes no VM");
});

test("bash: vmsilo-gen completes its subcommands, then their options and values", (t) => {
  const why = ensureDebs(["bash-completion"]);
  if (why) return skip(t, why);
  const gen = (...words: string[]) => bashComplete(["vmsilo-gen", ...words], join(own, "share"));
  assert.deepEqual(gen(""), ["--help", "-h", "graph", "options-doc", "render", "schema-doc", "validate"]);
  assert.deepEqual(gen("re"), ["render"]);
  assert.deepEqual(gen("render", "--"), ["--config", "--dry-run", "--help", "--out", "--prefix"]);
  assert.deepEqual(gen("graph", "--format", ""), ["dot", "svg"]);
  assert.deepEqual(gen("validate", "--"), ["--config", "--help"]);
});

/** What zsh's completion system prints for a line, typed with Tab in a pseudo-terminal. */
function zshComplete(line: string, functions = join(out, "share/zsh/site-functions")): string {
  const script = String.raw`
zmodload zsh/zpty
zpty z zsh -f -i
zpty -w z "PS1='>'; fpath=($1 \$fpath); autoload -U compinit; compinit -u -D; setopt nobeep; print READY"
zpty -r z out '*READY*'
zpty -r z out '*>*'
zpty -w -n z "$2"$'\t'
sleep 1
zpty -w z $'\x05 END'
zpty -r z out '*END*'
zpty -d z
print -r -- "$out"
`;
  const r = spawnSync("timeout", ["30", "zsh", "-f", "-c", script, "zsh", functions, line], { encoding: "utf8", cwd: tempDir("zsh-complete") });
  assert.equal(r.status, 0, r.stderr);
  // What the terminal shows, without its control sequences.
  return r.stdout.replace(/\x1b\[[0-9;?]*[A-Za-z]/g, "").replace(/.\x08/g, "");
}

test("zsh: the completion system completes VM names and lists options", (t) => {
  const why = ensureDebs(["zsh"]);
  if (why) return skip(t, why);
  assert.match(zshComplete("vm-start ba"), /vm-start banking /);
  assert.match(zshComplete("vm-stop work n"), /vm-stop work net /);
  const options = zshComplete("vm-list --");
  assert.match(options, /--json +-- print a JSON array/);
  assert.match(options, /--running +-- only VMs that are running/);
  assert.match(zshComplete("vm-status --lines=3 wo"), /vm-status --lines=3 work /);
  assert.match(zshComplete("vm-run de"), /vm-run dev /);
  assert.match(zshComplete("vmsilo-usb att"), /vmsilo-usb attach /);
  assert.match(zshComplete("vmsilo-usb detach ba"), /vmsilo-usb detach banking /);
  const gen = (line: string) => zshComplete(line, join(own, "share/zsh/site-functions"));
  assert.match(gen("vmsilo-gen va"), /vmsilo-gen validate /);
  assert.match(gen("vmsilo-gen render --d"), /vmsilo-gen render --dry-run /);
  assert.match(gen("vmsilo-gen graph --format="), /dot +svg/);
});

test("fish: complete -C gives the options and the configured VMs", (t) => {
  const why = ensureDebs(["fish"]);
  if (why) return skip(t, why);
  const complete = (line: string, dir = join(out, "share/fish/vendor_completions.d")) => {
    const r = sh("fish", ["--no-config", "-c", `source ${dir}/${line.split(" ")[0]}.fish; complete -C ${JSON.stringify(line)}`], tempDir("fish-complete"));
    assert.equal(r.status, 0, r.stderr);
    return r.stdout.split("\n").filter(Boolean).sort();
  };
  assert.deepEqual(complete("vm-start "), VMS.map((v) => `${v}\tVM`));
  assert.deepEqual(complete("vm-stop --w"), ["--wait\tstop in reverse dependency order: each VM is down before the VMs it depends on are stopped"]);
  assert.deepEqual(complete("vm-status work "), [], "one VM only");
  assert.deepEqual(complete("vm-list "), []);
  assert.deepEqual(complete("vm-run b"), ["banking\tVM"]);
  assert.ok(complete("vm-run banking ech").some((l) => l.startsWith("echo")), "then a command");
  assert.deepEqual(complete("vmsilo-usb ").map((l) => l.split("\t")[0]), ["attach", "detach", "list"]);
  assert.deepEqual(complete("vmsilo-usb attach ").map((l) => l.split("\t")[0]), VMS);
  const gen = (line: string) => complete(line, join(own, "share/fish/vendor_completions.d"));
  assert.deepEqual(gen("vmsilo-gen gr"), ["graph\tprint the topology of a configuration (VMs, network VMs, bridges, shares, devices) as Graphviz DOT or SVG"]);
  assert.deepEqual(gen("vmsilo-gen graph --format ").map((l) => l.split("\t")[0]), ["dot", "svg"]);
  assert.deepEqual(gen("vmsilo-gen validate --c"), ["--config\tthe vmsilo.json to read (the NixOS module writes it)"]);
});
