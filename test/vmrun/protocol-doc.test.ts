/**
 * docs/protocol.md matches the code: frame types, error codes, limits, timeouts and the default PATH
 * are read from the C sources and must appear in the document as stated there.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { ROOT } from "../support/harness.js";

const doc = readFileSync(join(ROOT, "docs", "protocol.md"), "utf8");
const src = (f: string) => readFileSync(join(ROOT, "agent", f), "utf8");

/** `#define NAME value` → the value's text, for every define of a file. */
function defines(text: string): Map<string, string> {
  const m = new Map<string, string>();
  for (const [, name, value] of text.matchAll(/^#define (\w+) (.+?)\s*(?:\/\*.*)?$/gm)) m.set(name!, value!.trim());
  return m;
}
/** A define's numeric value: "0x81u", "4096u", "(1024u * 1024u)". */
const num = (v: string) =>
  v
    .replace(/[()]/g, "")
    .split("*")
    .map((f) => Number(f.trim().replace(/u$/, "")))
    .reduce((a, b) => a * b, 1);
const grouped = (n: number) => n.toLocaleString("en-US").replace(/,/g, " ");

const proto = defines(src("protocol.h"));
const agent = defines(src("vmsilo-agent.c"));
const proxy = defines(src("vmsilo-vsock-proxy.c"));
const parse = defines(src("parse.h"));

test("frame types: every type of protocol.h is in the table with its code", () => {
  const names: Record<string, string> = { VMR_EXEC: "EXEC", VMR_STDIN: "STDIN", VMR_STDIN_EOF: "STDIN_EOF", VMR_STDOUT: "STDOUT", VMR_STDERR: "STDERR", VMR_EXIT: "EXIT", VMR_ERROR: "ERROR" };
  for (const [define, name] of Object.entries(names)) {
    const code = num(proto.get(define)!);
    assert.ok(doc.includes(`| \`0x${code.toString(16).padStart(2, "0")}\` ${name} |`), `${name} = 0x${code.toString(16)}`);
  }
  assert.equal(num(proto.get("VMR_VERSION")!), 1);
  assert.match(doc, /version = 0x01/);
});

test("error codes and the statuses vmsilo-run maps them to", () => {
  const rows: [string, string, string][] = [
    ["VMR_E_PROTOCOL", "protocol", "VMR_STATUS_FAILURE"],
    ["VMR_E_NOT_FOUND", "not found", "VMR_STATUS_NOT_FOUND"],
    ["VMR_E_NOT_EXECUTABLE", "not executable", "VMR_STATUS_NOT_EXECUTABLE"],
    ["VMR_E_START_FAILED", "start failed", "VMR_STATUS_START_FAILED"],
    ["VMR_E_UNREACHABLE", "unreachable", "VMR_STATUS_FAILURE"],
  ];
  for (const [code, name, status] of rows) {
    const re = new RegExp(`^\\| ${num(proto.get(code)!)} ${name} \\|.*\\| ${num(proto.get(status)!)} \\|$`, "m");
    assert.match(doc, re, `${code} → ${status}`);
  }
  assert.match(doc, new RegExp(`^\\| ${num(proto.get("VMR_STATUS_USAGE")!)} \\| usage`, "m"));
});

test("limits", () => {
  for (const [define, shown] of [
    ["VMR_MAX_ARGV_BYTES", (n: number) => `| ${grouped(n)} | \`VMR_MAX_ARGV_BYTES\` |`],
    ["VMR_MAX_ARGC", (n: number) => `| ${n} | \`VMR_MAX_ARGC\` |`],
    ["VMR_MAX_DATA", (n: number) => `| 1 … ${grouped(n)} | \`VMR_MAX_DATA\` |`],
    ["VMR_MAX_MESSAGE", (n: number) => `| ${n} bytes | \`VMR_MAX_MESSAGE\` |`],
    ["VMR_FIRST_UNPRIVILEGED_PORT", (n: number) => `| below ${n} | \`VMR_FIRST_UNPRIVILEGED_PORT\` |`],
  ] as const) {
    assert.ok(doc.includes(shown(num(proto.get(define)!))), define);
  }
});

test("timeouts and retry pauses", () => {
  assert.ok(doc.includes(`| ${num(agent.get("REQUEST_TIMEOUT_MS")!) / 1000} s | \`REQUEST_TIMEOUT_MS\``));
  assert.ok(doc.includes(`| ${num(agent.get("HANGUP_GRACE_MS")!) / 1000} s | \`HANGUP_GRACE_MS\``));
  assert.ok(doc.includes(`| ${num(agent.get("DRAIN_TIMEOUT_MS")!) / 1000} s | \`DRAIN_TIMEOUT_MS\``));
  assert.ok(doc.includes(`default ${num(proxy.get("DEFAULT_TIMEOUT_S")!)} s | \`DEFAULT_TIMEOUT_S\``));
  assert.ok(doc.includes(`pausing ${num(proxy.get("RETRY_FIRST_MS")!)} ms, doubling to at most ${num(proxy.get("RETRY_MAX_MS")!)} ms`));
  assert.ok(doc.includes(`a line over ${num(parse.get("HANDSHAKE_LINE_MAX")!)} bytes`));
});

test("the default PATH and the retryable errors", () => {
  const path = JSON.parse(agent.get("DEFAULT_PATH")!) as string;
  assert.ok(doc.includes(`(default \`${path}\`)`));
  const retryable = [...src("vmsilo-vsock-proxy.c").matchAll(/case (E[A-Z]+):/g)].map((m) => m[1]);
  assert.ok(retryable.length >= 5);
  assert.ok(doc.replace(/\s+/g, " ").includes(retryable.join(", ")), `the document lists exactly: ${retryable.join(", ")}`);
});
