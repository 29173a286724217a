/**
 * The vm-run programs in Nix: the package (nixos-module/pkgs/vmsilo-tools.nix) and the guest's
 * command agent (nixos-module/guest/command-agent.nix).
 *
 * Full nixpkgs is not available, so the package is called with a stand-in stdenv
 * (test/nix/nix/vmsilo-tools.nix) and its install check is run here, as a script, against the
 * programs built the way the package builds them; the agent's module is evaluated with the guest
 * options and stub pkgs (test/nix/nix/guest-agent.nix), and its units, written out as NixOS
 * would, go through `systemd-analyze verify`.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { chmodSync, cpSync, existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { ROOT, have, tempDir } from "../support/harness.js";
import { NIX_DIR, libArg, nixEval, skipWithoutLib } from "./support.js";
import { ensureDebs, skip } from "../e2e/support.js";
import { WAYLAND_DEBS, securityContextXml } from "../wayland/support.js";

const TOOLS = "/nix/store/dt9x7e2c5w3z6q8f0gr9i1d3y5k7m8n0-vmsilo-tools-0.1.0";
const PATH = "/run/wrappers/bin:/etc/profiles/per-user/user/bin:/run/current-system/sw/bin";

interface Package {
  pname: string;
  version: string;
  outputs: string[];
  makeFlags: string[];
  buildFlags: string[];
  installTargets: string[];
  installFlags: string[];
  nativeBuildInputs: string[];
  buildInputs: string[];
  strictDeps: boolean;
  enableParallelBuilding: boolean;
  doInstallCheck: boolean;
  installCheckPhase: string;
  meta: { mainProgram: string; description: string };
  linuxOnly: boolean;
  license: string;
  srcRoot: string;
  filesetRoot: string;
  sourceFiles: string[];
  outPlaceholder: string;
  waylandPlaceholder: string;
  trayPlaceholder: string;
}

function evalPackage(): Package {
  const r = nixEval(join(NIX_DIR, "vmsilo-tools.nix"), { lib: libArg() });
  assert.equal(r.status, 0, r.stderr);
  return JSON.parse(r.stdout) as Package;
}

test("vmsilo-tools: agent/'s sources only, make install PREFIX=$out with stdenv's hardening, mainProgram vm-run", (t) => {
  if (skipWithoutLib(t)) return;
  const p = evalPackage();
  assert.equal(p.pname, "vmsilo-tools");
  assert.equal(p.version, (JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")) as { version: string }).version);
  assert.equal(p.srcRoot, join(ROOT, "agent"));
  assert.equal(p.filesetRoot, join(ROOT, "agent"));
  // C sources, headers and the Makefile; not the README, objects, binaries of a local build.
  assert.deepEqual(p.sourceFiles, ["Makefile", "common.c", "common.h", "protocol.h", "vmsilo-agent.c", "vmsilo-test-accept.c"]);
  assert.deepEqual(p.makeFlags, ["CC=cc", "HARDEN_CFLAGS=", "HARDEN_LDFLAGS="]);
  // The security-context helper goes to its own output, with libwayland-client and the protocol's XML.
  // So do the tray daemons, with libsystemd's sd-bus.
  assert.deepEqual(p.outputs, ["out", "wayland", "tray"]);
  assert.deepEqual(p.buildFlags, ["all", "wayland", "tray"]);
  assert.deepEqual(p.installTargets, ["install", "install-wayland", "install-tray"]);
  assert.deepEqual(p.installFlags, [`PREFIX=${p.outPlaceholder}`, `WAYLAND_PREFIX=${p.waylandPlaceholder}`, `TRAY_PREFIX=${p.trayPlaceholder}`]);
  assert.deepEqual(p.nativeBuildInputs, ["pkg-config", "wayland-scanner"]);
  assert.deepEqual(p.buildInputs, ["wayland", "wayland-protocols", "systemd-minimal-libs"]);
  assert.equal(p.strictDeps, true);
  assert.equal(p.enableParallelBuilding, true);
  assert.equal(p.doInstallCheck, true);
  assert.equal(p.meta.mainProgram, "vm-run");
  assert.equal(p.license, "MIT");
  assert.ok(p.linuxOnly);
});

test("vmsilo-tools: every program the Makefile installs is one the package promises", () => {
  // The install target's program list and the vm-run symlink, which the install check and the
  // agent's ExecStart= rely on.
  const makefile = readFileSync(join(ROOT, "agent", "Makefile"), "utf8");
  assert.match(makefile, /^PROGRAMS = vmsilo-run vmsilo-agent vmsilo-vsock-proxy vmsilo-share-bind vmsilo-console-log vmsilo-usb-broker vmsilo-slot-use vmsilo-copy-check vmsilo-balloond$/m);
  assert.match(makefile, /ln -sf vmsilo-run \$\(DESTDIR\)\$\(PREFIX\)\/bin\/vm-run/);
  assert.match(makefile, /^WAYLAND_PROGRAMS = vmsilo-wayland-seccontext$/m);
  assert.match(makefile, /^TRAY_PROGRAMS = vmsilo-tray-guest vmsilo-tray-host$/m);
});

/** Runs the package's install check against its outputs the way stdenv would (set -eu, pipefail). */
function installCheck(phase: string, out: string, wayland: string, tray: string): { status: number | null; stderr: string } {
  const tmp = tempDir("vmsilo-tools-check");
  // The check starts an agent in the background; a failing check exits before it stops it.
  const script = `runHook() { :; }\ntrap 'kill "\${agent:-}" 2>/dev/null || true' EXIT\n${phase}`;
  const r = spawnSync("bash", ["-eu", "-o", "pipefail", "-c", script], {
    encoding: "utf8",
    cwd: tmp,
    env: { PATH: process.env.PATH ?? "/usr/bin:/bin", out, wayland, tray, TMPDIR: tmp },
    timeout: 60_000,
  });
  return { status: r.status, stderr: r.stderr };
}

