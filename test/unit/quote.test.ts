/**
 * The quoting functions round-trip through the real consumers or faithful re-implementations of them:
 * shellQuote/shellLines through bash (and dash), crosvmKvString/crosvmKv through serde_keyvalue's
 * tokenizer (test/contract/crosvm-contract.ts), systemdExec through systemd's Exec*= unquoting (same file),
 * also after a trip through a unit file.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import fc from "fast-check";
import { crosvmKv, crosvmKvString, shellJoin, shellLines, shellQuote, systemdExec, systemdExecWord, type KvValue } from "../../src/shell/quote.js";
import { exec, serialiseUnit, unitFile, add } from "../../src/systemd/unit.js";
import { checkKeyValue, loadCrosvmCli, parseSystemdExec, tokenizeKeyValues } from "../contract/crosvm-contract.js";
import { chmodSync, copyFileSync, mkdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { have, tempDir } from "../support/harness.js";

/** Characters that mean something to a shell, systemd, serde_keyvalue or argh, plus controls and non-ASCII. */
const HOSTILE = [..." \t\n\r\v\f'\"$`\\;|&*?[]{}()<>!#~%=,:@+-./^", "\x01", "\x1b", "\x7f", "é", "日", "\u2028", "\u{1F600}", "\u00a0"];
const anyChar = fc.oneof(fc.constantFrom(...HOSTILE), fc.string({ unit: "binary", minLength: 1, maxLength: 1 }), fc.constantFrom(..."aZ09_"));
/** Any string without NUL (what an argv element can hold). */
const word = fc
  .oneof(
    fc.string({ unit: anyChar, maxLength: 24 }),
    // Mostly harmless with one to three special characters: finds a quoting function that leaves too much bare.
    fc.subarray(HOSTILE, { minLength: 1, maxLength: 3 }).chain((few) => fc.string({ unit: fc.oneof({ weight: 3, arbitrary: fc.constantFrom(..."aZ09_./") }, { weight: 1, arbitrary: fc.constantFrom(...few) }), maxLength: 24 })),
  )
  .map((s) => s.replace(/\0/g, ""));
const words = fc.array(word, { minLength: 1, maxLength: 8 });

/** Run `<shell> -c "printf '%s\0' <text>"` and split its output back into words. */
function shellEcho(shell: string, text: string): string[] {
  const r = spawnSync(shell, ["-c", `printf '%s\\0' ${text}`], { encoding: "utf8" });
  assert.equal(r.status, 0, `${shell} failed: ${r.stderr}`);
  return r.stdout.split("\0").slice(0, -1);
}

test("shellQuote: any word survives bash as exactly one argument", () => {
  fc.assert(
    fc.property(words, (ws) => {
      assert.deepEqual(shellEcho("bash", shellJoin(ws)), ws);
    }),
    { numRuns: 150 },
  );
});

test("shellLines: argv on continued lines survives bash", () => {
  fc.assert(
    fc.property(fc.array(words, { minLength: 1, maxLength: 4 }), (lines) => {
      assert.deepEqual(shellEcho("bash", shellLines(lines)), lines.flat());
    }),
    { numRuns: 60 },
  );
});

test("shellQuote: any word survives dash (POSIX sh) too", { skip: have("dash") ? false : "dash not installed" }, () => {
  fc.assert(
    fc.property(words, (ws) => {
      assert.deepEqual(shellEcho("dash", shellJoin(ws)), ws);
    }),
    { numRuns: 60 },
  );
});

test("shellQuote: safe words stay bare, the rest is single-quoted, NUL is refused", () => {
  assert.equal(shellQuote("/nix/store/x-crosvm/bin/crosvm"), "/nix/store/x-crosvm/bin/crosvm");
  assert.equal(shellQuote("--log-level=info,disk=off"), "--log-level=info,disk=off");
  assert.equal(shellQuote(""), "''");
  assert.equal(shellQuote("it's"), `'it'\\''s'`);
  assert.equal(shellQuote("~"), "'~'");
  assert.deepEqual(shellEcho("bash", ["~", "*", "$HOME", "a b", "`id`", "$(id)", "!!", "{a,b}", "x=y"].map(shellQuote).join(" ")), ["~", "*", "$HOME", "a b", "`id`", "$(id)", "!!", "{a,b}", "x=y"]);
  assert.throws(() => shellQuote("a\0b"), /NUL/);
});

