/** What the balloon end-to-end test and benchmark share: TCG guests with balloons, booted by the generated launchers, and the daemon run on their manifest. */
import { mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { ConsoleCapture, Proc, cleanRuntime, freshRuntime, qemuTestConfig, renderTree, runLauncher, tempDir, testGuest, vmsiloToolsPackage, waitFor } from "./support.js";

/** How long a balloon may take to follow a change (docs/balloon.md: two polls, then the balloon's own pace). */
export const BALLOON_REACTION_S = 10;
export const rssKiB = (pid: number) => Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1] ?? NaN);

export const BALLOON_TEST_SETTINGS = { logLevel: "debug", pollInterval: "1s", minPollInterval: "250ms", criticalHostPercent: 1, criticalGuestAvailable: "24M", guestAvailableBias: "48M", psiCeiling: 20 };

/** Three TCG guests with balloons (the last one loads `load` MiB `loadAfter` s after it is ready). */
export function balloonConfig(g: Exclude<ReturnType<typeof testGuest>, string>, names: string[], load: { mib: number; after: number } | null): Record<string, any> {
  const one = (name: string, i: number) =>
    (qemuTestConfig(g, name, {
      memory: 256,
      balloon: { minMemory: 64 },
      kernelParams: ["console=ttyS0", "quiet", ...(load && i === names.length - 1 ? [`vmsilo.test.memload=${load.mib},${load.after}`] : [])],
    }) as Record<string, any>);
  const configs = names.map(one);
  return { ...configs[0], balloond: { ...BALLOON_TEST_SETTINGS, extraArgs: [] }, nixosVms: Object.assign({}, ...configs.map((c) => c.nixosVms)) };
}

export interface BootedGuests {
  out: string;
  consoles: ConsoleCapture[];
  stop(): Promise<void>;
}

/** Boot every VM of `config` with its generated launcher; resolves once each guest is ready. */
export async function bootGuests(config: Record<string, any>, label: string): Promise<BootedGuests> {
  const names = Object.keys(config.nixosVms);
  const out = renderTree(config, label);
  const dir = tempDir(label);
  const consoles: ConsoleCapture[] = [];
  const launchers: Proc[] = [];
  const stop = async () => {
    for (const l of launchers) await l.stop();
    for (const c of consoles) await c.stop();
    for (const n of names) cleanRuntime(n);
  };
  try {
    for (const n of names) {
      freshRuntime(n);
      mkdirSync(join(dir, n));
      consoles.push(await new ConsoleCapture(`/run/vmsilo/${n}/console-backend.socket`, join(dir, n)).ready());
      launchers.push(runLauncher(out, n, 600));
    }
    await waitFor("every guest to be ready", () => {
      for (const l of launchers) if (!l.running) throw new Error(`a launcher exited: ${l.err}`);
      return consoles.every((c) => c.text().includes("VMSILO-TEST ready"));
    }, 90000);
  } catch (e) {
    const consoleTail = consoles.map((c, i) => `--- ${names[i]}\n${c.text().slice(-1500)}`).join("\n");
    const errs = launchers.map((l) => l.err.slice(-1500)).join("\n");
    await stop();
    throw new Error(`${(e as Error).message}\n${consoleTail}\n${errs}`);
  }
  return { out, consoles, stop };
}

/** The daemon, from the tree's unit's own options (the manifest it reads), plus `extra`. */
export function startDaemon(out: string, config: Record<string, any>, extra: string[]): Proc {
  const b = config.balloond;
  return new Proc([
    join(vmsiloToolsPackage(), "bin", "vmsilo-balloond"),
    "--manifest", join(out, "share", "vmsilo", "manifest.json"),
    "--log-level", b.logLevel, "--poll-interval", b.pollInterval, "--min-poll-interval", b.minPollInterval,
    "--critical-host-percent", String(b.criticalHostPercent), "--critical-guest-available", b.criticalGuestAvailable,
    "--guest-available-bias", b.guestAvailableBias, "--psi-ceiling", String(b.psiCeiling), ...extra,
  ]);
}


/** Stand-in PSI files: a calm host, and one in critical pressure. */
export const CALM = "some avg10=0.00 avg60=0.00 avg300=0.00 total=0\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=0\n";
export const CRITICAL = "some avg10=60.00 avg60=30.00 avg300=10.00 total=9000000\nfull avg10=40.00 avg60=20.00 avg300=5.00 total=6000000\n";
