/**
 * The generator never fails with an internal error (exit 1), whatever the input: object-prototype
 * names, reserved file names, lone surrogates, huge strings and numbers, NaN-ish JSON values and
 * deep nesting, put in every place of a configuration that uses every part of the schema (every
 * value replaced, every key renamed, a key added to every object). Each outcome is a rendered tree
 * or a ConfigError (exit 2) whose every issue names an option path; a sample goes through the real CLI.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { writeFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import fc from "fast-check";
import { ConfigError, generate } from "../../src/generate.js";
import { validate } from "../../src/config/validate.js";
import { configSchema } from "../../src/config/schema.js";
import { pathKey } from "../../src/config/types.js";
import { RESERVED_VM_NAMES } from "../../src/config/grammar.js";
import { example, runCli, tempDir, TEST_PREFIX } from "../support/harness.js";

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Json = any;
type Where = ReadonlyArray<string | number>;

const QEMU = "/nix/store/7q3ma1k6lq7w0b4j5b5n7m5ax9w5q2yz-qemu-10.1.2";

/** desktop.json plus a qemu VM with 9p shares, a user-mode interface and created disks, every
 * field filled (validate's defaults): every option of the schema has a place in it. */
function everything(): Json {
  const c: Json = example("desktop");
  c.programs.qemu = QEMU;
  c.vmExec = { enable: true, kernel: "/nix/store/x-vm-exec/bzImage", initramfs: "/nix/store/x-vm-exec/initrd", kernelParams: ["quiet"] };
  c.nixosVms.q = {
    hypervisor: "qemu",
    kernel: "/nix/store/q/bzImage",
    initramfs: "/nix/store/q/initrd",
    rootDisk: { path: "/nix/store/q/nixos.erofs" },
    additionalDisks: [{ path: "/var/lib/vmsilo/q.qcow2", format: "qcow2", createSize: "1G", id: "data" }],
    qemu: { machine: "q35", bios: "/nix/store/q/bios.bin", shares9p: { scratch: { path: "/srv/scratch" } }, extraArgs: ["-nodefaults"] },
    network: { interfaces: { slirp: { type: "user", forwardPorts: [{ host: { port: 2222 }, guest: { port: 22 } }] } } },
    pciDevices: [{ path: "0000:04:00.0" }],
  };
  const v = validate(c);
  assert.deepEqual(v.issues, [], "the base configuration is valid");
  return v.config;
}

const BASE = everything();

/** Every place of a document: each value (by its path) and whether it is an object. */
function places(v: Json, at: Where = [], out: Array<{ at: Where; object: boolean }> = []): Array<{ at: Where; object: boolean }> {
  const object = typeof v === "object" && v !== null && !Array.isArray(v);
  out.push({ at, object });
  if (Array.isArray(v)) v.forEach((x, i) => places(x, [...at, i], out));
  else if (object) for (const k of Object.keys(v)) places(v[k], [...at, k], out);
  return out;
}

const PLACES = places(BASE);

/** Markers for what JSON.stringify cannot write; the text gets the real thing. */
const INFINITY = "@@1e400@@";
const DEEP = "@@deep@@";
const toText = (doc: Json): string =>
  JSON.stringify(doc)
    .replaceAll(`"${INFINITY}"`, "1e400")
    .replaceAll(`"${DEEP}"`, "[".repeat(20000) + "]".repeat(20000));

const PROTO_NAMES = ["__proto__", "constructor", "toString", "valueOf", "hasOwnProperty", "isPrototypeOf", "propertyIsEnumerable", "toLocaleString", "__defineGetter__", "__lookupSetter__", "prototype", "length"];
/** Names of files and units the tree has anyway, and names of directories. */
const FILE_NAMES = [...RESERVED_VM_NAMES, "launch", "stop", "vm", "prep", "console-relay", "vmsilo", "vm-start", "vm-run", "vm-shell", "manifest.json", ".", "..", "", "-", "a-", "work", "net"];
const HOSTILE_STRINGS = [
  "\ud800", "a\udc00b", "/a\ud800", "x".repeat(100000), `/${"a/".repeat(3000)}a`, `/${"é".repeat(300)}`, "/../..", "/a/", "//", "/ a", "/a ", "/a\u0000b", "/a\nb", "relative",
  "NaN", "Infinity", "-0", "0x10", "1e400", "true", "null", "10G ", "9999999999999T", '"', "a\"b", "$(id)", "%h", "\\", "lo", "eth0", "br-work", "::", "0.0.0.0/0", "fe80::1%eth0",
];
const HOSTILE_VALUES: Json[] = [
  ...HOSTILE_STRINGS, ...PROTO_NAMES, ...FILE_NAMES,
  null, true, false, 0, -0, -1, 0.5, 1e308, -1e308, 2 ** 53 + 1, 4294967296, INFINITY, DEEP,
  [], {}, [null], [[[[[]]]]], { __proto__: null }, Object.fromEntries(PROTO_NAMES.map((k) => [k, 1])),
];
const HOSTILE_KEYS = [...PROTO_NAMES, ...FILE_NAMES, ...HOSTILE_STRINGS.filter((s) => s.length < 5000)];

type Change = { kind: "value"; place: number; value: number } | { kind: "rename"; place: number; key: number } | { kind: "add"; place: number; key: number; value: number };

