/**
 * Contract with upstream crosvm: every crosvm command line vmsilo generates is accepted by the checker
 * built from test/contract/vmm/crosvm-cli.json, and the checker itself reproduces the README's verdict table
 * ("Example command lines checked against the JSON") and catches each rule on its own.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import fc from "fast-check";
import { ConfigError, resolve } from "../../src/generate.js";
import { KV_OPTION_KEYS, VHOST_USER_TYPES } from "../../src/model/model.js";
import { driverFor } from "../../src/hypervisors/index.js";
import { parseUnit } from "../../src/systemd/unit.js";
import { example, EXAMPLES, regularFiles, render } from "../support/harness.js";
import { VMM_DIR, checkCrosvmArgv, checkKeyValue, loadCrosvmCli, parseSystemdExec, tokenizeKeyValues, type KvKey } from "./crosvm-contract.js";

const cli = loadCrosvmCli();
const check = (line: string, allowDeprecated = false) => checkCrosvmArgv(line.split(" "), cli, { allowDeprecated });

// ------------------------------------------------------------------------------------------------
// The README's own examples

interface Row {
  readonly line: string;
  readonly valid: boolean;
  readonly evidence: string;
}

/** The crosvm rows of the README table, verbatim (`crosvm` is argv[0]; words are separated by single spaces). */
function readmeRows(): Row[] {
  const md = readFileSync(join(VMM_DIR, "README.md"), "utf8");
  const start = md.indexOf("## Example command lines checked against the JSON");
  assert.ok(start >= 0, "README section not found");
  const rows: Row[] = [];
  for (const l of md.slice(start).split("\n")) {
    const m = /^\| `(crosvm [^`]*)` \| (valid|INVALID) \| (.*) \|$/.exec(l);
    if (m) rows.push({ line: m[1]!.replace(/\\\|/g, "|"), valid: m[2] === "valid", evidence: m[3]! });
  }
  return rows;
}

const rows = readmeRows();

test("the README table is read: every crosvm row, both verdicts", () => {
  assert.ok(rows.length >= 50, `only ${rows.length} rows`);
  assert.ok(rows.filter((r) => !r.valid).length >= 8);
});

/** What the README's evidence says is wrong, as a pattern the checker's problems must match. */
function expectedProblem(evidence: string): RegExp | null {
  let m: RegExpExecArray | null;
  if ((m = /unknown JSON key `([^`]+)`/.exec(evidence))) return new RegExp(`unknown JSON key \`${m[1]}\``);
  if ((m = /unknown key `([^`]+)`/.exec(evidence))) return new RegExp(`unknown key \`${m[1]}\``);
  if ((m = /`(--[a-z0-9-]+)` is a GLOBAL option/.exec(evidence))) return new RegExp(`\`${m[1]}\` is a global option`);
  if ((m = /`(--[a-z0-9-]+)` is not an option of/.exec(evidence))) return new RegExp(`\`${m[1]}\` is not an option of`);
  if ((m = /`(--[a-z0-9-]+)`: switch/.exec(evidence))) return new RegExp(`\`${m[1]}\` is a switch and takes no value`);
  return null;
}

for (const row of rows) {
  test(`README: ${row.valid ? "valid  " : "INVALID"} ${row.line}`, () => {
    const problems = check(row.line, true);
    if (row.valid) {
      assert.deepEqual(problems, []);
      return;
    }
    assert.ok(problems.length > 0, "an INVALID row was accepted");
    const want = expectedProblem(row.evidence);
    if (want) assert.ok(problems.some((p) => want.test(p)), `expected ${want} among ${JSON.stringify(problems)}`);
  });
}

test("README: valid rows are flagged in strict mode only for deprecated options", () => {
  const flagged = rows.filter((r) => r.valid && check(r.line).length > 0);
  for (const r of flagged) for (const p of check(r.line)) assert.match(p, /is deprecated/, r.line);
  // The README marks exactly these as deprecated: --cid, -r (--root) and device gpu's hidden --socket.
  assert.deepEqual(
    flagged.map((r) => r.line),
    rows.filter((r) => r.valid && /deprecated/.test(r.evidence)).map((r) => r.line),
  );
  assert.equal(flagged.length, 3);
});