// ------------------------------------------------------------------------------------------------
// crosvm key=value strings

const cli = loadCrosvmCli();

test("crosvmKvString: any value reads back through serde_keyvalue's tokenizer, between other keys", () => {
  fc.assert(
    fc.property(word, (v) => {
      const pairs = tokenizeKeyValues(`a=1,k=${crosvmKvString(v)},z`);
      assert.equal(pairs.length, 3);
      assert.equal(pairs[1]!.key, "k");
      const t = pairs[1]!.value;
      assert.ok(t.kind === "bare" || t.kind === "quoted", JSON.stringify(t));
      assert.equal(t.text, v);
    }),
    { numRuns: 2000 },
  );
});

test("crosvmKvString: a value is always a string to crosvm, typed (PathBuf) or type-guessed (#[serde(flatten)])", () => {
  fc.assert(
    fc.property(word, (v) => {
      assert.deepEqual(checkKeyValue("DiskOption", `path=${crosvmKvString(v)},ro=true`, cli), []);
      // NetParameters' tap-name is type-guessed: a bare 1234 or true... would not be a string.
      assert.deepEqual(checkKeyValue("NetParameters", `tap-name=${crosvmKvString(v)}`, cli), []);
    }),
    { numRuns: 1000 },
  );
  for (const v of ["1234", "0x10", "-1", "true", "false", "trueish", "", "a,b", 'a"b', "a'b", "a[b]", "a\\b", "a b", "x=y"]) {
    assert.deepEqual(checkKeyValue("NetParameters", `tap-name=${crosvmKvString(v)}`, cli), [], v);
    assert.deepEqual(tokenizeKeyValues(`k=${crosvmKvString(v)}`), [{ key: "k", value: crosvmKvString(v) === v ? { kind: "bare", text: v } : { kind: "quoted", text: v, quote: '"' } }]);
  }
  assert.equal(crosvmKvString("/nix/store/x/nixos.erofs"), "/nix/store/x/nixos.erofs");
  assert.equal(crosvmKvString("02:42:ac:11:00:02"), '"02:42:ac:11:00:02"');
});

const kvKey = fc.stringMatching(/^[a-z][a-z0-9-]{0,12}$/);
const kvValue: fc.Arbitrary<KvValue> = fc.oneof(word, fc.nat(), fc.boolean());

test("crosvmKv: pairs read back in order, with their values", () => {
  fc.assert(
    fc.property(fc.array(fc.tuple(kvKey, kvValue), { minLength: 1, maxLength: 6 }), (pairs) => {
      const back = tokenizeKeyValues(crosvmKv(pairs));
      assert.deepEqual(
        back.map((p) => [p.key, p.value.kind === "bare" || p.value.kind === "quoted" ? p.value.text : p.value.kind]),
        pairs.map(([k, v]) => [k, String(v)]),
      );
    }),
    { numRuns: 500 },
  );
});

// ------------------------------------------------------------------------------------------------
// systemd Exec*= command lines

/** What systemd accepts as an executable (absolute, no directory, no control characters or quotes). */
const absPath = fc.string({ unit: fc.constantFrom(..."abcXYZ019_-.+@:,=/ %$;é"), maxLength: 20 }).map((s) => `/${s}x`);
const argv = fc.tuple(absPath, fc.array(word, { maxLength: 8 })).map(([p, ws]) => [p, ...ws]);

