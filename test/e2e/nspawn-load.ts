/**
 * vm-run under load through the generated command socket and proxy units, run by real systemd in
 * systemd-nspawn (the container as in nspawn.test.ts): SEQ calls one after the other as fast as the
 * user's shell can make them, then PAR callers at once, PER calls each; every call must succeed with
 * its own output, and the command socket must still listen afterwards. Used by nspawn-load.test.ts
 * and by the benchmark (test/bench/vmrun-systemd-bench.ts).
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
import { cpSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { render, writeTree } from "../support/harness.js";
import { CACHE, NSPAWN_STAGE, nspawnBootFailure, nspawnPrerequisites, qemuTestConfig, readOr, runNspawn, testGuest, uniqueVmName, vmsiloToolsPackage } from "./support.js";

const DRIVER = String.raw`#!/bin/bash
# vmsilo load driver, run inside the container as vmsilo-e2e-load.service.
set -u
vm=$1 stage=$2 tools=$3 seq=$4 par=$5 per=$6
R=/results
run=/run/vmsilo/$vm
ms() { echo $(($(date +%s%N) / 1000000)); }
as_user() { setpriv --reuid=65534 --regid=65534 --clear-groups --reset-env "$@"; }
systemctl start vmsilo.target
mkdir -p /run/vmsilo-e2e
systemd-run -q --unit=vmsilo-e2e-agent -p UMask=0000 "$tools/bin/vmsilo-agent" --listen-unix /run/vmsilo-e2e/agent.socket
for i in $(seq 100); do [ -S /run/vmsilo-e2e/agent.socket ] && break; sleep 0.1; done
# The proxy unit as generated, on vsock: with its capability, and without.
for u in cap nocap; do
  systemctl start "vmsilo-e2e-$u@1.service"
  for i in $(seq 100); do systemctl is-active -q "vmsilo-e2e-$u@1.service" || break; sleep 0.1; done
  journalctl -q --no-pager -o cat -u "vmsilo-e2e-$u@1.service" >"$R/$u.txt" 2>&1
done
# The first call starts the VM service (its stand-in); the load starts after it.
as_user timeout 60 "$stage/out/bin/vm-run" "$vm" true
echo "first-status $?" >>"$R/result"

VMRUN="$stage/out/bin/vm-run" VM=$vm
start=$(ms)
# (The user cannot write to /results: the callers report on their stdout and stderr.)
as_user env VMRUN="$VMRUN" VM="$VM" N="$seq" bash -c '
  fails=0
  for ((i = 0; i < N; i++)); do
    out=$("$VMRUN" "$VM" echo "$i") && [ "$out" = "$i" ] || fails=$((fails + 1))
  done
  echo "seq-fails $fails"' >>"$R/result" 2>>"$R/seq.err"
echo "seq-ms $(($(ms) - start))" >>"$R/result"
systemctl is-active -q "vmsilo-$vm.socket" && echo "socket-after-seq ok" >>"$R/result"

start=$(ms)
for ((w = 0; w < par; w++)); do
  as_user env VMRUN="$VMRUN" VM="$VM" N="$per" W="$w" bash -c '
    fails=0
    for ((i = 0; i < N; i++)); do
      out=$("$VMRUN" "$VM" sh -c "echo \$0-\$1" "$W" "$i") && [ "$out" = "$W-$i" ] || fails=$((fails + 1))
    done
    echo "par-fails $W $fails"' >>"$R/result" 2>>"$R/par.err" &
done
wait
echo "par-ms $(($(ms) - start))" >>"$R/result"

systemctl is-active -q "vmsilo-$vm.socket" && test -S "$run/command.socket" && echo "socket-after-par ok" >>"$R/result"
as_user timeout 10 "$stage/out/bin/vm-run" "$vm" echo still-there >"$R/after.txt" 2>&1
echo "after-status $?" >>"$R/result"
# Every proxy ended with its call (none lingers), and none failed.
for i in $(seq 100); do [ -z "$(systemctl list-units --no-legend --plain "vmsilo-$vm@*")" ] && break; sleep 0.1; done
echo "lingering $(systemctl list-units --no-legend --plain "vmsilo-$vm@*" | wc -l)" >>"$R/result"
echo "failed $(systemctl list-units --failed --no-legend --plain 'vmsilo-*' | wc -l)" >>"$R/result"
journalctl -q --no-pager -u "vmsilo-$vm.socket" -u vmsilo-e2e-agent >"$R/journal.txt" 2>&1
echo done >>"$R/result"
systemctl poweroff --no-block
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
  const inStage = (p: string) => p.replaceAll(CACHE, NSPAWN_STAGE);
  const config = qemuTestConfig(g, vm, {});
  config.user = { name: "nobody", uid: 65534, gid: 65534, group: "nogroup", home: "/nonexistent", runtimeDir: "/run/user/65534" };
  const dir = join(CACHE, `nspawn-load-${process.pid}-${vm}`);
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  try {
    const out = join(dir, "out");
    writeTree(render(JSON.parse(inStage(JSON.stringify(config))), inStage(out)), out);
    const units = join(dir, "units");
    const results = join(dir, "results");
    const tmpfiles = join(dir, "tmpfiles");
    mkdirSync(results);
    mkdirSync(tmpfiles);
    cpSync(join(out, "lib", "systemd", "system"), units, { recursive: true });
    cpSync(join(out, "lib", "tmpfiles.d", "vmsilo.conf"), join(tmpfiles, "vmsilo.conf"));
    const tools = inStage(vmsiloToolsPackage());
    // The generated proxy unit, logging instead of serving a socket and giving up after 1 s.
    const proxy = readFileSync(join(units, `vmsilo-${vm}@.service`), "utf8")
      .replace(/^Standard(Input|Output)=socket$/gm, "Standard$1=null")
      .replace(/^StandardError=.*$/m, "StandardError=journal")
      .replace(/^(ExecStart=.*) --timeout \d+ /m, "$1 --timeout 1 ");
    assert.match(proxy, /^ExecStart=.* --timeout 1 --vsock \d+:5000$/m);
    assert.match(proxy, /^AmbientCapabilities=CAP_NET_BIND_SERVICE$/m);
    writeFileSync(join(units, "vmsilo-e2e-cap@.service"), proxy);
    writeFileSync(join(units, "vmsilo-e2e-nocap@.service"), proxy.replace(/^AmbientCapabilities=.*\n/m, ""));
    const dropIn = (unit: string, text: string) => {
      mkdirSync(join(units, `${unit}.d`));
      writeFileSync(join(units, `${unit}.d`, "load.conf"), text);
    };
    dropIn(`vmsilo-${vm}-vm.service`, "# Not under test: a stand-in for the launcher.\n[Service]\nExecStart=\nExecStart=/bin/sleep infinity\nExecStop=\n");
    dropIn(`vmsilo-${vm}@.service`, `# vsock is missing here: a vmsilo-agent on a unix socket.\n[Service]\nExecStart=\nExecStart=${tools}/bin/vmsilo-vsock-proxy --timeout 30 --unix /run/vmsilo-e2e/agent.socket\n`);
    writeFileSync(join(dir, "driver.sh"), DRIVER, { mode: 0o755 });
    writeFileSync(
      join(units, "vmsilo-e2e-load.service"),
      ["[Unit]", "Description=vmsilo load driver", "After=basic.target", "", "[Service]", "Type=oneshot", `ExecStart=${inStage(join(dir, "driver.sh"))} ${vm} ${inStage(dir)} ${tools} ${o.seq} ${o.par} ${o.per}`, "StandardOutput=journal", ""].join("\n"),
    );
    const r = runNspawn({ units, tmpfiles, results, unit: "vmsilo-e2e-load.service", timeoutS: o.timeoutS });
    const result = readOr(join(results, "result"));
    const cannot = nspawnBootFailure(r, results, result.includes("done"));
    if (cannot) return cannot;
    const saved = { cap: readOr(join(results, "cap.txt")), nocap: readOr(join(results, "nocap.txt")), seqErr: readOr(join(results, "seq.err")), parErr: readOr(join(results, "par.err")), journal: readOr(join(results, "journal.txt")) };
    const context = () =>
      `nspawn exit ${r.status}\n--- result\n${result}\n--- seq.err\n${saved.seqErr.slice(-2000)}\n--- par.err\n${saved.parErr.slice(-2000)}\n--- journal\n${saved.journal.split("\n").slice(-40).join("\n")}\n--- nspawn\n${(r.stdout + r.stderr).slice(-3000)}`;
    return { result, context, cap: saved.cap, nocap: saved.nocap };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** A "key value" line's number, or NaN. */
export const resultNumber = (result: string, key: string): number => Number(new RegExp(`^${key} (\\d+)$`, "m").exec(result)?.[1]);