test("vmsilo-tools: the install check passes for the programs built as the package builds them, and catches a wrong one", (t) => {
  if (skipWithoutLib(t)) return;
  const missing = ["make", "cc"].filter((c) => !have(c));
  if (missing.length) {
    console.log(`SKIP: ${missing.join(" and ")} not found; vmsilo-tools' install check not run`);
    t.skip(`${missing.join(" and ")} not found`);
    return;
  }
  const missingDebs = ensureDebs(WAYLAND_DEBS);
  if (missingDebs !== null) return skip(t, `${missingDebs}; vmsilo-tools' install check not run`);
  const p = evalPackage();
  const dir = tempDir("vmsilo-tools-build");
  const out = join(dir, "out");
  const wayland = join(dir, "wayland");
  const tray = join(dir, "tray");
  const flags = p.installFlags.map((f) => f.replace(p.outPlaceholder, out).replace(p.waylandPlaceholder, wayland).replace(p.trayPlaceholder, tray));
  // As stdenv runs them: the build phase with buildFlags, then the install targets.
  const make = (args: string[]) => spawnSync("make", ["-s", "-C", join(ROOT, "agent"), `BUILD=${join(dir, "build")}`, `SECURITY_CONTEXT_XML=${securityContextXml()}`, ...p.makeFlags, ...args], { encoding: "utf8" });
  for (const args of [p.buildFlags, [...p.installTargets, ...flags]]) {
    const r = make(args);
    assert.equal(r.status, 0, `make ${args.join(" ")} failed:\n${r.stdout}\n${r.stderr}`);
  }
  for (const b of ["vmsilo-run", "vm-run", "vmsilo-agent", "vmsilo-vsock-proxy", "vmsilo-share-bind", "vmsilo-console-log", "vmsilo-usb-broker", "vmsilo-slot-use", "vmsilo-copy-check", "vmsilo-balloond"]) assert.ok(existsSync(join(out, "bin", b)), `bin/${b} not installed`);
  assert.ok(existsSync(join(wayland, "bin", "vmsilo-wayland-seccontext")), "bin/vmsilo-wayland-seccontext not installed in the wayland output");
  assert.ok(!existsSync(join(out, "bin", "vmsilo-wayland-seccontext")), "vmsilo-wayland-seccontext is in out, which guests carry");
  for (const b of ["vmsilo-tray-host", "vmsilo-tray-guest"]) assert.ok(existsSync(join(tray, "bin", b)), `bin/${b} not installed in the tray output`);

  const good = installCheck(p.installCheckPhase, out, wayland, tray);
  assert.equal(good.status, 0, `the install check failed:\n${good.stderr}`);

  // A client that prints something else must fail the check.
  const broken = join(dir, "broken");
  cpSync(out, broken, { recursive: true, verbatimSymlinks: true });
  writeFileSync(join(broken, "bin", "vmsilo-run"), "#!/bin/sh\necho wrong\n");
  chmodSync(join(broken, "bin", "vmsilo-run"), 0o755);
  const bad = installCheck(p.installCheckPhase, broken, wayland, tray);
  assert.notEqual(bad.status, 0, "the install check accepted a vmsilo-run that prints the wrong thing");
  assert.match(bad.stderr, /vmsilo-run printed: wrong/);
});

