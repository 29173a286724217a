/**
 * vm-run under load through the generated command socket and proxy units, run by real systemd in
 * systemd-nspawn (the container of the nspawn harness, nspawn/harness.ts): SEQ calls one after the
 * other as fast as the user's shell can make them, then PAR callers at once, PER calls each; every
 * call must succeed with its own output, and the command socket must still listen afterwards. Used
 * by nspawn-load.test.ts and by the benchmark (test/bench/vmrun-systemd-bench.ts).
 *
 * Only what is not under test is swapped, by drop-ins: the VM service runs a stand-in (`sleep`) instead
 * of the launcher, and the proxy reaches a vmsilo-agent on a unix socket instead of vsock (no guest
 * is reachable by vsock here). The socket unit, the per-connection proxy unit (its user, capability,
 * sandbox) and the limits are as generated.
 *
 * Before the load, the generated proxy unit is also run as generated, on vsock, to a CID without a
 * VM (copies of it that log instead of serving a socket, and give up after 1 s): it must get as far
 * as connecting, which needs the privileged source port its capability binds; the same unit without
 * AmbientCapabilities= must fail at that bind.
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { CACHE, qemuTestConfig, readOr, testGuest, uniqueVmName } from "./support.js";
import { STAGE } from "./standins/index.js";
import { bootNspawn, nspawnPrerequisites } from "./nspawn/harness.js";

// Run by the harness after its setup (the tree installed, vmsilo.target started), with $vm, $tools,
// $seq, $par and $per set before it.
const DRIVER = String.raw`
units=/etc/systemd/system
# The swaps and the proxy's copies (see the header), then the drop-ins take effect.
for u in "vmsilo-$vm-vm.service" "vmsilo-$vm@.service"; do mkdir -p "$units/$u.d"; done
cp "$STAGE_RUN/vm-standin.conf" "$units/vmsilo-$vm-vm.service.d/vmsilo-e2e-load.conf"
cp "$STAGE_RUN/proxy-unix.conf" "$units/vmsilo-$vm@.service.d/vmsilo-e2e-load.conf"
cp "$STAGE_RUN/cap@.service" "$units/vmsilo-e2e-cap@.service"
cp "$STAGE_RUN/nocap@.service" "$units/vmsilo-e2e-nocap@.service"
systemctl daemon-reload
ms() { echo $(($(date +%s%N) / 1000000)); }
# The user's calls, without a login each: what is measured is the call.
caller() { setpriv --reuid="$(id -u "$VMSILO_USER")" --regid="$(id -g "$VMSILO_USER")" --clear-groups --reset-env "$@"; }
mkdir -p /run/vmsilo-e2e
systemd-run -q --unit=vmsilo-e2e-agent -p UMask=0000 "$tools/bin/vmsilo-agent" --listen-unix /run/vmsilo-e2e/agent.socket
until_ "test -S /run/vmsilo-e2e/agent.socket" 10
# The proxy unit as generated, on vsock: with its capability, and without.
for u in cap nocap; do
  systemctl start "vmsilo-e2e-$u@1.service"
  until_ "! systemctl is-active -q vmsilo-e2e-$u@1.service" 10
  journalctl -q --no-pager -o cat -u "vmsilo-e2e-$u@1.service" >"$R/$u.txt" 2>&1
done
# The first call starts the VM service (its stand-in); the load starts after it.
caller timeout 60 "$BIN/vm-run" "$vm" true
echo "first-status $?" >>"$R/result"

start=$(ms)
# (The user cannot write to /results: the callers report on their stdout and stderr.)
caller env VMRUN="$BIN/vm-run" VM="$vm" N="$seq" bash -c '
  fails=0
  for ((i = 0; i < N; i++)); do
    out=$("$VMRUN" "$VM" echo "$i") && [ "$out" = "$i" ] || fails=$((fails + 1))
  done
  echo "seq-fails $fails"' >>"$R/result" 2>>"$R/seq.err"
echo "seq-ms $(($(ms) - start))" >>"$R/result"
systemctl is-active -q "vmsilo-$vm.socket" && echo "socket-after-seq ok" >>"$R/result"

start=$(ms)
for ((w = 0; w < par; w++)); do
  caller env VMRUN="$BIN/vm-run" VM="$vm" N="$per" W="$w" bash -c '
    fails=0
    for ((i = 0; i < N; i++)); do
      out=$("$VMRUN" "$VM" sh -c "echo \$0-\$1" "$W" "$i") && [ "$out" = "$W-$i" ] || fails=$((fails + 1))
    done
    echo "par-fails $W $fails"' >>"$R/result" 2>>"$R/par.err" &
done
wait
echo "par-ms $(($(ms) - start))" >>"$R/result"

systemctl is-active -q "vmsilo-$vm.socket" && test -S "/run/vmsilo/$vm/command.socket" && echo "socket-after-par ok" >>"$R/result"
caller timeout 10 "$BIN/vm-run" "$vm" echo still-there >"$R/after.txt" 2>&1
echo "after-status $?" >>"$R/result"
# Every proxy ended with its call (none lingers), and none failed.
until_ "test -z \"\$(systemctl list-units --no-legend --plain 'vmsilo-$vm@*')\"" 10
echo "lingering $(systemctl list-units --no-legend --plain "vmsilo-$vm@*" | wc -l)" >>"$R/result"
echo "failed $(systemctl list-units --failed --no-legend --plain 'vmsilo-*' | wc -l)" >>"$R/result"
`;

export interface LoadResult {
  /** The driver's lines ("seq-fails 0", "par-ms 812", …). */
  result: string;
  /** What went on, for a failure message. */
  context: () => string;
  /** The journal of the generated proxy unit on vsock, with its capability and without. */
  cap: string;
  nocap: string;
}