// ------------------------------------------------------------------------------------------------
// Each rule on its own

const K = "vmlinux";
const cases: Array<[string, string, RegExp | null]> = [
  // [what, command line, expected problem (null: accepted)]
  ["global option after the subcommand", `crosvm run --log-level=debug ${K}`, /is a global option/],
  ["global option before the subcommand", `crosvm --log-level=debug --no-syslog run ${K}`, null],
  ["a run option before the subcommand", `crosvm --hugepages run ${K}`, /not an option of `crosvm` \(global options\)/],
  ["unknown subcommand", `crosvm frobnicate ${K}`, /not a crosvm subcommand/],
  ["intermediate command without a subcommand", `crosvm device`, /needs a subcommand/],
  ["unknown option", `crosvm run --no-such-thing ${K}`, /not an option of `crosvm run`/],
  ["short form", `crosvm run -b /d.img -i /initrd -s /sock ${K}`, null],
  ["aarch64-only option on x86_64", `crosvm run --no-pmu ${K}`, /not available on linux-x86_64/],
  ["option needing a non-default feature", `crosvm run --gdb 1234 ${K}`, /not available on linux-x86_64/],
  ["deprecated option", `crosvm run --cid 3 ${K}`, /is deprecated/],
  ["deprecated device gpu --socket", `crosvm device gpu --socket /s`, /is deprecated/],
  ["switch given =true", `crosvm run --hugepages=true ${K}`, /switch and takes no value/],
  ["switch given =false", `crosvm --no-syslog=false run ${K}`, /switch and takes no value/],
  ["option without its value", `crosvm run ${K} --initrd`, /needs a value/],
  ["non-repeated option twice", `crosvm run --name a --name=b ${K}`, /only once/],
  ["repeated option twice", `crosvm run -p a --params b --block /a --block /b ${K}`, null],
  ["bool-valued option, bare", `crosvm run --core-scheduling ${K}`, /must be true or false/],
  ["bool-valued option, other word", `crosvm run --core-scheduling=yes ${K}`, /must be true or false/],
  ["bool-valued option, separate value", `crosvm run --core-scheduling false ${K}`, null],
  ["integer option", `crosvm run --vhost-user-connect-timeout-ms 0x10 ${K}`, /not an integer/],
  ["no kernel", `crosvm run --name a`, /needs 1 positional/],
  ["two kernels", `crosvm run ${K} other`, /stray positional "other"/],
  ["-- ends options", `crosvm run -- ${K}`, null],
  ["stop takes the socket", `crosvm stop`, /needs 1 positional/],
  ["usb attach", `crosvm usb attach 1:1:1d6b:0002 /dev/bus/usb/001/002 /s extra`, /stray positional "extra"/],
  ["balloon size is an integer", `crosvm balloon 1G /s`, /not an integer/],
  // key=value
  ["kv: unknown key", `crosvm run --block path=/a,readonly=true ${K}`, /unknown key `readonly`/],
  ["kv: alias", `crosvm run --block path=/a,o_direct=true,block_size=4096 ${K}`, null],
  ["kv: duplicate key via alias", `crosvm run --block path=/a,direct=true,o_direct=false ${K}`, /duplicate field `direct`/],
  ["kv: required key missing", `crosvm run --vhost-user type=gpu ${K}`, /missing required key `socket`/],
  ["kv: bool flag form", `crosvm run --block /a,ro,sparse ${K}`, null],
  ["kv: bool with a non-bool value", `crosvm run --block path=/a,ro=yes ${K}`, /is a bool/],
  ["kv: integer key with a word", `crosvm run --block path=/a,block-size=big ${K}`, /unquoted integer/],
  ["kv: integer key quoted", `crosvm run --mem size="1024" ${K}`, /unquoted integer/],
  ["kv: integer key too big", `crosvm run --serial type=stdout,num=256 ${K}`, /integer of type u8/],
  ["kv: integer key in hex", `crosvm run --mem size=0x400 ${K}`, null],
  ["kv: integer key given as a flag", `crosvm run --block /a,block-size ${K}`, /needs a value/],
  ["kv: enum value", `crosvm run --vhost-user type=gpuu,socket=/s ${K}`, /must be one of/],
  ["kv: enum value quoted", `crosvm run --vhost-user type="gpu",socket=/s ${K}`, /must be one of/],
  ["kv: enum alias", `crosvm run --gpu backend=3d ${K}`, null],
  ["kv: key of another arch", `crosvm run --cpus num-cores=2,sve=[auto] ${K}`, /not available on linux-x86_64/],
  ["kv: a comma splits an unquoted path", `crosvm run --block path=/a,b ${K}`, /unknown key `b`/],
  ["kv: a quote inside an unquoted value", `crosvm run --block path=/a"b ${K}`, /can only be used in quoted strings/],
  ["kv: a bracket inside an unquoted value", `crosvm run --block path=/a[b] ${K}`, /can only be used in quoted strings/],
  ["kv: double-quoted with escapes", `crosvm run --block path="/a,\\"b\\"\\\\[c]" ${K}`, null],
  ["kv: unknown escape in double quotes", `crosvm run --block path="/a\\nb" ${K}`, /may be escaped/],
  ["kv: single-quoted", `crosvm run --block path='/a,"b"' ${K}`, null],
  ["kv: unterminated quote", `crosvm run --block path="/a ${K}`, /unterminated/],
  ["kv: implicit first key trap", `crosvm run --block ro.img ${K}`, /expected '='/],
  ["kv: stray ]", `crosvm run --block path=/a] ${K}`, /remaining characters/],
  ["kv: empty value", `crosvm run --block path=,ro ${K}`, /expected a string/],
  ["kv: trailing comma", `crosvm run --block path=/a, ${K}`, null],
  ["kv: list value", `crosvm run --vsock cid=3,max-queue-sizes=[256,256,256] ${K}`, null],
  ["kv: nested struct needs brackets", `crosvm run --net tap-name=t0,vhost-net=on ${K}`, /needs a \[\.\.\.\] value/],
  // #[serde(flatten)] (NetParameters' mode comes from the untagged NetParametersMode variants)
  ["net: tap-name variant", `crosvm run --net tap-name=t0,mac=02:00:00:00:00:01,pci-address=00:05.0,packed-queue ${K}`, null],
  ["net: raw-config variant", `crosvm run --net host-ip=10.0.0.1,netmask=255.255.255.0,mac=02:00:00:00:00:01 ${K}`, null],
  ["net: no implicit first key", `crosvm run --net t0 ${K}`, /match no variant/],
  ["net: keys of two variants", `crosvm run --net tap-name=t0,tap-fd=3 ${K}`, /match no variant/],
  ["net: a required key missing", `crosvm run --net mac=02:00:00:00:00:01 ${K}`, /match no variant/],
  ["net: tap-name that reads as a number", `crosvm run --net tap-name=1234 ${K}`, /type-guessed .* as int/],
  ["net: tap-name quoted", `crosvm run --net tap-name="1234" ${K}`, null],
  ["net: tap-name starting with true", `crosvm run --net tap-name=trueish ${K}`, /read as a bool; quote it/],
  ["net: tap-fd as a word", `crosvm run --net tap-fd=three ${K}`, /type-guessed .* as string/],
  // device gpu --params (JSON)
  ["gpu params: not JSON", `crosvm device gpu --socket-path /s --params context-types=virgl2`, /not JSON/],
  ["gpu params: not an object", `crosvm device gpu --socket-path /s --params [1]`, /must be a JSON object/],
  ["gpu params: bool as a string", `crosvm device gpu --socket-path /s --params {"egl":"true"}`, /JSON true\/false/],
  ["gpu params: unknown context type", `crosvm device gpu --socket-path /s --params {"context-types":"virgl2:virgl3"}`, /"virgl3" is unknown/],
  ["gpu params: enum", `crosvm device gpu --socket-path /s --params {"backend":"gfxstream","width":1280}`, null],
  ["gpu params: integer as a string", `crosvm device gpu --socket-path /s --params {"width":"1280"}`, /JSON integer/],
  ["shared-dir: bad type", `crosvm run --shared-dir /a:tag:type=nfs ${K}`, /type=nfs/],
];

