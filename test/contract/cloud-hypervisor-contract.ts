/**
 * cloud-hypervisor's upstream definitions as checkers (test/contract/vmm/, see its README):
 *   - `checkChArgv`: a `cloud-hypervisor` command line against the clap flags of main.rs and the keys each
 *     `XConfig::parse` registers (cloud-hypervisor-cli.json);
 *   - `checkChRemoteArgv`: a `ch-remote` command line against its global args and subcommands;
 *   - `vmConfigValidator`: a JSON-schema validator (ajv) of OpenAPI `VmConfig`
 *     (cloud-hypervisor-openapi.yaml), as upstream wrote it or strict (no key the schema does not name:
 *     cloud-hypervisor's serde drops unknown keys silently, which is how the original's `gpu` and
 *     `vhost_user_sound` went nowhere);
 *   - `writeChStubs`: a recording `cloud-hypervisor`/`ch-remote` pair that speaks HTTP over the API socket.
 */
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Ajv, type ValidateFunction } from "ajv";
import { parse as parseYaml } from "yaml";
import { VMM_DIR } from "./crosvm-contract.js";

export interface ChFlag {
  readonly name: string;
  readonly short?: string;
  readonly takes_value: boolean | "optional";
  readonly repeated: boolean;
  readonly action?: string;
  readonly group?: string;
  readonly cfg?: readonly string[];
  readonly value_parser?: readonly string[];
  readonly value_parser_config?: string;
}

export interface ChRemoteArg {
  readonly id: string;
  readonly name?: string;
  readonly positional_index?: number;
  readonly takes_value: boolean;
  readonly required?: boolean;
}

export interface ChCli {
  readonly "cloud-hypervisor": { readonly flags: readonly ChFlag[] };
  readonly option_string_parsers: Readonly<Record<string, { readonly parsers?: ReadonlyArray<{ readonly keys: ReadonlyArray<{ readonly name: string; readonly valueless: boolean }> }> }>>;
  readonly "ch-remote": {
    readonly global_args: readonly ChRemoteArg[];
    readonly subcommands: Readonly<Record<string, { readonly args: readonly ChRemoteArg[]; readonly http?: readonly string[] }>>;
  };
}

const CLI_FILE = join(VMM_DIR, "cloud-hypervisor-cli.json");
const OPENAPI_FILE = join(VMM_DIR, "cloud-hypervisor-openapi.yaml");

/** Like loadCrosvmCli: without test/contract/vmm the test file says so and runs nothing. */
function need(file: string): void {
  if (!existsSync(file)) {
    console.log(`SKIP: ${file} is absent; the cloud-hypervisor contract checks need it`);
    process.exit(0);
  }
}

export function loadChCli(): ChCli {
  need(CLI_FILE);
  return JSON.parse(readFileSync(CLI_FILE, "utf8")) as ChCli;
}

export function loadChOpenApi(): { components: { schemas: Record<string, unknown> } } {
  need(OPENAPI_FILE);
  return parseYaml(readFileSync(OPENAPI_FILE, "utf8")) as { components: { schemas: Record<string, unknown> } };
}

// ------------------------------------------------------------------------------------------------
// OpenAPI VmConfig

/** OpenAPI integer formats, as ranges (JSON schema leaves `format` to the validator). */
const INT_FORMATS: Record<string, readonly [number, number]> = {
  int8: [-128, 127],
  uint8: [0, 255],
  int16: [-32768, 32767],
  uint16: [0, 65535],
  int32: [-2147483648, 2147483647],
  uint32: [0, 4294967295],
  int64: [Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER],
};

/** Every object schema that lists `properties` gets `additionalProperties: false` (unless it says otherwise). */
function closed(schema: unknown): unknown {
  if (Array.isArray(schema)) return schema.map(closed);
  if (typeof schema !== "object" || schema === null) return schema;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(schema)) out[k] = k === "properties" ? Object.fromEntries(Object.entries(v as object).map(([p, s]) => [p, closed(s)])) : closed(v);
  if ("properties" in out && !("additionalProperties" in out)) out.additionalProperties = false;
  return out;
}

