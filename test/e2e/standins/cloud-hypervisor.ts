/**
 * The cloud-hypervisor and ch-remote stand-ins (argv[2] names which), over a real API socket: HTTP on
 * a unix socket, the REST routes ch-remote uses taken from upstream's CLI definition.
 *
 *  - `cloud-hypervisor`: the argv must pass the contract checker; it listens on `--api-socket` and
 *    serves vm.create (the body must validate against upstream's OpenAPI VmConfig, strictly), vm.boot
 *    (every `fs` and `generic_vhost_user` socket must have a listening backend, every tap and disk
 *    exist; then it listens on its serial socket, in Socket mode, and on its vsock socket, and prints
 *    boot-like output to whoever connects to the serial socket), vm.shutdown (the VM goes, the VMM
 *    stays), vm.power-button (the guest powers off: exit 0), vmm.shutdown (exit 0), vmm.ping, and the
 *    balloon's vm.resize (`desired_balloon`, kept within the VM's memory) and vm.info (the config with
 *    the balloon's size, `memory_actual_size` outside it), as vmsilo-balloond uses them.
 *  - `ch-remote --api-socket P <subcommand> …`: the argv must pass the checker; it makes that call and,
 *    as the real one, prints the server's error and exits 1 when it fails.
 *
 * What it does is logged on stderr ("vmsilo-standin cloud-hypervisor: …").
 */
import { createConnection, createServer, type Server, type Socket } from "node:net";
import { existsSync, readFileSync } from "node:fs";
import http from "node:http";
import { checkChArgv, checkChRemoteArgv, loadChCli, schemaErrors, vmConfigValidator } from "../../contract/cloud-hypervisor-contract.js";

const [program, ...args] = process.argv.slice(2);
const log = (msg: string) => process.stderr.write(`vmsilo-standin ${program}: ${msg}\n`);
const fail = (msg: string, status = 1): never => {
  log(msg);
  process.exit(status);
};
const cli = loadChCli();

const connect = (path: string) =>
  new Promise<Socket>((resolve, reject) => {
    const s = createConnection(path);
    s.once("connect", () => resolve(s));
    s.once("error", reject);
  });
const listen = (path: string, onConnection: (c: Socket) => void) =>
  new Promise<Server>((resolve, reject) => {
    const s = createServer(onConnection);
    s.once("error", reject);
    s.listen(path, () => resolve(s));
  });

interface VmConfig {
  payload?: { cmdline?: string };
  disks?: Array<{ path: string }>;
  net?: Array<{ tap?: string }>;
  fs?: Array<{ socket: string; tag: string }>;
  generic_vhost_user?: Array<{ socket: string; device_type: number }>;
  serial?: { mode: string; socket?: string };
  vsock?: { socket: string };
  memory?: { size: number };
  balloon?: { size: number; deflate_on_oom?: boolean; free_page_reporting?: boolean };
}

async function boot(config: VmConfig): Promise<string | null> {
  for (const d of config.disks ?? []) if (!existsSync(d.path)) return `Error booting VM: disk ${d.path} does not exist`;
  for (const n of config.net ?? []) if (n.tap && !existsSync(`/sys/class/net/${n.tap}`)) return `Error booting VM: tap ${n.tap} does not exist`;
  const backends = [...(config.fs ?? []).map((f) => [`fs ${f.tag}`, f.socket]), ...(config.generic_vhost_user ?? []).map((g) => [`vhost-user device type ${g.device_type}`, g.socket])];
  for (const [what, socket] of backends) {
    const s = await connect(socket!).catch((e: Error) => e);
    if (s instanceof Error) return `Error booting VM: ${what} backend ${socket}: ${s.message}`;
    log(`connected to the ${what} backend ${socket}`);
    s.on("close", () => fail(`the ${what} backend closed its connection`));
  }
  const name = /vmsilo\.hostname=(\S+)/.exec(config.payload?.cmdline ?? "")?.[1] ?? "vm";
  if (config.serial?.mode === "Socket") {
    await listen(config.serial.socket!, (c) => {
      const prompt = () => c.write(`\r\n${name} login: `);
      c.write(`[    0.000000] Linux version 6.12.0 (vmsilo-standin) cloud-hypervisor\r\n[    0.100000] vmsilo-standin: VM ${name} booted\r\n`);
      prompt();
      c.on("data", (d: Buffer) => {
        c.write(d);
        if (d.includes(13) || d.includes(10)) prompt();
      });
      c.on("error", () => {});
    });
    log(`serial console on ${config.serial.socket}`);
  }
  if (config.vsock) await listen(config.vsock.socket, (c) => c.end());
  return null;
}