for (const [what, line, want] of cases) {
  test(`rule: ${what}`, () => {
    const problems = check(line);
    if (want === null) assert.deepEqual(problems, []);
    else assert.ok(problems.some((p) => want.test(p)), `expected ${want} among ${JSON.stringify(problems)}`);
  });
}

test("serde_keyvalue tokenizer: quoting forms and the implicit first key", () => {
  assert.deepEqual(tokenizeKeyValues(`a="x\\"y\\\\z",b='p"q',c=[1,[2,"]"]],d`), [
    { key: "a", value: { kind: "quoted", text: 'x"y\\z', quote: '"' } },
    { key: "b", value: { kind: "quoted", text: 'p"q', quote: "'" } },
    { key: "c", value: { kind: "list", raw: '1,[2,"]"]' } },
    { key: "d", value: { kind: "flag" } },
  ]);
  const disk = { fields: ["path", "ro"], firstKey: "path" };
  assert.deepEqual(tokenizeKeyValues("/x,ro", disk), [
    { key: null, value: { kind: "bare", text: "/x" } },
    { key: "ro", value: { kind: "flag" } },
  ]);
  assert.deepEqual(tokenizeKeyValues("ro", disk), [{ key: "ro", value: { kind: "flag" } }]);
  assert.deepEqual(tokenizeKeyValues("", disk), []);
  assert.throws(() => tokenizeKeyValues("ro.img", disk), /expected '='/);
  assert.deepEqual(checkKeyValue("DiskOption", "path=/x,ro=true", cli), []);
});