/** What systemd runs for `a`: the command as the executable, and the argv it passes. */
function expected(a: readonly string[], prefixes = "") {
  // The executable is never environment-expanded; argv[0] is (replace_env_argv), so `$$` in it reads `$`.
  const argv0 = a[0]!.replace(/\$\$/g, () => "$");
  return [{ prefixes, path: a[0], argv: prefixes.includes("@") ? a.slice(1) : [argv0, ...a.slice(1)] }];
}

/** systemd's unit-file reader: lines end at \n, \r\n, \r (read_line); `Key=value` with both sides stripped. */
function execValues(unitText: string, key: string): string[] {
  return unitText
    .split(/\r\n|\r|\n/)
    .map((l) => l.replace(/^[ \t\n\r]+|[ \t\n\r]+$/g, ""))
    .filter((l) => l.startsWith(`${key}=`))
    .map((l) => l.slice(key.length + 1).replace(/^[ \t\n\r]+/, ""));
}

test("systemdExec: any argv reads back through systemd's unquoting, %-specifiers and $-expansion", () => {
  fc.assert(
    fc.property(argv, (a) => {
      assert.deepEqual(parseSystemdExec(systemdExec(a)), expected(a));
    }),
    { numRuns: 2000 },
  );
});

test("systemdExec: any argv survives a unit file (one line, no line breaks) and a prefix", () => {
  fc.assert(
    fc.property(argv, fc.constantFrom("", "-", "+", "!", "@"), (a, prefix) => {
      const u = unitFile("x.service", "test");
      add(u, "Service", "ExecStart", exec(a, prefix));
      add(u, "Service", "ExecStopPost", exec(a));
      const text = serialiseUnit(u, []);
      const [start, stop] = [execValues(text, "ExecStart"), execValues(text, "ExecStopPost")];
      assert.equal(start.length, 1);
      assert.equal(stop.length, 1);
      // With @, the first word is the executable and the second argv[0].
      assert.deepEqual(parseSystemdExec(start[0]!), expected(a, prefix));
      assert.deepEqual(parseSystemdExec(stop[0]!), expected(a));
    }),
    { numRuns: 500 },
  );
});

