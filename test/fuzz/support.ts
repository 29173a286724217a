/**
 * The parsers' libFuzzer harnesses (agent/fuzz/, built by `make -C agent fuzz` with clang, ASan and
 * UBSan): building them, a seed corpus per harness (valid streams, so the fuzzer starts inside the
 * protocol), and one run. fuzz.test.ts runs each briefly; `npm run fuzz` (run.ts) runs each longer.
 */
import { spawnSync } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { have, tempDirRemovedAtExit } from "../support/harness.js";
import { argvPayload, frame, PREAMBLE, T } from "../vmrun/support.js";
import { AGENT_SRC } from "../vmrun/support.js";
import { PREAMBLE as TRAY_PREAMBLE, T as TRAY, frame as trayFrame, itemPayload, menuPayload } from "../tray/support.js";

export const FUZZERS = ["fuzz-agent-request", "fuzz-client-answer", "fuzz-proxy-handshake", "fuzz-tray-frame", "fuzz-json"] as const;
export type Fuzzer = (typeof FUZZERS)[number];

/** Why the harnesses cannot be built here, or null. */
export function fuzzPrerequisites(): string | null {
  const missing = ["clang", "make"].filter((t) => !have(t));
  return missing.length ? `${missing.join(" and ")} not found (Debian: apt-get install clang libclang-rt-14-dev make)` : null;
}

/** `make fuzz` into a fresh directory; the harnesses' paths. */
export function buildFuzzers(): Record<Fuzzer, string> {
  const dir = tempDirRemovedAtExit("fuzz-build");
  const r = spawnSync("make", ["-s", "-C", AGENT_SRC, `BUILD=${dir}`, "fuzz"], { encoding: "utf8" });
  if (r.status !== 0) throw new Error(`make fuzz failed (is libFuzzer's runtime, libclang-rt-14-dev, installed?):\n${r.stderr}`);
  return Object.fromEntries(FUZZERS.map((f) => [f, join(dir, "fuzz", f)])) as Record<Fuzzer, string>;
}

const exec = (argv: string[]) => frame(T.EXEC, argvPayload(argv));
const SEEDS: Record<Fuzzer, Buffer[]> = {
  // What VMMs answer vmsilo-balloond: crosvm's balloon statistics, QMP, cloud-hypervisor's vm.info.
  "fuzz-json": [
    Buffer.from('{"BalloonStats":{"stats":{"swap_in":null,"available_memory":838860800,"total_memory":1073741824},"balloon_actual":0}}'),
    Buffer.from('"Ok"'),
    Buffer.from('{"return":{"stats":{"stat-available-memory":18446744073709551615,"stat-free-memory":12},"last-update":1700000000}}'),
    Buffer.from('{"config":{"memory":{"size":536870912},"balloon":{"size":0,"deflate_on_oom":true}},"state":"Running","memory_actual_size":536870912,"x":[1,-2.5e3,"a\\u00e9\\n",[],{}]}'),
  ],
  "fuzz-agent-request": [
    Buffer.concat([PREAMBLE, exec(["printf", "%s|", "-n", "a b", ""]), frame(T.STDIN, "input"), frame(T.STDIN_EOF)]),
    Buffer.concat([PREAMBLE, exec(["true"]), frame(T.STDIN_EOF), frame(T.STDIN, "late")]),
  ],
  "fuzz-client-answer": [
    // The first byte is the harness's cut size for STDOUT payloads.
    Buffer.concat([Buffer.from([3]), PREAMBLE, frame(T.STDOUT, "a\x1b[31mred\x1b]0;t\x07\xc2\x9b2J"), frame(T.STDERR, "e\x9d1;x\x1b\\"), frame(T.EXIT, "\x00\x03")]),
    Buffer.concat([Buffer.from([0]), PREAMBLE, frame(T.ERROR, "\x02cmd: command not found\x1b")]),
  ],
  "fuzz-proxy-handshake": [Buffer.from("OK 1073741824\nVMR\x01"), Buffer.from("ERR no listener\n")],
  // The first byte picks the side: 1, the host reading the guest's frames; 0, the guest reading the host's.
  "fuzz-tray-frame": [
    Buffer.concat([
      Buffer.from([1]),
      TRAY_PREAMBLE,
      trayFrame(TRAY.ITEM, itemPayload({ title: "Mail \u00e9", tooltipText: "a\nb", width: 2, height: 2 })),
      trayFrame(TRAY.MENU, menuPayload(1, [{ id: 1, label: "Open" }, { id: 2, flags: 0x23, label: "More" }, { id: 3, parent: 1, flags: 0x17, label: "Deeper" }])),
      trayFrame(TRAY.REMOVE, Buffer.from([0, 0, 0, 1])),
    ]),
    Buffer.concat([Buffer.from([0]), TRAY_PREAMBLE, trayFrame(0x81, Buffer.alloc(12, 1)), trayFrame(0x84, Buffer.from([0, 0, 0, 1, 0, 0, 0, 3, 1])), trayFrame(0x85, Buffer.from([0, 0, 0, 1, 0, 0, 0, 3, 3]))]),
  ],
};

/** A fresh corpus directory holding the harness's seeds. */
export function seedCorpus(f: Fuzzer): string {
  const dir = tempDirRemovedAtExit(`fuzz-corpus-${f}`);
  mkdirSync(dir, { recursive: true });
  SEEDS[f].forEach((s, i) => writeFileSync(join(dir, `seed-${i}`), s));
  return dir;
}

export interface FuzzRun {
  status: number | null;
  output: string;
  /** Coverage libFuzzer reported at the end (edges), or NaN. */
  cov: number;
}

/** One libFuzzer run of harness `bin` on `corpus` with `args` (-runs=…, -max_total_time=…). */
export function runFuzzer(bin: string, corpus: string, args: string[], timeoutMs: number): FuzzRun {
  // A crashing input goes outside the checkout (libFuzzer also prints it, base64, in the output).
  const artifacts = tempDirRemovedAtExit("fuzz-artifacts");
  const r = spawnSync(bin, ["-seed=1", "-print_final_stats=1", `-artifact_prefix=${artifacts}/`, ...args, corpus], { encoding: "utf8", timeout: timeoutMs, maxBuffer: 64 << 20 });
  const output = r.stdout + r.stderr;
  const covs = [...output.matchAll(/ cov: (\d+) /g)];
  return { status: r.status, output, cov: Number(covs.at(-1)?.[1]) };
}