/** Runs the load in a container; a string says why it cannot run here. */
export function loadInNspawn(o: { seq: number; par: number; per: number; timeoutS: number }): LoadResult | string {
  const missing = nspawnPrerequisites();
  if (missing) return missing;
  const g = testGuest();
  if (typeof g === "string") return g;
  const vm = uniqueVmName("load");
  const inStage = (p: string) => p.replaceAll(CACHE, `${STAGE}/cache`);
  const config = JSON.parse(inStage(JSON.stringify(qemuTestConfig(g, vm, {}))));
  const tools = config.programs.vmsiloTools as string;
  const run = bootNspawn({
    label: "load",
    config,
    driver: [`vm=${vm} tools=${tools} seq=${o.seq} par=${o.par} per=${o.per}`, DRIVER].join("\n"),
    files: (out) => {
      // The generated proxy unit, logging instead of serving a socket and giving up after 1 s.
      const proxy = readFileSync(join(out, "lib", "systemd", "system", `vmsilo-${vm}@.service`), "utf8")
        .replace(/^Standard(Input|Output)=socket$/gm, "Standard$1=null")
        .replace(/^StandardError=.*$/m, "StandardError=journal")
        .replace(/^(ExecStart=.*) --timeout \d+ /m, "$1 --timeout 1 ");
      assert.match(proxy, /^ExecStart=.* --timeout 1 --vsock \d+:5000$/m);
      assert.match(proxy, /^AmbientCapabilities=CAP_NET_BIND_SERVICE$/m);
      return {
        "cap@.service": proxy,
        "nocap@.service": proxy.replace(/^AmbientCapabilities=.*\n/m, ""),
        "vm-standin.conf": "# Not under test: a stand-in for the launcher.\n[Service]\nExecStart=\nExecStart=/bin/sleep infinity\nExecStop=\n",
        "proxy-unix.conf": `# vsock is missing here: a vmsilo-agent on a unix socket.\n[Service]\nExecStart=\nExecStart=${tools}/bin/vmsilo-vsock-proxy --timeout 30 --unix /run/vmsilo-e2e/agent.socket\n`,
      };
    },
    timeoutS: o.timeoutS,
  });
  try {
    const at = (f: string) => readOr(join(run.results, f));
    const saved = { cap: at("cap.txt"), nocap: at("nocap.txt"), seqErr: at("seq.err"), parErr: at("par.err"), harness: run.context() };
    const context = () => `${saved.harness}\n--- seq.err\n${saved.seqErr.slice(-2000)}\n--- par.err\n${saved.parErr.slice(-2000)}`;
    return { result: run.result, context, cap: saved.cap, nocap: saved.nocap };
  } finally {
    run.remove();
  }
}

/** A "key value" line's number, or NaN. */
export const resultNumber = (result: string, key: string): number => Number(new RegExp(`^${key} (\\d+)$`, "m").exec(result)?.[1]);