interface GuestAgent {
  sockets: Record<string, Record<string, any>>;
  services: Record<string, Record<string, any>>;
  kernelModules: string[];
  vmsiloTools: string;
  user: string;
}

function evalAgent(extraModules: string[] = []): GuestAgent {
  const r = nixEval(join(NIX_DIR, "guest-agent.nix"), { lib: libArg(), extraModules: `[ ${extraModules.map((m) => `(${m})`).join(" ")} ]` });
  assert.equal(r.status, 0, r.stderr);
  return JSON.parse(r.stdout) as GuestAgent;
}

const SERVICE_CONFIG = {
  ExecStart: `"${TOOLS}/bin/vmsilo-agent" "--user" "user" "--path" "${PATH}"`,
  StandardInput: "socket",
  StandardOutput: "socket",
  StandardError: "journal",
  SyslogIdentifier: "vmsilo-agent",
  User: "root",
  TimeoutStopSec: 5,
  SystemCallFilter: ["~@module", "~@clock", "~@reboot", "~@swap", "~@raw-io", "~@obsolete"],
  SystemCallErrorNumber: "EPERM",
  CapabilityBoundingSet: "~CAP_SYS_MODULE CAP_SYS_TIME CAP_WAKE_ALARM CAP_SYS_BOOT CAP_SYS_RAWIO CAP_SYSLOG CAP_SYS_PACCT CAP_LINUX_IMMUTABLE CAP_MAC_ADMIN CAP_MAC_OVERRIDE",
};

test("the guest's command agent: vsock::5000 with Accept=yes, vmsilo-agent as root switching to user, hardened", (t) => {
  if (skipWithoutLib(t)) return;
  const a = evalAgent();
  // The agent's socket and service, and no other.
  assert.deepEqual(Object.keys(a.sockets), ["vmsilo-agent"]);
  assert.deepEqual(Object.keys(a.services), ["vmsilo-agent@"]);
  assert.deepStrictEqual(a.sockets["vmsilo-agent"], {
    description: "vmsilo command agent socket (vm-run, vsock port 5000)",
    wantedBy: ["sockets.target"],
    listenStreams: ["vsock::5000"],
    socketConfig: { Accept: true, MaxConnections: 1024 },
  });
  const service = a.services["vmsilo-agent@"]!;
  assert.deepStrictEqual(service.serviceConfig, SERVICE_CONFIG);
  assert.deepStrictEqual(service.unitConfig, { CollectMode: "inactive-or-failed" });
  // It must be able to switch users: nothing that forbids setuid/setgid or new privileges.
  for (const k of ["DynamicUser", "NoNewPrivileges", "PrivateUsers", "RestrictSUIDSGID", "ProtectSystem", "PrivateTmp"]) assert.ok(!(k in service.serviceConfig), k);
  assert.ok(!/CAP_SET[UG]ID/.test(SERVICE_CONFIG.CapabilityBoundingSet));
  assert.deepEqual(a.kernelModules, ["vmw_vsock_virtio_transport"]);
  // Without the host's package the guest takes pkgs.vmsilo-tools.
  assert.equal(a.vmsiloTools, TOOLS);
  assert.equal(a.user, "user");
});