function vmm(): void {
  const problems = checkChArgv(["cloud-hypervisor", ...args], cli);
  if (problems.length) fail(`upstream's CLI definition refuses this command line: ${problems.join("; ")}`, 2);
  const i = args.indexOf("--api-socket");
  const api = args[i + 1]!.replace(/^path=/, "");
  const validate = vmConfigValidator(true);
  let config: VmConfig | null = null;
  let booted = false;
  const handle = async (op: string, body: string): Promise<[number, string]> => {
    log(`API ${op}`);
    switch (op) {
      case "PUT /api/v1/vm.create": {
        const c: unknown = JSON.parse(body);
        if (!validate(c)) return [400, `Error creating VM: ${schemaErrors(validate).join("; ")}`];
        config = c as VmConfig;
        return [204, ""];
      }
      case "PUT /api/v1/vm.boot": {
        if (!config) return [500, "Error booting VM: VmNotCreated"];
        const error = await boot(config);
        booted = error === null;
        return error ? [500, error] : [204, ""];
      }
      case "PUT /api/v1/vm.shutdown":
        // The VM goes, the VMM stays (a new vm.create may follow).
        config = null;
        return [204, ""];
      case "PUT /api/v1/vm.power-button":
        setTimeout(() => fail("the guest powered off", 0), 100);
        return [204, ""];
      case "PUT /api/v1/vmm.shutdown":
        setTimeout(() => fail("the VMM shut down", 0), 10);
        return [200, ""];
      // The balloon, kept as the real one keeps it: vm.resize sets its size (within the VM's
      // memory), vm.info reports the config with it and the memory outside it.
      case "GET /api/v1/vm.info": {
        if (!config) return [500, "Error getting VM info: VmNotCreated"];
        const size = config.memory?.size ?? 0;
        return [200, JSON.stringify({ config, state: booted ? "Running" : "Created", memory_actual_size: size - (config.balloon?.size ?? 0) })];
      }
      case "PUT /api/v1/vm.resize": {
        if (!config) return [500, "Error resizing VM: VmNotCreated"];
        const r: unknown = JSON.parse(body);
        const want = (r as { desired_balloon?: unknown }).desired_balloon;
        if (!config.balloon) return [500, "Error resizing VM: MissingVirtioBalloon"];
        if (typeof want !== "number" || !Number.isInteger(want) || want < 0 || want > (config.memory?.size ?? 0)) return [400, `Error resizing VM: bad desired_balloon ${JSON.stringify(want)}`];
        log(`balloon resized to ${want} bytes`);
        config.balloon.size = want;
        return [204, ""];
      }
      case "GET /api/v1/vmm.ping":
        return [200, '{"version":"stand-in"}'];
      default:
        return [404, `unknown ${op}`];
    }
  };
  const server = http.createServer((req, res) => {
    let body = "";
    req.on("data", (d) => (body += d));
    req.on("end", () => void handle(`${req.method} ${req.url}`, body).then(([code, text]) => res.writeHead(code, { "content-length": Buffer.byteLength(text) }).end(text)));
  });
  server.once("error", (e) => fail(`Error binding to the API socket ${api}: ${e.message}`));
  server.listen(api, () => log(`API socket ${api}`));
}

function remote(): void {
  const problems = checkChRemoteArgv(["ch-remote", ...args], cli);
  if (problems.length) fail(`upstream's CLI definition refuses this command line: ${problems.join("; ")}`, 2);
  const api = args[args.indexOf("--api-socket") + 1]!;
  const rest = args.slice(args.indexOf("--api-socket") + 2);
  const sub = rest[0]!;
  const [method, path] = cli["ch-remote"].subcommands[sub]!.http![0]!.split(" ");
  const file = rest.slice(1).filter((a) => a !== "--")[0];
  const body = sub === "create" ? readFileSync(file === undefined || file === "-" ? 0 : file, "utf8") : "";
  const req = http.request({ socketPath: api, method, path, headers: { "content-length": Buffer.byteLength(body) } }, (res) => {
    let text = "";
    res.on("data", (d) => (text += d));
    res.on("end", () => (res.statusCode! >= 300 ? fail(`Error running command: Server responded with an error: ${res.statusCode}: ${text}`) : process.exit(0)));
  });
  req.on("error", (e) => fail(`Error running command: Error opening HTTP socket: ${e.message}`));
  req.end(body);
}

if (program === "cloud-hypervisor") vmm();
else if (program === "ch-remote") remote();
else fail(`unknown program ${program}`, 2);