const change: fc.Arbitrary<Change> = fc.oneof(
  fc.record({ kind: fc.constant("value" as const), place: fc.nat(PLACES.length - 1), value: fc.nat(HOSTILE_VALUES.length - 1) }),
  fc.record({ kind: fc.constant("rename" as const), place: fc.nat(PLACES.length - 1), key: fc.nat(HOSTILE_KEYS.length - 1) }),
  fc.record({ kind: fc.constant("add" as const), place: fc.nat(PLACES.length - 1), key: fc.nat(HOSTILE_KEYS.length - 1), value: fc.nat(HOSTILE_VALUES.length - 1) }),
);

/** Where an object key is set, it is set as data (JSON.parse makes `__proto__` an own key too). */
const put = (o: Json, k: string | number, v: Json) => Object.defineProperty(o, k, { value: v, enumerable: true, writable: true, configurable: true });

/** The base with the changes applied, as JSON text, and the keys it introduced (for path checks). */
function apply(changes: readonly Change[]): { text: string; keys: string[] } {
  const doc: Json = structuredClone(BASE);
  const keys: string[] = [];
  const at = (where: Where): Json => where.reduce((v: Json, k) => (v === undefined || v === null ? undefined : v[k]), doc);
  for (const c of changes) {
    const { at: where, object } = PLACES[c.place]!;
    if (c.kind === "value") {
      if (where.length === 0) continue;
      const parent = at(where.slice(0, -1));
      if (typeof parent === "object" && parent !== null) put(parent, where.at(-1)!, structuredClone(HOSTILE_VALUES[c.value]));
    } else if (c.kind === "rename") {
      const parent = at(where.slice(0, -1));
      const old = where.at(-1);
      if (typeof old !== "string" || typeof parent !== "object" || parent === null || Array.isArray(parent) || !Object.hasOwn(parent, old)) continue;
      const key = HOSTILE_KEYS[c.key]!;
      const v = parent[old];
      delete parent[old];
      put(parent, key, v);
      keys.push(key);
    } else if (object) {
      const o = at(where);
      if (typeof o !== "object" || o === null || Array.isArray(o)) continue;
      const key = HOSTILE_KEYS[c.key]!;
      put(o, key, structuredClone(HOSTILE_VALUES[c.value]));
      keys.push(key);
    }
  }
  return { text: toText(doc), keys };
}

/** The first name of an option path: a top-level option, or a key the change introduced there. */
function firstName(path: string): string {
  if (path === "(document)") return path;
  const m = /^("(?:[^"\\]|\\.)*"|[^.[]+)/.exec(path);
  return m ? m[1]! : "";
}
const TOP = new Set(Object.keys(configSchema.fields!));

/** generate() on the text: a tree, or a ConfigError whose issues all name an option path. */
function outcome(text: string, keys: readonly string[]): "ok" | "bad input" {
  try {
    generate(JSON.parse(text), { prefix: TEST_PREFIX });
    return "ok";
  } catch (e) {
    // Anything but a ConfigError is the CLI's exit 1.
    if (!(e instanceof ConfigError)) throw new Error(`internal error (exit 1): ${(e as Error).stack}`);
    assert.ok(e.issues.length > 0);
    for (const i of e.issues) {
      const first = firstName(i.path);
      assert.ok(first === "(document)" || TOP.has(first) || keys.some((k) => pathKey(k) === first), `issue names no option path: ${JSON.stringify(i)}`);
      assert.ok(i.message.length > 0 && i.message.length < 4000, `a message of ${i.message.length} characters`);
    }
    return "bad input";
  }
}

test("the base renders, and every single place gets every kind of hostile value without an internal error", () => {
  assert.equal(outcome(toText(BASE), []), "ok");
  fc.assert(
    fc.property(change, (c) => void outcome(...(Object.values(apply([c])) as [string, string[]]))),
    { numRuns: 400, seed: 1113 },
  );
});

test("several hostile changes at once never make an internal error", () => {
  fc.assert(
    fc.property(fc.array(change, { minLength: 2, maxLength: 8 }), (cs) => void outcome(...(Object.values(apply(cs)) as [string, string[]]))),
    { numRuns: 150 },
  );
});

test("through the real CLI: exit 0 or 2, never 1, and every issue line names an option path", () => {
  const dir = tempDir("hostile");
  try {
    const file = join(dir, "vmsilo.json");
    const seen = new Set<number>();
    fc.assert(
      fc.property(fc.array(change, { minLength: 1, maxLength: 4 }), (cs) => {
        const { text, keys } = apply(cs);
        writeFileSync(file, text);
        const r = runCli(["render", "--config", file, "--out", join(dir, "out"), "--prefix", TEST_PREFIX, "--dry-run"]);
        seen.add(r.status ?? -1);
        assert.ok(r.status === 0 || r.status === 2, `exit ${r.status}: ${r.stderr.slice(0, 2000)}`);
        if (r.status === 2) {
          const [head, ...lines] = r.stderr.trimEnd().split("\n");
          assert.match(head!, /^vmsilo-gen: invalid configuration \(\d+ issues?\):$/);
          for (const l of lines) {
            const m = /^ {2}(\S.*?): /.exec(l);
            assert.ok(m, `not an issue line: ${l.slice(0, 200)}`);
            const first = firstName(m[1]!);
            assert.ok(first === "(document)" || TOP.has(first) || keys.some((k) => pathKey(k) === first), l.slice(0, 200));
          }
        }
      }),
      { numRuns: 25, seed: 2026 },
    );
    assert.ok(seen.has(2), "some inputs were refused");
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
