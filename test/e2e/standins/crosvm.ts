/**
 * The crosvm stand-in's VMM half (helper.c hands it every command line but `device gpu`): it accepts
 * only an argv that upstream's CLI definition accepts (the contract checker), then behaves as crosvm
 * does towards the units around it:
 *
 *  - `run`: every `--vhost-user` socket must have a listening backend, every `--net tap-name=` tap must
 *    exist and every `--block` file be there (crosvm opens them at start, and fails otherwise); it
 *    connects to its `--serial type=unix-stream` socket and prints boot-like output there, echoing
 *    what it reads and answering each line with a login prompt (with the kernel parameter
 *    vmsilo.standin.panic it prints a kernel panic instead and exits 1); it creates its control socket
 *    (`--socket`), crosvm's own: SOCK_SEQPACKET, one JSON VmRequest per packet, served through
 *    helper.c (Node has no SEQPACKET), answering `Exit` (exit at once), `Powerbtn` (the guest powers
 *    off: exit 0), the balloon's `Stats` and `Adjust` (its size kept, unless `--no-balloon`), and
 *    `usb attach/detach/list` requests from helper.c's native `crosvm usb` client (one text request
 *    per packet there: the stand-in's own, not crosvm's), keeping real port state (usbRequest below);
 *  - `stop` / `powerbtn` / `balloon_stats <socket>`, `balloon SIZE <socket>`: send that request to a
 *    running crosvm (through helper.c's client end), exit 1 when none answers.
 *
 * Everything it does is logged on stderr ("vmsilo-standin crosvm: …").
 */
import { spawn, spawnSync } from "node:child_process";
import { createConnection, type Socket } from "node:net";
import { existsSync, rmSync } from "node:fs";
import { checkCrosvmArgv, loadCrosvmCli, tokenizeKeyValues } from "../../contract/crosvm-contract.js";

const argv = process.argv.slice(2);
const log = (msg: string) => process.stderr.write(`vmsilo-standin crosvm: ${msg}\n`);
const fail = (msg: string, status = 1): never => {
  log(msg);
  process.exit(status);
};

const problems = checkCrosvmArgv(["crosvm", ...argv], loadCrosvmCli());
if (problems.length) fail(`upstream's CLI definition refuses this command line: ${problems.join("; ")}`, 2);

/** The options of the subcommand as [name, value] pairs (`--opt=value` split as crosvm splits it). */
function options(args: string[]): { cmd: string; opts: Array<[string, string]>; positional: string[] } {
  const split = args.flatMap((a) => (a.startsWith("--") && a.includes("=") ? [a.slice(0, a.indexOf("=")), a.slice(a.indexOf("=") + 1)] : [a]));
  let i = 0;
  while (split[i]?.startsWith("-")) i += split[i] === "--log-level" ? 2 : 1;
  const cmd = split[i++] ?? "";
  const opts: Array<[string, string]> = [];
  const positional: string[] = [];
  for (; i < split.length; i++) {
    const a = split[i]!;
    if (!a.startsWith("-")) positional.push(a);
    else if (i + 1 < split.length && !split[i + 1]!.startsWith("--")) opts.push([a, split[++i]!]);
    else opts.push([a, ""]);
  }
  return { cmd, opts, positional };
}

/** A serde_keyvalue value as a map (flags are "true"). */
function kv(s: string): Map<string, string> {
  return new Map(tokenizeKeyValues(s).map((p) => [p.key ?? "", p.value.kind === "quoted" || p.value.kind === "bare" ? p.value.text : p.value.kind === "list" ? p.value.raw : "true"]));
}

const connect = (path: string) =>
  new Promise<Socket>((resolve, reject) => {
    const s = createConnection(path);
    s.once("connect", () => resolve(s));
    s.once("error", reject);
  });

const { cmd, opts, positional } = options(argv);
const values = (name: string) => opts.filter(([o]) => o === name).map(([, v]) => v);

