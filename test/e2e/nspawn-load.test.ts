/**
 * The command socket under load, with real systemd (nspawn-load.ts): 1000 vm-run calls in a row
 * as fast as possible, then 32 callers at once; every call succeeds, the socket keeps listening (its
 * trigger limit is above what systemd can start), no proxy lingers and no unit failed. And the proxy
 * unit as generated binds the privileged vsock port the guest agent requires: with its capability it
 * gets as far as connecting, without it the bind is refused.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { skip } from "./support.js";
import { loadInNspawn, resultNumber } from "./nspawn-load.js";

const SEQ = 1000;
const PAR = 32;
const PER = 5;

test(`in systemd-nspawn: ${SEQ} sequential and ${PAR} parallel vm-run calls all succeed, the command socket stays listening`, (t) => {
  const r = loadInNspawn({ seq: SEQ, par: PAR, per: PER, timeoutS: 600 });
  if (typeof r === "string") return skip(t, `vm-run load under systemd: ${r}`);
  const { result, context } = r;
  assert.match(result, /^done$/m, context());
  assert.equal(resultNumber(result, "first-status"), 0, context());
  assert.equal(resultNumber(result, "seq-fails"), 0, context());
  assert.match(result, /^socket-after-seq ok$/m, context());
  const workers = [...result.matchAll(/^par-fails (\d+) (\d+)$/gm)];
  assert.equal(workers.length, PAR, context());
  assert.deepEqual(workers.filter((m) => m[2] !== "0").map((m) => `worker ${m[1]}: ${m[2]} failed`), [], context());
  assert.match(result, /^socket-after-par ok$/m, context());
  assert.equal(resultNumber(result, "after-status"), 0, context());
  assert.equal(resultNumber(result, "lingering"), 0, context());
  assert.equal(resultNumber(result, "failed"), 0, context());
  if (/Address family not supported/.test(r.cap)) {
    console.log("SKIP: AF_VSOCK is not available here: the proxy unit's privileged bind not checked");
  } else {
    assert.match(r.cap, /gave up reaching the guest agent at vsock CID \d+ port 5000 after 1\.\d s and \d+ attempts \(timeout 1 s\); last error: connect: /, `with the capability:\n${r.cap}`);
    assert.doesNotMatch(r.cap, /bind/, r.cap);
    assert.match(r.nocap, /cannot reach the guest agent at vsock CID \d+ port 5000: bind to the privileged vsock port \d+: Permission denied \(the proxy needs CAP_NET_BIND_SERVICE\)/, `without the capability:\n${r.nocap}`);
  }
  const seqMs = resultNumber(result, "seq-ms");
  const parMs = resultNumber(result, "par-ms");
  console.log(`vm-run under systemd: ${SEQ} sequential calls in ${seqMs} ms (${((SEQ * 1000) / seqMs).toFixed(0)}/s), ${PAR}×${PER} parallel in ${parMs} ms (${((PAR * PER * 1000) / parMs).toFixed(0)}/s)`);
});
