/**
 * What the tray tests need: the tray daemons and the test StatusNotifierItem built by agent/Makefile,
 * session buses of their own (Debian's dbus-daemon), busctl to look at them as a desktop would, and
 * the tray protocol's frames for the hostile-guest tests (docs/protocol.md, "The tray protocol").
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { have, tempDirRemovedAtExit } from "../support/harness.js";
import { AGENT_SRC } from "../vmrun/support.js";

/** Also in .ci/run-deps.txt. */
export const TRAY_DEBS = ["dbus-daemon", "libsystemd-dev", "pkgconf", "gcc", "make"] as const;

export function trayPrerequisites(): string | null {
  const missing = ["dbus-daemon", "busctl", "make", "pkg-config"].filter((t) => !have(t));
  if (missing.length) return `${missing.join(", ")} not found (Debian: apt-get install ${TRAY_DEBS.join(" ")})`;
  if (spawnSync("pkg-config", ["--exists", "libsystemd"]).status !== 0) return "libsystemd not found by pkg-config (Debian: apt-get install libsystemd-dev)";
  return null;
}

export interface TrayBins {
  guest: string;
  host: string;
  sni: string;
}

let built: TrayBins | undefined;
export function buildTray(): TrayBins {
  if (built) return built;
  const dir = tempDirRemovedAtExit("tray-build");
  const r = spawnSync("make", ["-s", "-C", AGENT_SRC, `BUILD=${dir}`, "tray", join(dir, "test", "vmsilo-test-sni")], { encoding: "utf8" });
  if (r.status !== 0) throw new Error(`make tray failed:\n${r.stdout}${r.stderr}`);
  return (built = { guest: join(dir, "vmsilo-tray-guest"), host: join(dir, "vmsilo-tray-host"), sni: join(dir, "test", "vmsilo-test-sni") });
}

/** A session bus of its own: dbus-daemon on a socket in dir. */
export function startBus(dir: string, name: string): { address: string; stop(): void } {
  const address = `unix:path=${join(dir, `${name}.bus`)}`;
  const r = spawnSync("dbus-daemon", ["--session", "--fork", "--nopidfile", `--address=${address}`, "--print-pid=1"], { encoding: "utf8" });
  if (r.status !== 0) throw new Error(`dbus-daemon: ${r.stderr}`);
  const pid = Number(r.stdout.trim());
  return { address, stop: () => process.kill(pid, "SIGTERM") };
}

/** A program with DBUS_SESSION_BUS_ADDRESS set to bus; its stderr collected. */
export function run(bus: string, argv: string[]): { proc: ChildProcess; stderr: () => string; exited: Promise<number | null> } {
  const proc = spawn(argv[0], argv.slice(1), { env: { ...process.env, DBUS_SESSION_BUS_ADDRESS: bus }, stdio: ["ignore", "ignore", "pipe"] });
  let err = "";
  proc.stderr!.on("data", (d) => (err += d));
  const exited = new Promise<number | null>((res) => proc.on("exit", (code) => res(code)));
  return { proc, stderr: () => err, exited };
}

/** busctl on bus, its JSON answer's data (null when the call fails). */
export function busctl(bus: string, args: string[]): any {
  const r = spawnSync("busctl", [`--address=${bus}`, "--json=short", "--", ...args], { encoding: "utf8" });
  if (r.status !== 0) return null;
  const out = r.stdout.trim();
  return out ? JSON.parse(out).data : true;
}

export const WATCHER = ["org.kde.StatusNotifierWatcher", "/StatusNotifierWatcher", "org.kde.StatusNotifierWatcher"];
export const registered = (bus: string): string[] => busctl(bus, ["get-property", ...WATCHER, "RegisteredStatusNotifierItems"]) ?? [];
export const itemProp = (bus: string, service: string, prop: string): any => busctl(bus, ["get-property", service, "/StatusNotifierItem", "org.kde.StatusNotifierItem", prop]);

/** Wait until cond() is truthy (polling every 50 ms) or throw after timeoutMs with what(). */
export async function until<T>(cond: () => T, timeoutMs: number, what: () => string): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = cond();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms: ${what()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

export const readOr = (p: string): string => {
  try {
    return readFileSync(p, "utf8");
  } catch {
    return "";
  }
};

/** Resident memory of a process (VmRSS), in KiB. */
export function rssKiB(pid: number): number {
  const m = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  return m ? Number(m[1]) : NaN;
}

// --- the wire format ---------------------------------------------------------------------------

export const PREAMBLE = Buffer.from("VMT\x01", "latin1");
export const T = { ITEM: 0x01, REMOVE: 0x02, MENU: 0x03 } as const;

export function frame(type: number, payload: Buffer): Buffer {
  const h = Buffer.alloc(5);
  h[0] = type;
  h.writeUInt32BE(payload.length, 1);
  return Buffer.concat([h, payload]);
}

const u32 = (v: number) => {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(v >>> 0);
  return b;
};
const u16 = (v: number) => {
  const b = Buffer.alloc(2);
  b.writeUInt16BE(v);
  return b;
};
export const str = (s: string | Buffer) => {
  const b = typeof s === "string" ? Buffer.from(s) : s;
  return Buffer.concat([u16(b.length), b]);
};

export interface ItemFields {
  id?: number;
  status?: number;
  category?: number;
  flags?: number;
  title?: string | Buffer;
  tooltipTitle?: string;
  tooltipText?: string;
  width?: number;
  height?: number;
  pixels?: Buffer;
}

/** An ITEM payload; pixels default to width*height opaque grey. */
export function itemPayload(f: ItemFields = {}): Buffer {
  const w = f.width ?? 0;
  const h = f.height ?? 0;
  return Buffer.concat([
    u32(f.id ?? 1),
    Buffer.from([f.status ?? 1, f.category ?? 0, f.flags ?? 0]),
    str(f.title ?? "ok"),
    str(f.tooltipTitle ?? ""),
    str(f.tooltipText ?? ""),
    u16(w),
    u16(h),
    f.pixels ?? Buffer.alloc(w * h * 4, 0x80),
  ]);
}

export interface Entry {
  id: number;
  parent?: number;
  kind?: number;
  flags?: number;
  label?: string;
}

export function menuPayload(item: number, entries: Entry[]): Buffer {
  return Buffer.concat([
    u32(item),
    u16(entries.length),
    ...entries.map((e) => Buffer.concat([u32(e.id), u16(e.parent ?? 0xffff), Buffer.from([e.kind ?? 0, e.flags ?? 3]), str(e.label ?? "x")])),
  ]);
}