test("the guest's command agent accepts any vsock peer port only behind cloud-hypervisor's hybrid vsock", (t) => {
  if (skipWithoutLib(t)) return;
  assert.doesNotMatch(evalAgent().services["vmsilo-agent@"]!.serviceConfig.ExecStart, /any-peer-port/);
  const a = evalAgent(["{ vmsilo.guest.hybridVsock = true; }"]);
  assert.equal(a.services["vmsilo-agent@"]!.serviceConfig.ExecStart, `${SERVICE_CONFIG.ExecStart} "--any-peer-port"`);
});

test("the guest's command agent runs the package and user it is given, quoted for systemd", (t) => {
  if (skipWithoutLib(t)) return;
  const tools = "/nix/store/00000000000000000000000000000000-tools-50%-$HOME";
  const a = evalAgent([`{ vmsilo.guest.vmsiloTools = { type = "derivation"; outPath = ${JSON.stringify(tools).replace(/\$/g, "\\$")}; name = "tools"; }; vmsilo.guest.user = "ann"; }`]);
  assert.equal(
    a.services["vmsilo-agent@"]!.serviceConfig.ExecStart,
    `"/nix/store/00000000000000000000000000000000-tools-50%%-$$HOME/bin/vmsilo-agent" "--user" "ann" "--path" "/run/wrappers/bin:/etc/profiles/per-user/ann/bin:/run/current-system/sw/bin"`,
  );
});

/** The units as NixOS writes them (one `Key=value` line per list element, booleans as true/false). */
function unitText(sections: Record<string, Record<string, unknown>>): string {
  const value = (v: unknown) => (typeof v === "boolean" ? (v ? "true" : "false") : String(v));
  return Object.entries(sections)
    .map(([name, keys]) => `[${name}]\n` + Object.entries(keys).flatMap(([k, v]) => (Array.isArray(v) ? v : [v]).map((x) => `${k}=${value(x)}\n`)).join(""))
    .join("\n");
}

test("the guest's command agent units pass systemd-analyze verify", (t) => {
  if (skipWithoutLib(t)) return;
  if (!have("systemd-analyze")) {
    console.log("SKIP: systemd-analyze not installed (apt-get install systemd)");
    t.skip("systemd-analyze not installed");
    return;
  }
  const a = evalAgent();
  const socket = a.sockets["vmsilo-agent"]!;
  const service = a.services["vmsilo-agent@"]!;
  const root = tempDir("agent-units");
  const hostUnits = ["/usr/lib/systemd/system", "/lib/systemd/system"].find((d) => existsSync(join(d, "sockets.target")));
  assert.ok(hostUnits, "systemd's own units not found");
  cpSync(hostUnits, join(root, "usr/lib/systemd/system"), { recursive: true, verbatimSymlinks: true });
  const units = join(root, "etc/systemd/system");
  mkdirSync(units, { recursive: true });
  writeFileSync(
    join(units, "vmsilo-agent.socket"),
    unitText({ Unit: { Description: socket.description }, Socket: { ListenStream: socket.listenStreams, ...socket.socketConfig }, Install: { WantedBy: socket.wantedBy } }),
  );
  writeFileSync(join(units, "vmsilo-agent@.service"), unitText({ Unit: { Description: service.description, ...service.unitConfig }, Service: service.serviceConfig }));
  const agent = join(root, TOOLS, "bin", "vmsilo-agent");
  mkdirSync(join(agent, ".."), { recursive: true });
  writeFileSync(agent, "#!/bin/sh\nexit 0\n");
  chmodSync(agent, 0o755);
  const r = spawnSync("systemd-analyze", ["verify", "--no-pager", `--root=${root}`, "--man=no", "--generators=no", "sockets.target", "vmsilo-agent.socket", "vmsilo-agent@0.service"], {
    encoding: "utf8",
    cwd: root,
    env: { ...process.env, SYSTEMD_COLORS: "0" },
  });
  assert.equal(r.stderr, "", `systemd-analyze verify reports problems:\n${r.stderr}`);
  assert.equal(r.status, 0);
});
