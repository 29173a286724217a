/**
 * agent-relay LISTEN PORT: the host end of the test guest's command agent (see bootAgentGuest in
 * support.ts). PORT is qemu's unix socket for the guest's virtio-serial port `vmsilo.agent`; LISTEN
 * is a unix socket that takes vm-run connections one at a time. For each, the relay connects to
 * PORT, waits for a fresh agent's 4-byte preamble ("VMR" + version) before it passes on anything the
 * client sent, then copies both ways; when either side ends, the session ends (a serial port has no
 * half-close), and qemu's disconnect tells the guest the session is over.
 */
import { createConnection, createServer, type Socket } from "node:net";
import { rmSync } from "node:fs";

const [listen, port] = process.argv.slice(2);
if (!listen || !port) {
  process.stderr.write("usage: agent-relay LISTEN PORT\n");
  process.exit(2);
}

const PREAMBLE_MAGIC = Buffer.from("VMR");
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function connectPort(): Promise<Socket> {
  for (;;) {
    const s = createConnection(port!);
    const ok = await new Promise<boolean>((resolve) => {
      s.once("connect", () => resolve(true));
      s.once("error", () => resolve(false));
    });
    if (ok) return s;
    s.destroy();
    await sleep(50);
  }
}

/** One session: resolves when both sockets are closed. */
async function session(client: Socket): Promise<void> {
  const upstream = await connectPort();
  let head = Buffer.alloc(0);
  let started = false;
  const done = new Promise<void>((resolve) => {
    let closed = 0;
    const onClose = () => {
      client.destroy();
      upstream.destroy();
      if (++closed === 2) resolve();
    };
    client.once("close", onClose);
    upstream.once("close", onClose);
  });
  client.on("error", () => {});
  upstream.on("error", () => {});
  upstream.on("data", (d: Buffer) => {
    if (started) {
      client.write(d);
      return;
    }
    head = Buffer.concat([head, d]);
    const at = head.indexOf(PREAMBLE_MAGIC);
    if (at < 0 || head.length < at + 4) return;
    // Bytes before the preamble belong to no session (a previous agent's last words): dropped.
    started = true;
    client.write(head.subarray(at));
    client.on("data", (c: Buffer) => upstream.write(c));
    client.resume();
  });
  client.on("end", () => upstream.end());
  upstream.on("end", () => client.end());
  await done;
}

rmSync(listen, { force: true });
let queue = Promise.resolve();
const server = createServer({ pauseOnConnect: true }, (client) => {
  queue = queue.then(() => session(client)).catch(() => {});
});
server.listen(listen, () => process.stderr.write(`agent-relay: listening on ${listen}\n`));
const quit = () => {
  server.close();
  rmSync(listen, { force: true });
  process.exit(0);
};
process.on("SIGTERM", quit);
process.on("SIGINT", quit);
