/**
 * What the Wayland tests need: the security-context protocol's XML, vmsilo-wayland-seccontext built
 * by agent/Makefile as the package builds it, and the test compositor and client of this directory.
 *
 * Debian 12's wayland-protocols (1.31) predates the protocol (1.32), so unless the system's has it,
 * the XML comes from Debian 13's wayland-protocols source package, fetched once into the e2e cache.
 */
import { spawnSync } from "node:child_process";
import { copyFileSync, existsSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { ROOT } from "../support/harness.js";
import { CACHE, cached, debianSource, ensureDebs, tempDir } from "../e2e/support.js";

const XML_PATH = join("staging", "security-context", "security-context-v1.xml");
const XML_SUITE = "trixie";
/** Also in .ci/run-deps.txt. */
export const WAYLAND_DEBS = ["libwayland-dev", "libwayland-bin", "wayland-protocols", "pkgconf", "gcc", "make", "libc6-dev", "dpkg-dev"];

export interface WaylandTools {
  xml: string;
  /** bin/vmsilo-wayland-seccontext, installed by `make install-wayland` (a directory any user reads). */
  prefix: string;
  helper: string;
  /** The compositor and the client are in one directory any user reads. */
  compositor: string;
  client: string;
}

function must(cmd: string, args: string[], cwd?: string): string {
  const r = spawnSync(cmd, args, { encoding: "utf8", cwd, maxBuffer: 16 << 20 });
  if (r.error) throw r.error;
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(" ")} exited ${r.status}:\n${r.stdout}${r.stderr}`);
  return r.stdout.trim();
}

/** The protocol's XML: the system's wayland-protocols when it has it, else Debian 13's (cached). */
export function securityContextXml(): string {
  const system = join(must("pkg-config", ["--variable=pkgdatadir", "wayland-protocols"]), XML_PATH);
  if (existsSync(system)) return system;
  const dir = cached(join(CACHE, `wayland-protocols-${XML_SUITE}`), (tmp) => {
    copyFileSync(join(debianSource("wayland-protocols", XML_SUITE, tmp), XML_PATH), join(tmp, "security-context-v1.xml"));
  });
  return join(dir, "security-context-v1.xml");
}

/** Everything built, or why not (a SKIP reason). */
export function waylandTools(): WaylandTools | string {
  const missing = ensureDebs(WAYLAND_DEBS);
  if (missing !== null) return missing;
  const xml = securityContextXml();
  const dir = tempDir("wayland-tools");
  const prefix = join(dir, "out");
  must("make", ["-s", "-C", join(ROOT, "agent"), `BUILD=${join(dir, "build")}`, `SECURITY_CONTEXT_XML=${xml}`, `WAYLAND_PREFIX=${prefix}`, "install-wayland"]);
  const gen = join(dir, "gen");
  mkdirSync(gen);
  must("wayland-scanner", ["server-header", xml, join(gen, "security-context-v1-server-protocol.h")]);
  must("wayland-scanner", ["private-code", xml, join(gen, "security-context-v1-protocol.c")]);
  const warn = ["-std=c11", "-Wall", "-Wextra", "-Werror", "-Wshadow"];
  const server = must("pkg-config", ["--cflags", "--libs", "wayland-server"]).split(/\s+/).filter(Boolean);
  const client = must("pkg-config", ["--cflags", "--libs", "wayland-client"]).split(/\s+/).filter(Boolean);
  const here = join(ROOT, "test", "wayland");
  // Readable by every user (the nspawn harness runs the compositor as the VM user); dir is not.
  const bin = join(dir, "bin");
  mkdirSync(bin, { mode: 0o755 });
  const compositor = join(bin, "vmsilo-test-compositor");
  must("cc", [...warn, `-I${gen}`, "-o", compositor, join(here, "test-compositor.c"), join(gen, "security-context-v1-protocol.c"), ...server]);
  const testClient = join(bin, "vmsilo-test-wayland-client");
  must("cc", [...warn, "-o", testClient, join(here, "test-client.c"), ...client]);
  return { xml, prefix, helper: join(prefix, "bin", "vmsilo-wayland-seccontext"), compositor, client: testClient };
}
