/**
 * vmsilo-copy-check, vm-copy's check of the tar stream a source VM sends: what GNU tar writes for
 * files and directories passes through unchanged (less its end blocks), and every hostile entry is
 * refused with its name and why: "..", absolute and empty components, control characters such as a
 * newline, links, devices, fifos, pax headers, a bad checksum, data over the limits, a cut stream.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdirSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { buildAgent, missingTools, tempDir } from "./support.js";
import { have } from "../support/harness.js";

/** One ustar (GNU magic) header block and its data, as a hostile source VM may write it. */
function entry(name: string, o: { type?: string; data?: Buffer; size?: number; magic?: string; badSum?: boolean } = {}): Buffer {
  const h = Buffer.alloc(512);
  const data = o.data ?? Buffer.alloc(0);
  h.write(name.slice(0, 100), 0, "latin1");
  h.write("0000644\0", 100);
  h.write("0000000\0", 108);
  h.write("0000000\0", 116);
  h.write(`${(o.size ?? data.length).toString(8).padStart(11, "0")}\0`, 124);
  h.write("00000000000\0", 136);
  h.write(o.type ?? "0", 156);
  h.write(o.magic ?? "ustar  \0", 257, "latin1");
  h.fill(" ", 148, 156);
  let sum = 0;
  for (const b of h) sum += b;
  h.write(`${(sum + (o.badSum ? 1 : 0)).toString(8).padStart(6, "0")}\0 `, 148);
  const pad = Buffer.alloc((512 - (data.length % 512)) % 512);
  return Buffer.concat([h, data, pad]);
}
const END = Buffer.alloc(1024);

test("vmsilo-copy-check passes what tar writes and refuses every hostile entry", (t) => {
  const why = missingTools();
  if (why) return t.skip(why);
  const check = join(buildAgent(["all"]).dir, "vmsilo-copy-check");
  const run = (input: Buffer, maxBytes = 1000, maxEntries = 10) => spawnSync(check, ["--max-bytes", String(maxBytes), "--max-entries", String(maxEntries)], { input });

  const ok = Buffer.concat([entry("d/", { type: "5" }), entry("d/a b", { data: Buffer.from("hello") })]);
  const r = run(Buffer.concat([ok, END]));
  assert.equal(r.status, 0, r.stderr.toString());
  assert.deepEqual(r.stdout, ok, "the stream passes unchanged, without its end blocks");

  const refused: Array<[string, Buffer, RegExp]> = [
    ["dot-dot", entry("../../home/user/.bashrc", { data: Buffer.from("x") }), /refused \.\.\/\.\.\/home\/user\/\.bashrc: a name with a "\." or "\.\." component/],
    ["inner dot-dot", entry("d/../../x"), /a name with a "\." or "\.\." component/],
    ["absolute", entry("/etc/passwd"), /refused \/etc\/passwd: an absolute name/],
    ["empty component", entry("d//x"), /an empty component/],
    ["newline", entry("a\nb"), /refused a\?b: a name with a control character/],
    ["symlink", entry("l", { type: "2" }), /refused l: a symbolic link/],
    ["hard link", entry("h", { type: "1" }), /a hard link/],
    ["device", entry("c", { type: "3" }), /a device/],
    ["fifo", entry("f", { type: "6" }), /a fifo/],
    ["pax header", entry("p", { type: "x" }), /an extended \(pax\) header/],
    ["bad checksum", entry("a", { badSum: true }), /a wrong checksum/],
    ["not tar", entry("a", { magic: "nottar\0\0" }), /neither ustar nor GNU/],
    ["directory with data", entry("d/", { type: "5", size: 512, data: Buffer.alloc(512) }), /a directory with data/],
  ];
  for (const [what, bad, message] of refused) {
    const res = run(Buffer.concat([ok, bad, END]));
    assert.equal(res.status, 1, what);
    assert.match(res.stderr.toString(), message, what);
  }
  const big = run(Buffer.concat([entry("big", { data: Buffer.alloc(2000) }), END]));
  assert.equal(big.status, 1);
  assert.match(big.stderr.toString(), /refused big: more than 1000 bytes in all/);
  const many = run(Buffer.concat([...Array.from({ length: 11 }, (_, i) => entry(`f${i}`)), END]));
  assert.match(many.stderr.toString(), /refused f10: more than 10 entries/);
  assert.match(run(ok).stderr.toString(), /ends without its end-of-archive blocks/);
  assert.match(run(Buffer.concat([ok, entry("cut", { size: 900 })])).stderr.toString(), /refused cut: the archive ends inside the file/);
  assert.match(run(Buffer.concat([ok, END, Buffer.from("x".repeat(512))])).stderr.toString(), /data after the end/);

  // What GNU tar itself writes, a long (GNU 'L') name included, passes; a symbolic link does not.
  if (!have("tar")) return;
  const dir = tempDir("copy-check");
  mkdirSync(join(dir, "docs", "x".repeat(150)), { recursive: true });
  writeFileSync(join(dir, "docs", "r\u00e9sum\u00e9.txt"), "text");
  const tarred = spawnSync("tar", ["-c", "-f", "-", "-C", dir, "docs"]).stdout;
  const passed = run(tarred);
  assert.equal(passed.status, 0, passed.stderr.toString());
  const listed = spawnSync("tar", ["-t", "-f", "-"], { input: Buffer.concat([passed.stdout, END]) }).stdout.toString().split("\n").sort();
  assert.deepEqual(listed.filter(Boolean), ["docs/", `docs/${"x".repeat(150)}/`, "docs/r\u00e9sum\u00e9.txt"].sort());
  symlinkSync("/etc/passwd", join(dir, "docs", "link"));
  assert.match(run(spawnSync("tar", ["-c", "-f", "-", "-C", dir, "docs"]).stdout).stderr.toString(), /refused docs\/link: a symbolic link/);
});