test("systemdExec: systemd itself (systemd-analyze verify) loads every line without a warning", { skip: have("systemd-analyze") ? false : "systemd-analyze not installed" }, () => {
  const dir = tempDir("sd-verify");
  try {
    const lines = fc.sample(fc.array(word, { maxLength: 6 }), { numRuns: 300, seed: 42 });
    const u = unitFile("hostile.service", "test");
    add(u, "Unit", "Description", "quoting test");
    add(u, "Service", "Type", "oneshot");
    for (const ws of lines) add(u, "Service", "ExecStart", exec(["/bin/echo", ...ws]));
    const file = join(dir, "hostile.service");
    writeFileSync(file, serialiseUnit(u, []));
    const r = spawnSync("systemd-analyze", ["verify", "--man=no", "--generators=no", file], { encoding: "utf8" });
    assert.equal(r.stdout + r.stderr, "");
    assert.equal(r.status, 0);
    // And the same file read by the parser above gives back every argv.
    const back = execValues(serialiseUnit(u, []), "ExecStart").map((v) => parseSystemdExec(v));
    assert.deepEqual(back, lines.map((ws) => [{ prefixes: "", path: "/bin/echo", argv: ["/bin/echo", ...ws] }]));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("systemdExec: systemd finds a command whose path holds `$`, `%`, spaces and non-ASCII", { skip: have("systemd-analyze") ? false : "systemd-analyze not installed" }, () => {
  const dir = tempDir("sd-verify");
  try {
    const bin = join(dir, "st ore$x%i${y}é;");
    mkdirSync(bin);
    copyFileSync("/bin/true", join(bin, "prog"));
    chmodSync(join(bin, "prog"), 0o755);
    const u = unitFile("cmd.service", "test");
    add(u, "Service", "Type", "oneshot");
    add(u, "Service", "ExecStart", exec([join(bin, "prog"), "$x", "%i"]));
    const file = join(dir, "cmd.service");
    writeFileSync(file, serialiseUnit(u, []));
    const r = spawnSync("systemd-analyze", ["verify", "--man=no", "--generators=no", file], { encoding: "utf8" });
    assert.equal(r.stdout + r.stderr, "", "systemd-analyze verify");
    assert.equal(r.status, 0);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("systemd-analyze verify does flag what the parser calls an error (the check above is not vacuous)", { skip: have("systemd-analyze") ? false : "systemd-analyze not installed" }, () => {
  const dir = tempDir("sd-verify");
  try {
    const file = join(dir, "bad.service");
    writeFileSync(file, `[Service]\nType=oneshot\nExecStart=/bin/echo "a\\qb"\nExecStart=/bin/echo "unbalanced\n`);
    const r = spawnSync("systemd-analyze", ["verify", "--man=no", "--generators=no", file], { encoding: "utf8" });
    assert.match(r.stdout + r.stderr, /unknown escape/i);
    assert.match(r.stdout + r.stderr, /unbalanced quoting/i);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("systemdExec: refuses NUL, relative commands and an empty argv", () => {
  assert.throws(() => systemdExec([]), /empty/);
  assert.throws(() => systemdExec(["crosvm"]), /absolute/);
  assert.throws(() => systemdExecWord("a\0b"), /NUL/);
  assert.equal(systemdExec(["/bin/echo", "a b", "%i", "$HOME", ";", ""]), `/bin/echo "a b" "%%i" "$$HOME" ";" ""`);
  // The command keeps a single `$`: systemd execve()s it as written (only arguments lose a `$` of `$$`).
  assert.equal(systemdExec(["/nix/store/a$b/bin/x", "$b"]), `"/nix/store/a$b/bin/x" "$$b"`);
  // systemd will not run a command with quotes, backslashes or control characters, however quoted
  // (load-fragment.c: "Executable name contains special characters"); validation has to keep them out.
  for (const bad of [`/nix/store/a"b/bin/x`, "/nix/store/a'b/bin/x", "/a\\b", "/a\tb"]) assert.throws(() => parseSystemdExec(systemdExec([bad, "x"])), /special characters/, bad);
});

test("the systemd parser used above follows systemd.service(5) and systemd.syntax(7)", () => {
  // Examples from the man pages and load-fragment.c: separators, escapes, quotes, \; and strictness.
  assert.deepEqual(parseSystemdExec(`/bin/echo one ; /bin/echo "two two"`), [
    { prefixes: "", path: "/bin/echo", argv: ["/bin/echo", "one"] },
    { prefixes: "", path: "/bin/echo", argv: ["/bin/echo", "two two"] },
  ]);
  assert.deepEqual(parseSystemdExec(`-/bin/echo \\; "\\"" 'a b' x\\sy \\x41 %% $$`), [{ prefixes: "-", path: "/bin/echo", argv: ["/bin/echo", ";", '"', "a b", "x y", "A", "%", "$"] }]);
  assert.deepEqual(parseSystemdExec(`/bin/echo a"b c"d`), [{ prefixes: "", path: "/bin/echo", argv: ["/bin/echo", "ab cd"] }]);
  // The executable is not environment-expanded, its argv[0] is.
  assert.deepEqual(parseSystemdExec(`/bin/a$$b`), [{ prefixes: "", path: "/bin/a$$b", argv: ["/bin/a$b"] }]);
  assert.throws(() => parseSystemdExec(`/bin/echo $HOME`), /environment variable/);
  assert.throws(() => parseSystemdExec(`/bin/echo \${HOME}`), /environment variable/);
  assert.throws(() => parseSystemdExec(`/bin/echo %n`), /specifier/);
  assert.throws(() => parseSystemdExec(`/bin/echo "a`), /unbalanced/);
  assert.throws(() => parseSystemdExec(`/bin/echo "a\\qb"`), /unknown escape/);
  assert.throws(() => parseSystemdExec(`bin/echo`), /absolute/);
  assert.throws(() => parseSystemdExec(`"/bin/e'cho"`), /special characters/);
});