/**
 * A validator of `components.schemas.VmConfig`. `strict` also refuses keys the schema does not name
 * (cloud-hypervisor would ignore them without a word).
 */
export function vmConfigValidator(strict: boolean): ValidateFunction {
  const api = loadChOpenApi();
  const schemas = (strict ? closed(api.components.schemas) : api.components.schemas) as Record<string, Record<string, unknown>>;
  const ajv = new Ajv({ allErrors: true, strict: false });
  for (const [name, [min, max]] of Object.entries(INT_FORMATS)) ajv.addFormat(name, { type: "number", validate: (n: number) => Number.isInteger(n) && n >= min && n <= max });
  return ajv.compile({ ...schemas.VmConfig, components: { schemas } });
}

/** The validator's errors as readable lines. */
export const schemaErrors = (v: ValidateFunction) => (v.errors ?? []).map((e) => `${e.instancePath || "(top)"} ${e.message ?? ""}${e.params && "additionalProperty" in e.params ? `: ${String(e.params.additionalProperty)}` : ""}`);

// ------------------------------------------------------------------------------------------------
// Command lines

/** option_parser: split at `,` outside `[]` and `""` (option_parser/src/lib.rs split_commas). */
export function splitOptions(s: string): string[] {
  const out: string[] = [];
  let depth = 0;
  let quoted = false;
  let cur = "";
  for (const c of s) {
    if (c === '"') quoted = !quoted;
    else if (!quoted && c === "[") depth++;
    else if (!quoted && c === "]") depth--;
    if (c === "," && depth === 0 && !quoted) {
      out.push(cur);
      cur = "";
    } else cur += c;
  }
  out.push(cur);
  return out;
}

/** The keys of `value` (an OptionParser string) the config type does not register. */
function unknownKeys(cli: ChCli, configType: string, parser: "first" | "second" | "any", value: string): string[] {
  const parsers = cli.option_string_parsers[configType]?.parsers ?? [];
  const chosen = parser === "first" ? parsers.slice(0, 1) : parser === "second" ? parsers.slice(1, 2) : parsers;
  const keys = new Map(chosen.flatMap((p) => p.keys.map((k) => [k.name, k.valueless] as const)));
  const problems: string[] = [];
  for (const item of splitOptions(value)) {
    if (item === "") continue;
    const eq = item.indexOf("=");
    const key = eq < 0 ? item : item.slice(0, eq);
    const valueless = keys.get(key);
    if (valueless === undefined) problems.push(`unknown key \`${key}\` for ${configType} (known: ${[...keys.keys()].join(", ")})`);
    else if (eq < 0 && !valueless) problems.push(`key \`${key}\` of ${configType} needs a value`);
  }
  return problems;
}

export interface ChCheckOptions {
  /** Every vm-config flag needs a payload flag (clap group `vm-payload`); the README's rows omit it. */
  readonly requirePayload?: boolean;
  /** Flags gated by a non-default cargo feature or another arch count as absent. Default true. */
  readonly defaultBuild?: boolean;
}