// ------------------------------------------------------------------------------------------------
// What vmsilo generates

/** Every crosvm command line of a rendered example: launchers, stop/powerbtn, GPU backends. */
function generatedCrosvmArgvs(name: string): Array<[string, string[]]> {
  const config = example(name);
  const model = resolve(config);
  const out: Array<[string, string[]]> = [];
  // Other hypervisors' VMs have their own contracts (test/contract/cloud-hypervisor.test.ts); their GPU
  // backend is crosvm's and is checked below with the units.
  for (const vm of model.vms.filter((v) => v.config.hypervisor === "crosvm")) {
    const d = driverFor(vm.config.hypervisor);
    out.push([`${vm.name} launch`, [...d.launchCommand(vm, model).flat()]]);
    out.push([`${vm.name} graceful stop`, [...d.gracefulStopArgv(vm, model)]]);
    out.push([`${vm.name} force stop`, [...d.forceStopArgv(vm, model)]]);
  }
  const crosvm = `${model.config.programs.crosvm}/bin/crosvm`;
  for (const f of regularFiles(render(config))) {
    if (!f.path.startsWith("lib/systemd/")) continue;
    for (const e of parseUnit(f.content)) {
      if (!e.key.startsWith("Exec")) continue;
      for (const c of parseSystemdExec(e.value)) if (c.argv[0] === crosvm) out.push([`${f.path} ${e.key}`, c.argv]);
    }
  }
  return out;
}

for (const name of EXAMPLES) {
  test(`every crosvm command line of examples/${name}.json passes the upstream contract`, () => {
    const argvs = generatedCrosvmArgvs(name);
    const model = resolve(example(name));
    assert.equal(argvs.filter(([w]) => w.endsWith(" launch")).length, model.vms.filter((v) => v.config.hypervisor === "crosvm").length);
    const gpuVms = model.vms.filter((v) => v.gpu).length;
    assert.equal(argvs.filter(([w]) => w.includes("-gpu.service")).length, gpuVms, "a GPU unit's crosvm ExecStart was not found");
    for (const [where, argv] of argvs) assert.deepEqual(checkCrosvmArgv(argv, cli), [], `${where}: ${JSON.stringify(argv)}`);
  });
}