/** The helper binary (helper.c), run as the control socket's ends: SOCK_SEQPACKET, which Node lacks. */
const helper = () => process.env.VMSILO_STANDIN_HELPER || fail("VMSILO_STANDIN_HELPER is not set (helper.c sets it: run the stand-in as its package's bin/crosvm)", 2);

/** crosvm's control requests (vm_control's VmRequest, as serde_json writes them). */
function requestJson(verb: string, rest: string[]): string {
  if (verb === "stop") return '"Exit"';
  if (verb === "powerbtn") return '"Powerbtn"';
  if (verb === "balloon_stats") return '{"BalloonCommand":"Stats"}';
  return JSON.stringify({ BalloonCommand: { Adjust: { num_bytes: Number(rest[0]), wait_for_success: false } } });
}

function request(verb: string): void {
  // `crosvm balloon SIZE SOCKET`; the others take only the socket.
  const path = positional.at(-1)!;
  const r = spawnSync(helper(), [path, requestJson(verb, positional.slice(0, -1))], { argv0: "vmsilo-standin-control-client", encoding: "utf8" });
  if (r.status !== 0) fail(`cannot connect to the control socket ${path}: ${r.stderr.trim()}`);
  const answer: unknown = JSON.parse(r.stdout);
  if (verb === "balloon_stats") process.stdout.write(`${JSON.stringify(answer)}\n`);
  else if (answer !== "Ok") fail(`unexpected response: ${r.stdout.trim()}`);
}

/** The guest's USB ports (crosvm's xHCI backend): port → the device in it. A request is a line from
 * helper.c's `crosvm usb` client; the answer is upstream's UsbControlResult as crosvm prints it. */
const USB_PORTS = 8;
const usbPorts = new Map<number, { vid: string; pid: string; rdev: string }>();
function usbRequest(words: string[]): string {
  const [verb, ...rest] = words;
  if (verb === "attach" && rest.length === 4) {
    const [vid, pid, rdev] = rest as [string, string, string];
    if ([...usbPorts.values()].some((d) => d.rdev === rdev)) return "failed_to_open_device";
    for (let port = 1; port <= USB_PORTS; port++) {
      if (usbPorts.has(port)) continue;
      usbPorts.set(port, { vid, pid, rdev });
      log(`usb: ${vid}:${pid} (device ${rdev}) attached on port ${port}`);
      return `ok ${port}`;
    }
    return "no_available_port";
  }
  if (verb === "detach" && rest.length === 1) {
    const port = Number(rest[0]);
    if (!usbPorts.delete(port)) return "no_such_port";
    log(`usb: port ${port} detached`);
    return `ok ${port}`;
  }
  if (verb === "list" && rest.length === 0) {
    return ["devices", ...[...usbPorts].sort(([a], [b]) => a - b).map(([port, d]) => `${port} ${d.vid} ${d.pid}`)].join(" ");
  }
  return "error unknown usb request";
}

