/**
 * Guest output on the user's terminal (docs/protocol.md, "Output on a terminal"): vmsilo-run drops the
 * guest's terminal control sequences when its stdout or stderr is a terminal (a real pty, made by
 * util-linux `script`), keeps them with --raw, and passes them byte for byte to a pipe.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { buildAgent, missingTools, run, Server, tempDir, type Build } from "./support.js";
import { have } from "../support/harness.js";

const skip = missingTools() ?? (have("script") ? null : "script (util-linux) not found");
if (skip) console.log(`SKIP: vm-run terminal filter tests not run: ${skip}`);

/** The guest's output (a printf format: octal escapes) and what a terminal must get of it. */
const CASES: Array<[string, string, string]> = [
  ["colours (CSI)", String.raw`a\033[1;31mred\033[0mb`, "aredb"],
  ["window title (OSC ending in BEL)", String.raw`a\033]0;pwned\007b`, "ab"],
  ["OSC 52 clipboard write ending in ST", String.raw`a\033]52;c;ZWNobyBoaQ==\033\\b`, "ab"],
  ["DCS, SOS, PM and APC strings", String.raw`a\033Pq#0\033\\b\033Xs\033\\c\033^p\033\\d\033_a\033\\e`, "abcde"],
  ["two-byte escapes and intermediates", String.raw`a\033cb\033(0c\033#8d`, "abcd"],
  ["8-bit C1 CSI and OSC", String.raw`a\2332Jb\2350;t\234c`, "abc"],
  ["UTF-8 encoded C1 CSI and OSC", String.raw`a\302\2332Jb\302\2350;t\007c`, "abc"],
  ["other controls become ?", String.raw`a\007b\000c\177d\016e\302\205f\205g`, "a?b?c?d?e?f?g"],
  ["tab, backspace and carriage return stay", String.raw`a\tb\bc\rd`, "a\tb\bc\rd"],
  ["UTF-8 text stays, C1-range continuation bytes included", String.raw`\303\251\342\202\254\360\237\230\200`, "é€😀"],
  ["an unfinished CSI gives the next control back", String.raw`a\033[12\tb`, "a\tb"],
];

describe("vm-run output on a terminal", { skip: skip ?? false }, () => {
  let b: Build;
  let agent: Server;
  let sock: string;
  before(async () => {
    b = buildAgent();
    sock = join(tempDir("vmrun-tty"), "agent.sock");
    agent = await new Server([b.bin("vmsilo-agent"), "--listen-unix", sock]).ready();
  });
  after(() => agent.stop());

  const sq = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;
  /** vmsilo-run under a pty: stdout and stderr are the terminal; the pty turns \n into \r\n. */
  const onTerminal = (args: string[]) => run(["script", "-qec", [b.bin("vmsilo-run"), ...args].map(sq).join(" "), "/dev/null"]);

  for (const [what, format, shown] of CASES) {
    test(`${what}: filtered on a terminal, raw with --raw and in a pipe`, async () => {
      let r = await onTerminal([sock, "printf", `${format}\\n`]);
      assert.equal(r.status, 0, r.stderr);
      assert.equal(r.stdout.toString("utf8"), `${shown}\r\n`);
      const exact = await run([b.bin("vmsilo-run"), sock, "printf", `${format}\\n`]);
      assert.equal(exact.status, 0, exact.stderr);
      r = await onTerminal(["--raw", sock, "printf", `${format}\\n`]);
      assert.equal(r.status, 0, r.stderr);
      // Byte for byte what the pipe got, but for the pty's \n → \r\n.
      assert.deepEqual(r.stdout, Buffer.from(exact.stdout.toString("binary").replace(/\n/g, "\r\n"), "binary"));
    });
  }

  test("stderr is filtered too, and a sequence split across frames is still recognised", async () => {
    const r = await onTerminal([sock, "sh", "-c", String.raw`printf 'x\033]0;'; sleep 0.2; printf 'title\007y\033['; sleep 0.2; printf '2Jz\n'; printf 'e\033[2Jrr\n' >&2`]);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout.toString("utf8"), "xyz\r\nerr\r\n");
  });

  test("a pipe gets every byte, 0 to 255", async () => {
    const all = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
    const r = await run([b.bin("vmsilo-run"), sock, "cat"], all);
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(r.stdout, all);
  });
});