test("the desktop example exercises the GPU backend and the flattened --net", () => {
  const argvs = generatedCrosvmArgvs("desktop");
  assert.ok(argvs.some(([, a]) => a.includes("device") && a.includes("gpu") && a.includes("--params")));
  assert.ok(argvs.some(([, a]) => a.includes("--net")));
});

// ------------------------------------------------------------------------------------------------
// The `options` records passed through to --block, --vfio and --vhost-user

const OPTION_STRUCTS = { block: "DiskOption", vfio: "VfioOption", vhostUser: "VhostUserFrontendOption" } as const;
/** Keys vmsilo writes itself; a user option of the same name would give crosvm a duplicate field. */
const OWN_KEYS = { block: ["path", "ro", "id"], vfio: ["path"], vhostUser: ["type", "socket"] } as const;
const upstreamKey = (struct: string, name: string): KvKey | undefined => cli.key_value_structs[struct]?.keys?.find((k) => k.name === name);

test("the option keys vmsilo lets through (KV_OPTION_KEYS) are keys of the upstream structs, and not its own", () => {
  for (const [what, keys] of Object.entries(KV_OPTION_KEYS) as Array<[keyof typeof OPTION_STRUCTS, readonly string[]]>) {
    for (const k of keys) {
      const key = upstreamKey(OPTION_STRUCTS[what], k);
      assert.ok(key, `${what}: ${k} is not a key of ${OPTION_STRUCTS[what]}`);
      assert.notEqual(key.available?.["linux-x86_64"], false, `${what}: ${k} is not available on x86_64`);
      assert.ok(!(OWN_KEYS[what] as readonly string[]).includes(k), `${what}: ${k} is written by vmsilo itself`);
    }
  }
});

/** A well-typed value for an upstream key, as it would appear in vmsilo.json. */
function valueFor(struct: string, name: string): fc.Arbitrary<string | number | boolean> {
  const type = (upstreamKey(struct, name)!.type ?? "").replace(/^Option<(.*)>$/, "$1");
  if (type === "bool") return fc.boolean();
  if (type === "u16") return fc.integer({ min: 0, max: 65535 });
  if (type === "u32" || type === "usize") return fc.integer({ min: 0, max: 2 ** 31 });
  if (type === "PciAddress") return fc.tuple(fc.nat(255), fc.nat(31), fc.nat(7)).map(([b, d, f]) => `${b.toString(16).padStart(2, "0")}:${d.toString(16).padStart(2, "0")}.${f}`);
  if (type === "ExecutorKind") return fc.constantFrom("epoll", "uring");
  const en = cli.key_value_structs[type];
  if (en?.kind === "enum") return fc.constantFrom(...(en.variants ?? []).map((v) => v.name));
  return fc.string({ unit: fc.constantFrom(..."ab09_-.,=\"'[] $`"), minLength: 1, maxLength: 12 });
}

const optionsFor = (what: keyof typeof OPTION_STRUCTS) =>
  fc.subarray([...KV_OPTION_KEYS[what]]).chain((keys) => fc.record(Object.fromEntries(keys.map((k) => [k, valueFor(OPTION_STRUCTS[what], k)]))));

test("well-typed options of every allowed key give crosvm command lines that meet the contract", () => {
  fc.assert(
    fc.property(optionsFor("block"), optionsFor("block"), optionsFor("vfio"), optionsFor("vhostUser"), (root, extra, vfio, vhost) => {
      const c = example("desktop") as any;
      c.nixosVms.work.rootDisk.options = root;
      c.nixosVms.work.additionalDisks[0].options = extra;
      c.nixosVms.work.vhostUser = [{ type: "net", socket: "/run/net,1.sock", options: vhost }];
      c.nixosVms.net.pciDevices[0].options = vfio;
      const model = resolve(c);
      for (const vm of model.vms.filter((v) => v.config.hypervisor === "crosvm")) {
        const argv = driverFor(vm.config.hypervisor).launchCommand(vm, model).flat();
        assert.deepEqual(checkCrosvmArgv(argv, cli), [], JSON.stringify(argv));
      }
    }),
    { numRuns: 200 },
  );
});