async function run(): Promise<void> {
  const name = values("--name")[0] ?? "vm";
  for (const v of values("--block")) {
    const path = kv(v).get("path") ?? "";
    if (!existsSync(path)) fail(`block device ${path}: no such file`);
  }
  for (const v of values("--net")) {
    const tap = kv(v).get("tap-name");
    if (tap && !existsSync(`/sys/class/net/${tap}`)) fail(`tap ${tap}: no such network interface`);
  }
  const backends: Socket[] = [];
  for (const v of values("--vhost-user")) {
    const o = kv(v);
    const socket = o.get("socket")!;
    backends.push(await connect(socket).catch((e: Error) => fail(`vhost-user ${o.get("type")} backend ${socket}: ${e.message}`)));
    log(`connected to the vhost-user ${o.get("type")} backend ${socket}`);
  }
  // A backend that goes away takes the device with it: crosvm exits.
  for (const b of backends) b.on("close", () => fail("a vhost-user backend closed its connection"));
  for (const v of values("--serial")) {
    const o = kv(v);
    if (o.get("type") !== "unix-stream") continue;
    const path = o.get("path")!;
    const serial = await connect(path).catch((e: Error) => fail(`serial ${path}: ${e.message}`));
    const prompt = () => serial.write(`\r\n${name} login: `);
    serial.write(`[    0.000000] Linux version 6.12.0 (vmsilo-standin) crosvm\r\n`);
    // A guest that cannot boot (the kernel parameter vmsilo.standin.panic): the VMM exits with an error.
    if (values("-p").includes("vmsilo.standin.panic")) {
      serial.write("[    0.200000] Kernel panic - not syncing: VFS: Unable to mount root fs (vmsilo-standin)\r\n");
      setTimeout(() => fail("the guest panicked"), 200);
      continue;
    }
    serial.write(`[    0.100000] vmsilo-standin: VM ${name} booted\r\n`);
    prompt();
    serial.on("data", (d: Buffer) => {
      serial.write(d);
      if (d.includes(13) || d.includes(10)) prompt();
    });
    serial.on("error", () => {});
    log(`serial console on ${path}`);
  }
  const control = values("--socket")[0];
  if (!control) return;
  rmSync(control, { force: true });
  // The balloon as crosvm keeps it: Adjust sets its size (at once, here), Stats reports it with what
  // a guest of this memory with 64 MiB in use would have available.
  const memory = Number(kv(values("--mem")[0] ?? "size=256").get("size") ?? 256) * 2 ** 20;
  const hasBalloon = !opts.some(([o]) => o === "--no-balloon");
  let balloon = 0;
  const answer = (req: unknown): { text: string; then?: () => void } => {
    if (req === "Exit") return { text: '"Ok"', then: () => process.exit(0) };
    if (req === "Powerbtn") return { text: '"Ok"', then: () => setTimeout(() => fail("the guest powered off", 0), 100) };
    const b = (req as { BalloonCommand?: unknown }).BalloonCommand;
    if (b !== undefined && !hasBalloon) return { text: JSON.stringify({ ErrString: "no balloon device (--no-balloon)" }) };
    if (b === "Stats") {
      const avail = Math.max(0, memory - 64 * 2 ** 20 - balloon);
      return { text: JSON.stringify({ BalloonStats: { stats: { swap_in: 0, swap_out: 0, major_faults: 0, minor_faults: 0, free_memory: avail, total_memory: memory, available_memory: avail, disk_caches: 0, hugetlb_allocations: 0, hugetlb_failures: 0, shared_memory: 0, unevictable_memory: 0 }, balloon_actual: balloon } }) };
    }
    const adjust = (b as { Adjust?: { num_bytes?: unknown; wait_for_success?: unknown } } | undefined)?.Adjust;
    if (adjust && Number.isInteger(adjust.num_bytes) && typeof adjust.wait_for_success === "boolean") {
      balloon = Math.min(memory, Math.floor((adjust.num_bytes as number) / 4096) * 4096);
      log(`balloon set to ${balloon} bytes`);
      return { text: '"Ok"' };
    }
    return { text: JSON.stringify({ ErrString: "unknown request" }) };
  };
  const server = spawn(helper(), [control], { argv0: "vmsilo-standin-control-server", stdio: ["pipe", "pipe", "inherit"] });
  server.on("exit", (code) => fail(`the control socket's server exited (${code})`));
  let buf = "";
  server.stdout!.setEncoding("utf8").on("data", (d: string) => {
    buf += d;
    for (let i = buf.indexOf("\n"); i >= 0; i = buf.indexOf("\n")) {
      const line = buf.slice(0, i);
      buf = buf.slice(i + 1);
      let req: unknown;
      try {
        req = JSON.parse(line);
      } catch {
        req = null;
      }
      log(`control request: ${typeof req === "string" ? req.toLowerCase() : line}`);
      const a = line.startsWith("usb ") ? { text: usbRequest(line.split(" ").slice(1)) } : answer(req);
      server.stdin!.write(`${a.text}\n`, () => a.then?.());
    }
  });
}

if (cmd === "run") await run();
else if (["stop", "powerbtn", "balloon", "balloon_stats"].includes(cmd)) request(cmd);
else fail(`the stand-in does not do \`crosvm ${cmd}\``, 2);