/** Problems of a `cloud-hypervisor` argv (argv[0] is the program); empty = accepted. */
export function checkChArgv(argv: readonly string[], cli: ChCli, opts: ChCheckOptions = {}): string[] {
  const flags = cli["cloud-hypervisor"].flags;
  const find = (n: string) => flags.find((f) => f.name === n || f.short === n);
  const problems: string[] = [];
  const counts = new Map<string, number>();
  let payload = false;
  const vmConfig: string[] = [];
  for (let i = 1; i < argv.length; i++) {
    const a = argv[i]!;
    if (!a.startsWith("-") || a === "-") {
      problems.push(`stray positional ${JSON.stringify(a)}: cloud-hypervisor takes none`);
      continue;
    }
    let name = a;
    let inline: string | undefined;
    let n = 1;
    if (/^-v+$/.test(a)) {
      name = "-v";
      n = a.length - 1;
    } else if (a.startsWith("--") && a.includes("=")) {
      name = a.slice(0, a.indexOf("="));
      inline = a.slice(a.indexOf("=") + 1);
    }
    const f = find(name);
    if (!f) {
      problems.push(`\`${name}\` is not a cloud-hypervisor flag`);
      continue;
    }
    if ((opts.defaultBuild ?? true) && f.cfg?.some((c) => c.startsWith("feature"))) problems.push(`\`${name}\` needs a cargo feature (${f.cfg.join(", ")}) the default build lacks`);
    counts.set(f.name, (counts.get(f.name) ?? 0) + n);
    if (!f.repeated && counts.get(f.name)! > 1) problems.push(`\`${name}\` may be given only once (clap: cannot be used multiple times)`);
    if (f.group === "vm-payload") payload = true;
    if (f.group === "vm-config") vmConfig.push(f.name);
    let value: string | undefined = inline;
    if (f.takes_value === true && value === undefined) {
      value = argv[++i];
      if (value === undefined) {
        problems.push(`\`${name}\` needs a value`);
        continue;
      }
    } else if (f.takes_value === false && inline !== undefined) problems.push(`\`${name}\` takes no value`);
    if (value === undefined) continue;
    if (f.value_parser && !f.value_parser.includes(value)) problems.push(`\`${name}\` must be one of ${f.value_parser.join(", ")}, got ${JSON.stringify(value)}`);
    const vpc = f.value_parser_config ?? "";
    if (f.name === "--api-socket" || f.name === "--event-monitor") {
      // main.rs parse_api_socket: `path=<path>` or `fd=<fd>` through OptionParser, else a bare path.
      if (/^(path|fd)=/.test(value)) {
        const items = splitOptions(value);
        if (items.length !== 1) problems.push(`\`${name}\` value ${JSON.stringify(value)} holds more than one key`);
        if (value.startsWith("fd=") && !/^fd=[0-9]+$/.test(value)) problems.push(`\`${name}\` fd= needs a number`);
        if (value.startsWith("path=") && !value.startsWith("path=/")) problems.push(`\`${name}\` path= should be absolute`);
      } else if (f.name === "--event-monitor") problems.push(`\`${name}\` takes path= or fd=`);
      else if (value.includes("=")) problems.push(`\`${name}\` value ${JSON.stringify(value)} is neither path=, fd= nor a plain path`);
    } else {
      const m = /^([A-Za-z]+Config)(?: \((first|second) parser)?/.exec(vpc);
      if (m) problems.push(...unknownKeys(cli, m[1]!, (m[2] as "first" | "second" | undefined) ?? "any", value).map((p) => `\`${name}\`: ${p}`));
    }
  }
  if ((opts.requirePayload ?? true) && vmConfig.length && !payload) problems.push(`${vmConfig.join(", ")} need a payload flag (--kernel, --firmware, --igvm or --fw-cfg-config)`);
  return problems;
}

/** Problems of a `ch-remote` argv; empty = accepted. `--api-socket` must be a plain absolute path. */
export function checkChRemoteArgv(argv: readonly string[], cli: ChCli): string[] {
  const r = cli["ch-remote"];
  const problems: string[] = [];
  let i = 1;
  let api: string | undefined;
  while (i < argv.length && argv[i]!.startsWith("--")) {
    const a = argv[i]!;
    const g = r.global_args.find((x) => x.id === a.slice(2) || (x as { name?: string }).name === a);
    if (!g) {
      problems.push(`\`${a}\` is not a global ch-remote option`);
      i++;
      continue;
    }
    if (g.id !== "api-socket") problems.push(`\`${a}\` needs the dbus_api feature`);
    if (g.takes_value) {
      if (g.id === "api-socket") api = argv[i + 1];
      i += 2;
    } else i++;
  }
  if (api === undefined) problems.push("no --api-socket (ch-remote needs it)");
  else if (/^(path|fd)=/.test(api) || !api.startsWith("/")) problems.push(`--api-socket takes a plain absolute path (UnixStream::connect), got ${JSON.stringify(api)}`);
  const sub = argv[i];
  const spec = sub === undefined ? undefined : r.subcommands[sub];
  if (!spec) {
    problems.push(sub === undefined ? "no subcommand" : `\`${sub}\` is not a ch-remote subcommand`);
    return problems;
  }
  const positionals = spec.args.filter((a) => a.positional_index !== undefined);
  let got = 0;
  let ended = false;
  for (i++; i < argv.length; i++) {
    const a = argv[i]!;
    if (!ended && a === "--") {
      ended = true;
      continue;
    }
    if (!ended && a.startsWith("--")) {
      const o = spec.args.find((x) => x.name === a.split("=")[0]);
      if (!o) problems.push(`\`${a}\` is not an option of \`ch-remote ${sub}\``);
      else if (o.takes_value && !a.includes("=")) i++;
      continue;
    }
    got++;
  }
  if (got > positionals.length) problems.push(`\`ch-remote ${sub}\` takes ${positionals.length} positional argument(s), got ${got}`);
  const required = positionals.filter((p) => p.required).length;
  if (got < required) problems.push(`\`ch-remote ${sub}\` needs ${required} positional argument(s), got ${got}`);
  return problems;
}

// ------------------------------------------------------------------------------------------------
// Stubs

/**
 * A `cloud-hypervisor`/`ch-remote` pair under `dir/bin` (a package for `programs.cloudHypervisor`), in
 * Node. The VMM records its argv (`$STUB_LOG/cloud-hypervisor.jsonl`) and its pid, binds its API socket
 * and serves the REST calls ch-remote makes over HTTP: `vm.create` records the body
 * (`$STUB_LOG/vm.create.json`) and binds the serial socket (Socket mode), `vm.boot` binds the vsock socket
 * (answering `CONNECT <port>` with `OK`), `vm.power-button` exits after 100 ms unless
 * STUB_IGNORE_POWER=1, `vmm.shutdown` exits. Like the real one, a bind over an existing path fails and the
 * sockets stay behind when it dies. STUB_FAIL=create|boot makes that call fail (HTTP 500);
 * STUB_NO_API=1 never binds the API socket; STUB_EXIT=<n> exits at once with n. `ch-remote` maps each
 * subcommand to its REST call by the upstream data, records argv (`$STUB_LOG/ch-remote.jsonl`), prints the
 * server's error and exits 1 on failure, as the real one does.
 */
export function writeChStubs(dir: string, cli: ChCli): string {
  const binDir = join(dir, "bin");
  mkdirSync(binDir, { recursive: true });
  const routes = Object.fromEntries(Object.entries(cli["ch-remote"].subcommands).map(([k, v]) => [k, v.http?.[0] ?? null]));
  const vmm = `#!${process.execPath}
const fs = require("node:fs"), http = require("node:http"), net = require("node:net");
const log = process.env.STUB_LOG;
const argv = process.argv.slice(2);
fs.appendFileSync(log + "/cloud-hypervisor.jsonl", JSON.stringify(argv) + "\\n");
fs.writeFileSync(log + "/cloud-hypervisor.pid", String(process.pid));
const event = (e) => fs.appendFileSync(log + "/events", e + "\\n");
if (process.env.STUB_EXIT) { event("exit " + process.env.STUB_EXIT); process.exit(Number(process.env.STUB_EXIT)); }
process.on("SIGTERM", () => { event("SIGTERM"); process.exit(0); });
const i = argv.indexOf("--api-socket");
const api = argv[i + 1].replace(/^path=/, "");
const listen = (path, onConn) => new Promise((ok, fail) => { const s = net.createServer(onConn); s.once("error", fail); s.listen(path, () => ok(s)); });
let config = null;
function serial(c) { event("serial connected"); c.write("ttyS0 login: "); c.on("data", (d) => c.write(d)); c.on("error", () => {}); }
function vsock(c) {
  let buf = "";
  c.on("data", function onData(d) {
    buf += d;
    const nl = buf.indexOf("\\n");
    if (nl < 0) return;
    c.off("data", onData);
    event("vsock " + buf.slice(0, nl));
    c.write("OK 1073741824\\n");
    c.on("data", (x) => c.write(x));
    c.on("end", () => c.end());
  });
  c.on("error", () => {});
}
async function handle(req, body) {
  const op = req.method + " " + req.url;
  event(op);
  if (op === "PUT /api/v1/vm.create") {
    fs.writeFileSync(log + "/vm.create.json", body);
    if (process.env.STUB_FAIL === "create") return [500, "Error creating VM: InvalidPayload"];
    config = JSON.parse(body);
    if (config.serial && config.serial.mode === "Socket") {
      try { await listen(config.serial.socket, serial); } catch (e) { return [500, "Error creating VM: CreateConsoleDevice(" + e.code + ")"]; }
    }
    return [204, ""];
  }
  if (op === "PUT /api/v1/vm.boot") {
    if (process.env.STUB_FAIL === "boot") return [500, "Error booting VM: VmBoot(DeviceManager)"];
    if (config === null) return [500, "Error booting VM: VmNotCreated"];
    if (config.vsock) { try { await listen(config.vsock.socket, vsock); } catch (e) { return [500, "Error booting VM: vsock bind " + e.code]; } }
    event("booted");
    return [204, ""];
  }
  if (op === "PUT /api/v1/vm.power-button") {
    if (!process.env.STUB_IGNORE_POWER) setTimeout(() => { event("guest powered off"); process.exit(0); }, 100);
    return [204, ""];
  }
  if (op === "PUT /api/v1/vmm.shutdown") { setTimeout(() => { event("vmm shut down"); process.exit(0); }, 10); return [200, ""]; }
  if (op === "GET /api/v1/vmm.ping") return [200, "{}"];
  return [404, "unknown " + op];
}
if (!process.env.STUB_NO_API) {
  const server = http.createServer((req, res) => {
    let body = "";
    req.on("data", (d) => (body += d));
    req.on("end", async () => { const [code, text] = await handle(req, body); res.writeHead(code); res.end(text); });
  });
  server.once("error", (e) => { console.error("cloud-hypervisor: Error binding to the API socket " + api + ": " + e.code); process.exit(1); });
  server.listen(api, () => event("api listening"));
}
setInterval(() => {}, 1 << 30);
`;
  const remote = `#!${process.execPath}
const fs = require("node:fs"), http = require("node:http");
const routes = ${JSON.stringify(routes)};
const argv = process.argv.slice(2);
fs.appendFileSync(process.env.STUB_LOG + "/ch-remote.jsonl", JSON.stringify(argv) + "\\n");
let i = 0, api;
while (argv[i] && argv[i].startsWith("--")) { if (argv[i] === "--api-socket") api = argv[++i]; i++; }
const sub = argv[i++];
const route = routes[sub];
if (!api || !route) { console.error("ch-remote: bad usage"); process.exit(2); }
const rest = argv.slice(i).filter((a) => a !== "--");
let body = "";
if (sub === "create") body = fs.readFileSync(rest[0] === undefined || rest[0] === "-" ? 0 : rest[0], "utf8");
const [method, path] = route.split(" ");
const req = http.request({ socketPath: api, method, path, headers: { "content-length": Buffer.byteLength(body) } }, (res) => {
  let text = "";
  res.on("data", (d) => (text += d));
  res.on("end", () => {
    if (res.statusCode >= 300) { console.error("Error running command: Server responded with an error: " + res.statusCode + ": " + text); process.exit(1); }
    process.exit(0);
  });
});
req.on("error", (e) => { console.error("Error running command: Error opening HTTP socket: " + e.message); process.exit(1); });
req.end(body);
`;
  for (const [name, text] of [["cloud-hypervisor", vmm], ["ch-remote", remote]] as const) {
    writeFileSync(join(binDir, name), text);
    chmodSync(join(binDir, name), 0o755);
  }
  return dir;
}