test(
  "an option value of the wrong type is refused by validation, never handed to crosvm",
  () => {
    for (const options of [{ "block-size": "4096" }, { sparse: "false" }, { bootindex: true }, { "pci-address": 5 }]) {
      const c = example("desktop") as any;
      c.nixosVms.work.additionalDisks[0].options = options;
      let model;
      try {
        model = resolve(c);
      } catch (e) {
        if (e instanceof ConfigError) continue; // refused: fine
        throw e;
      }
      const work = model.vms.find((v) => v.name === "work")!;
      assert.deepEqual(checkCrosvmArgv(driverFor("crosvm").launchCommand(work, model).flat(), cli), [], JSON.stringify(options));
    }
  },
);

test("interfaces with awkward names, taps and MACs give --net values crosvm reads as strings", () => {
  // IFNAME-valid words that serde_keyvalue's type guessing (flatten) would read as bools or numbers if bare.
  const ifname = fc.oneof(fc.constantFrom("true", "false", "trueish", "falsey", "e1", "inf", "nan", "x0", "a-1", "B_2"), fc.stringMatching(/^[A-Za-z][A-Za-z0-9_-]{0,14}$/));
  const mac = fc.tuple(fc.nat(127), fc.array(fc.nat(255), { minLength: 5, maxLength: 5 })).map(([a, r]) => [a * 2, ...r].map((b) => b.toString(16).padStart(2, "0")).join(":"));
  fc.assert(
    fc.property(fc.uniqueArray(fc.tuple(ifname, fc.option(ifname), fc.option(mac)), { minLength: 1, maxLength: 4, selector: ([n]) => n }), (ifs) => {
      const c = example("desktop") as any;
      const taps = new Set<string>();
      // Its own interfaces only: no link to a network VM.
      c.nixosVms.banking.network.netvm = null;
      c.nixosVms.banking.network.interfaces = Object.fromEntries(
        ifs.map(([name, tap, m], i) => {
          const t = tap !== null && !taps.has(tap) ? tap : `tap${i}`;
          taps.add(t);
          return [name, { tap: { name: t }, macAddress: m === null ? null : `${m.slice(0, -2)}${i.toString(16).padStart(2, "0")}`, dhcp: true }];
        }),
      );
      let model;
      try {
        model = resolve(c);
      } catch (e) {
        if (e instanceof ConfigError && /tap|MAC/.test(e.message)) return; // a collision with another VM's tap or MAC
        throw e;
      }
      const banking = model.vms.find((v) => v.name === "banking")!;
      const argv = driverFor("crosvm").launchCommand(banking, model).flat();
      assert.deepEqual(checkCrosvmArgv(argv, cli), [], JSON.stringify(argv));
      assert.equal(argv.filter((a) => a === "--net").length, ifs.length);
    }),
    { numRuns: 300 },
  );
});

test(
  "a vhost-user device type crosvm does not know is refused by validation, never handed to crosvm",
  () => {
    const known = (cli.key_value_structs["DeviceType"]?.variants ?? []).map((v) => v.name);
    assert.ok(known.includes("gpu") && known.includes("fs"));
    assert.deepEqual([...VHOST_USER_TYPES].sort(), [...known].sort(), "model.ts VHOST_USER_TYPES is upstream's DeviceType");
    for (const type of ["snd", "virtio-fs", "gpuu", "true"]) {
      const c = example("desktop") as any;
      c.nixosVms.work.vhostUser = [{ type, socket: "/run/x.sock" }];
      assert.throws(
        () => resolve(c),
        (e: unknown) => e instanceof ConfigError && e.issues.some((i) => i.path === "nixosVms.work.vhostUser[0].type"),
        `${type}: accepted, and crosvm would refuse it`,
      );
    }
  },
);
