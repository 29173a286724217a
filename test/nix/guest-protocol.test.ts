/**
 * The guest side of the guest protocol, run for real: the scripts of the guest modules' early-boot
 * units (nixos-module/guest/, evaluated by test/nix/nix/guest-system.nix with this machine's
 * programs) over the kernel command lines the generator writes for examples/desktop.json. Each
 * runs as NixOS runs a unit's `script` (bash, `set -e`) in a mount and UTS namespace of its own,
 * with that command line bound over /proc/cmdline and an empty /run, so what it sets — the
 * hostname, the .link files naming interfaces by MAC, the .network files of systemd's own
 * network generator (Debian's systemd here) — is read back as the guest would have it.
 * Expectations come from the configuration, not from the command line: the test is the contract
 * between the two sides.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { chmodSync, existsSync, readFileSync, readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { buildModel } from "../../src/model/model.js";
import { validate } from "../../src/config/validate.js";
import { example, have, tempDir } from "../support/harness.js";
import { skip, vmsiloToolsPackage } from "../e2e/support.js";
import { parseSystemdExec } from "../contract/crosvm-contract.js";
import { NIX_DIR, libArg, nixEval, skipWithoutLib } from "./support.js";
import { TRAY_VSOCK_PORT } from "../../src/render/units/tray.js";

const NETWORK_GENERATOR = "/usr/lib/systemd/systemd-network-generator";

interface Unit {
  script?: string;
  path?: string[];
}

interface GuestSystem {
  services: Record<string, Unit>;
  kernelModules: { initrd: string[]; system: string[] };
}

/** The guest modules evaluated, with `guest` as the VM's guest options. */
function guestSystem(guest: Record<string, unknown> = {}): GuestSystem {
  const r = nixEval(join(NIX_DIR, "guest-system.nix"), { lib: libArg(), guest: nixValue(guest) }, { hostRoot: "/usr" });
  assert.equal(r.status, 0, r.stderr);
  return JSON.parse(r.stdout) as GuestSystem;
}

/** The guest modules' units, with `guest` as the VM's guest options. */
const guestUnits = (guest: Record<string, unknown> = {}): Record<string, Unit> => guestSystem(guest).services;

const nixValue = (v: Record<string, unknown>) => `builtins.fromJSON ${JSON.stringify(JSON.stringify(v))}`;

/** Why these tests cannot run here, or null. */
function missing(): string | null {
  if (process.getuid?.() !== 0) return "the guest scripts run in namespaces of their own: needs root";
  if (!have("unshare")) return "unshare not installed (util-linux)";
  if (!existsSync(NETWORK_GENERATOR)) return `${NETWORK_GENERATOR} missing (systemd)`;
  return null;
}

interface GuestRun {
  status: number | null;
  stdout: string;
  stderr: string;
  hostname: string;
  /** /run/systemd/network after the script: file name → contents. */
  network: Record<string, string>;
}

/** Runs a unit's script as NixOS would, with `cmdline` as /proc/cmdline and an empty /run. */
function runInGuest(unit: Unit, cmdline: readonly string[], shims?: string): GuestRun {
  assert.ok(unit.script, "the unit has no script");
  const dir = tempDir("guest-protocol");
  const script = join(dir, "script");
  writeFileSync(script, `#!/bin/bash\nset -e\n${unit.script}`);
  writeFileSync(join(dir, "cmdline"), `${cmdline.join(" ")}\n`);
  const path = [...(shims ? [shims] : []), ...(unit.path ?? []).map((p) => `${p}/bin`), "/usr/bin", "/bin"].join(":");
  const inner = `
    mount --bind "$1/cmdline" /proc/cmdline && mount -t tmpfs tmpfs /run || exit 99
    PATH="$2" bash "$1/script"; rc=$?
    hostname > "$1/hostname"
    if [ -d /run/systemd/network ]; then cp -r /run/systemd/network "$1/network"; fi
    exit $rc`;
  const r = spawnSync("unshare", ["--mount", "--uts", "--fork", "--propagation", "private", "bash", "-c", inner, "_", dir, path], { encoding: "utf8", timeout: 30000 });
  assert.notEqual(r.status, 99, `could not set up the namespace: ${r.stderr}`);
  const netDir = join(dir, "network");
  const network = existsSync(netDir) ? Object.fromEntries(readdirSync(netDir).sort().map((f) => [f, readFileSync(join(netDir, f), "utf8")])) : {};
  return { status: r.status, stdout: r.stdout, stderr: r.stderr, hostname: readFileSync(join(dir, "hostname"), "utf8").trim(), network };
}

/** The keys of an INI-style systemd file, by section: "Network.DNS" → every value, in order. */
function ini(text: string): Map<string, string[]> {
  const keys = new Map<string, string[]>();
  let section = "";
  for (const line of text.split("\n")) {
    const head = /^\[(\w+)\]$/.exec(line);
    if (head) section = head[1]!;
    const kv = /^(\w+)=(.*)$/.exec(line);
    if (kv) keys.set(`${section}.${kv[1]}`, [...(keys.get(`${section}.${kv[1]}`) ?? []), kv[2]!]);
  }
  return keys;
}

/** The desktop example's VMs: configuration and the generator's kernel command line and interfaces. */
function desktopVms() {
  const { config, issues } = validate(example("desktop"));
  assert.ok(config, JSON.stringify(issues));
  const built = buildModel(config);
  assert.ok(built.model, JSON.stringify(built.issues));
  return built.model.vms.map((vm) => ({ name: vm.name, config: vm.config, cmdline: vm.kernelParams, interfaces: vm.interfaces }));
}

test("guest protocol: each desktop VM's kernel command line gives its hostname, interface names and networks in the guest", (t) => {
  if (skipWithoutLib(t)) return;
  const why = missing();
  if (why) return skip(t, `guest protocol: ${why}`);
  const units = guestUnits();
  for (const vm of desktopVms()) {
    // The VMM boots with the generator's parameters after the image's own (console=…).
    const cmdline = ["console=ttyS0", ...vm.cmdline];

    const hostname = runInGuest(units["vmsilo-hostname"]!, cmdline);
    assert.equal(hostname.status, 0, `${vm.name}: ${hostname.stderr}`);
    assert.equal(hostname.hostname, vm.name);

    const links = runInGuest(units["vmsilo-ifnames"]!, cmdline);
    assert.equal(links.status, 0, `${vm.name}: ${links.stderr}`);
    assert.deepEqual(
      Object.keys(links.network),
      vm.interfaces.map((i) => `10-vmsilo-${i.name}.link`).sort(),
      `${vm.name}: one .link file per interface`,
    );
    for (const i of vm.interfaces) {
      const link = ini(links.network[`10-vmsilo-${i.name}.link`]!);
      assert.deepEqual(link.get("Match.PermanentMACAddress"), [i.mac], `${vm.name}/${i.name}: matched by its MAC`);
      assert.deepEqual(link.get("Link.Name"), [i.name]);
    }

    const nets = runInGuest(units["vmsilo-network-generator"]!, cmdline);
    assert.equal(nets.status, 0, `${vm.name}: ${nets.stderr}`);
    const dns = Object.values(nets.network).flatMap((text) => ini(text).get("Network.DNS") ?? []);
    assert.deepEqual(dns.sort(), [...(vm.config.network.nameservers ?? [])].sort(), `${vm.name}: nameservers`);
    for (const [name, iface] of Object.entries(vm.config.network.interfaces)) {
      const text = nets.network[`90-${name}.network`];
      assert.ok(text, `${vm.name}/${name}: no .network file (${Object.keys(nets.network).join(", ")})`);
      const net = ini(text);
      assert.deepEqual(net.get("Match.Name"), [name]);
      assert.deepEqual(net.get("Network.DHCP"), [iface.dhcp ? "ipv4" : "no"], `${vm.name}/${name}: DHCP`);
      assert.deepEqual((net.get("Address.Address") ?? []).sort(), [...iface.addresses, ...iface.v6Addresses].sort(), `${vm.name}/${name}: addresses`);
      // A default route has no Destination= line.
      const gateways = net.get("Route.Gateway") ?? [];
      const destinations = net.get("Route.Destination") ?? [];
      const routes = [...Object.entries(iface.routes), ...Object.entries(iface.v6Routes)];
      assert.deepEqual([...gateways].sort(), routes.map(([, r]) => r.via).sort(), `${vm.name}/${name}: route gateways`);
      assert.deepEqual([...destinations].sort(), routes.map(([dest]) => dest).filter((d) => d !== "0.0.0.0/0" && d !== "::/0").sort(), `${vm.name}/${name}: route destinations`);
    }
  }
});

test("guest protocol: the initrd and the system load the share drivers the mount-extra entries name (virtiofs, 9p)", (t) => {
  if (skipWithoutLib(t)) return;
  // The system's systemd-fstab-generator mounts them; the initrd has them for a systemd whose initrd does too.
  const { kernelModules } = guestSystem();
  for (const m of ["virtiofs", "9pnet_virtio", "9p"]) {
    assert.ok(kernelModules.initrd.includes(m), `initrd: ${kernelModules.initrd.join(" ")}`);
    assert.ok(kernelModules.system.includes(m), `system: ${kernelModules.system.join(" ")}`);
  }
});

test("guest protocol: bad or missing parameters are refused loudly, the rest still applied", (t) => {
  if (skipWithoutLib(t)) return;
  const why = missing();
  if (why) return skip(t, `guest protocol: ${why}`);
  const units = guestUnits();
  const before = spawnSync("hostname", { encoding: "utf8" }).stdout.trim();

  let r = runInGuest(units["vmsilo-hostname"]!, ["vmsilo.hostname=Not_A_VM"]);
  assert.equal(r.status, 1);
  assert.match(r.stderr, /vmsilo\.hostname=Not_A_VM is not a VM name/);
  assert.equal(r.hostname, before, "the hostname was changed");

  r = runInGuest(units["vmsilo-hostname"]!, ["quiet"]);
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.hostname, "work", "without vmsilo.hostname= the image's VM name");
  assert.match(r.stderr, /no vmsilo\.hostname=/);

  r = runInGuest(units["vmsilo-ifnames"]!, ["vmsilo.ifname=eth0,02:00:00:00:00:01", "vmsilo.ifname=eth1,not-a-mac", "vmsilo.ifname=bad/name,02:00:00:00:00:02"]);
  assert.equal(r.status, 1);
  assert.match(r.stderr, /ignoring malformed vmsilo\.ifname=eth1,not-a-mac/);
  assert.match(r.stderr, /ignoring malformed vmsilo\.ifname=bad\/name/);
  assert.deepEqual(Object.keys(r.network), ["10-vmsilo-eth0.link"]);

  r = runInGuest(units["vmsilo-network-generator"]!, ["quiet"]);
  assert.equal(r.status, 0, r.stderr);
  assert.deepEqual(r.network, {}, "no networking parameters, no .network file");
});

test("guest protocol: the image's root overlay is checked against vmsilo.rootOverlay=", (t) => {
  if (skipWithoutLib(t)) return;
  const why = missing();
  if (why) return skip(t, `guest protocol: ${why}`);
  for (const built of ["tmpfs", "raw"] as const) {
    const check = guestUnits({ rootOverlay: built })["vmsilo-root-overlay-check"]!;
    const other = built === "tmpfs" ? "raw,ephemeral" : "tmpfs";
    assert.equal(runInGuest(check, [`vmsilo.rootOverlay=${built === "raw" ? "raw,ephemeral" : "tmpfs"}`]).status, 0);
    assert.equal(runInGuest(check, ["quiet"]).status, 0, "no parameter, nothing to check");
    const r = runInGuest(check, [`vmsilo.rootOverlay=${other}`]);
    assert.equal(r.status, 1, `an image built for ${built} accepted ${other}`);
    assert.match(r.stderr, new RegExp(`asked for vmsilo\\.rootOverlay=${other.split(",")[0]} but this image was built for ${built}`));
  }
});

test("guest protocol: autoShutdown powers off once the guest user's processes are gone for `after` seconds", (t) => {
  if (skipWithoutLib(t)) return;
  const why = missing();
  if (why) return skip(t, `guest protocol: ${why}`);
  const unit = guestUnits()["vmsilo-auto-shutdown"]!;
  const shims = tempDir("guest-shims");
  const records = tempDir("guest-shim-records");
  // sleep: counts its calls and fails on the fourth, which ends the script's loop; ps: the
  // guest user's processes from $PS_LINES; systemctl: records its arguments (never the real one).
  const shim = (name: string, body: string) => {
    writeFileSync(join(shims, name), `#!/bin/bash\n${body}\n`);
    chmodSync(join(shims, name), 0o755);
  };
  shim("sleep", `n=$(( $(cat "${records}/sleeps") + 1 )); echo "$n" > "${records}/sleeps"; [ "$n" -lt 4 ]`);
  shim("ps", `printf '%b' "$PS_LINES"`);
  shim("systemctl", `echo "$*" >> "${records}/systemctl"`);
  const run = (cmdline: readonly string[], psLines: string) => {
    writeFileSync(join(records, "sleeps"), "0");
    writeFileSync(join(records, "systemctl"), "");
    process.env.PS_LINES = psLines;
    try {
      const r = runInGuest(unit, cmdline, shims);
      return { ...r, systemctl: readFileSync(join(records, "systemctl"), "utf8"), sleeps: Number(readFileSync(join(records, "sleeps"), "utf8")) };
    } finally {
      delete process.env.PS_LINES;
    }
  };
  const banking = desktopVms().find((vm) => vm.name === "banking")!;
  assert.ok(banking.config.autoShutdown.enable);

  let r = run(["quiet"], "");
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.sleeps, 0, "without autoShutdown.enable=1 it does nothing");
  assert.equal(r.systemctl, "");

  r = run(banking.cmdline, "systemd\n(sd-pam)\n");
  assert.match(r.stdout, new RegExp(`powering off after ${banking.config.autoShutdown.after} s`), "the generator's autoShutdown.after= is read");
  assert.equal(r.systemctl, "", "powered off before `after` seconds");

  const idleAtOnce = banking.cmdline.map((p) => (p.startsWith("autoShutdown.after=") ? "autoShutdown.after=0" : p));
  r = run(idleAtOnce, "systemd\n(sd-pam)\n");
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.systemctl, "poweroff\n", "only the user manager left: powered off");
  assert.equal(r.sleeps, 1);

  r = run(idleAtOnce, "systemd\nfirefox\n");
  assert.equal(r.systemctl, "", "powered off while the user still had a program running");
  assert.equal(r.sleeps, 4);
});

test("guest protocol: the scripts pass shellcheck as NixOS's strict shell checks would run it", (t) => {
  if (skipWithoutLib(t)) return;
  if (!have("shellcheck")) return skip(t, "shellcheck not installed");
  const units = guestUnits();
  const dir = tempDir("guest-shellcheck");
  const scripts = Object.entries(units).filter(([, u]) => u.script);
  assert.ok(scripts.length >= 5, `only ${scripts.length} scripts`);
  for (const [name, unit] of scripts) {
    const file = join(dir, name);
    writeFileSync(file, `#!/bin/bash\nset -e\n${unit.script}`);
    const r = spawnSync("shellcheck", ["--shell=bash", file], { encoding: "utf8" });
    assert.equal(r.status, 0, `${name}:\n${r.stdout}`);
  }
});

test("guest protocol: without the argument hand-over, systemd's generator would drop rd.route= outside the initrd", (t) => {
  // Why network.nix passes the options as arguments: read from /proc/cmdline by a non-initrd
  // generator, rd.* options are filtered out.
  const why = missing();
  if (why) return skip(t, `guest protocol: ${why}`);
  const direct: Unit = { script: `exec ${NETWORK_GENERATOR}` };
  const r = runInGuest(direct, ["ip=10.0.0.2:::255.255.255.0::eth0:none", "rd.route=10.1.0.0/16:10.0.0.1:eth0"]);
  assert.equal(r.status, 0, r.stderr);
  assert.equal(ini(r.network["90-eth0.network"] ?? "").get("Route.Gateway"), undefined);
});

interface GuestDisplay extends GuestSystem {
  userServices: Record<string, { description: string; wantedBy: string[]; unitConfig: Record<string, string>; serviceConfig: Record<string, unknown> }>;
  sessionVariables: Record<string, string>;
  linger: boolean;
}
const guestDisplay = (guest: Record<string, unknown>) => guestSystem(guest) as GuestDisplay;
const agentExecStart = (s: GuestSystem) => String((s.services["vmsilo-agent@"] as { serviceConfig: { ExecStart: string } }).serviceConfig.ExecStart);
/** Every program is this machine's own here (guest-system.nix: hostRoot /usr). */
const HOST = "/usr";

test("guest protocol: a GPU VM's guest user gets the Wayland display wayland-0 from wayland-proxy-virtwl, X11's :0 through its Xwayland", (t) => {
  if (skipWithoutLib(t)) return;
  const s = guestDisplay({ wayland: { enable: true } });
  assert.deepEqual(Object.keys(s.userServices), ["vmsilo-wayland-proxy"]);
  const proxy = s.userServices["vmsilo-wayland-proxy"]!;
  assert.deepStrictEqual(proxy.serviceConfig, {
    ExecStart: `"${HOST}/bin/wayland-proxy-virtwl" "--virtio-gpu" "--wayland-display" "wayland-0" "--tag" "[work] " "--x-display" "0" "--xwayland-binary" "${HOST}/bin/Xwayland"`,
    Restart: "on-failure",
    RestartSec: 1,
  });
  // The user's manager runs from boot, so the display is there before any login and for vm-run.
  assert.deepEqual(proxy.wantedBy, ["default.target"]);
  assert.deepEqual(proxy.unitConfig, { ConditionUser: "user" });
  assert.equal(s.linger, true);
  // The DRM device whose cross-domain context carries the connections.
  assert.ok(s.kernelModules.system.includes("virtio_gpu"), s.kernelModules.system.join(" "));
  // vm-run commands (the agent's --env, in name order) and login sessions get the display.
  assert.match(agentExecStart(s), / "--env" "DISPLAY=:0" "--env" "WAYLAND_DISPLAY=wayland-0" "--env" "XDG_RUNTIME_DIR=\/run\/user\/1000"$/);
  assert.deepEqual(s.sessionVariables, { DISPLAY: ":0", WAYLAND_DISPLAY: "wayland-0" });
});

test("guest protocol: sommelier serves wayland-0 as its parent instance and :0 in an X11 instance; without Xwayland, no DISPLAY", (t) => {
  if (skipWithoutLib(t)) return;
  const s = guestDisplay({ wayland: { enable: true, proxy: "sommelier" } });
  assert.deepEqual(Object.keys(s.userServices).sort(), ["vmsilo-wayland-proxy", "vmsilo-x11-proxy"]);
  assert.equal(s.userServices["vmsilo-wayland-proxy"]!.serviceConfig.ExecStart, `"${HOST}/bin/sommelier" "--parent" "--virtgpu-channel" "--socket=wayland-0"`);
  assert.equal(
    s.userServices["vmsilo-x11-proxy"]!.serviceConfig.ExecStart,
    `"${HOST}/bin/sommelier" "-X" "--x-display=0" "--no-exit-with-child" "--virtgpu-channel" "--xwayland-path=${HOST}/bin/Xwayland" "true"`,
  );
  const waylandOnly = guestDisplay({ wayland: { enable: true, proxy: "sommelier", xwayland: null } });
  assert.deepEqual(Object.keys(waylandOnly.userServices), ["vmsilo-wayland-proxy"]);
  assert.match(agentExecStart(waylandOnly), / "--env" "WAYLAND_DISPLAY=wayland-0" "--env" "XDG_RUNTIME_DIR=\/run\/user\/1000"$/);
  assert.doesNotMatch(agentExecStart(waylandOnly), /DISPLAY=:0/);
  const virtwl = guestDisplay({ wayland: { enable: true, xwayland: null } });
  assert.doesNotMatch(String(virtwl.userServices["vmsilo-wayland-proxy"]!.serviceConfig.ExecStart), /x-display|Xwayland/);
});

test("guest protocol: a VM without a Wayland GPU gets no proxy, no display variables, no linger", (t) => {
  if (skipWithoutLib(t)) return;
  const s = guestDisplay({});
  assert.deepEqual(s.userServices, {});
  assert.deepEqual(s.sessionVariables, {});
  assert.equal(s.linger, false);
  assert.doesNotMatch(agentExecStart(s), /--env/);
  assert.ok(!s.kernelModules.system.includes("virtio_gpu"));
});

test("guest protocol: a vm-run command of a GPU VM sees WAYLAND_DISPLAY, XDG_RUNTIME_DIR and DISPLAY (the agent run with the module's arguments)", (t) => {
  if (skipWithoutLib(t)) return;
  const missingTools = ["make", "cc"].filter((c) => !have(c));
  if (missingTools.length) return skip(t, `${missingTools.join(" and ")} not found: the agent is not built`);
  // The agent's command line as the guest module writes it, run here with this repository's
  // agent; --user is left out (no such user here: the command runs as this test's user).
  const [cmd] = parseSystemdExec(agentExecStart(guestDisplay({ wayland: { enable: true } })));
  const args = cmd!.argv.slice(1);
  const user = args.indexOf("--user");
  args.splice(user, 2);
  const tools = vmsiloToolsPackage();
  const dir = tempDir("guest-display");
  const sock = join(dir, "agent.sock");
  const agent = spawn(join(tools, "bin", "vmsilo-agent"), [...args, "--listen-unix", sock], { stdio: "ignore" });
  try {
    let r = spawnSync("sh", ["-c", `for i in $(seq 200); do [ -S "$1" ] && exit 0; sleep 0.05; done; exit 1`, "_", sock], { encoding: "utf8" });
    assert.equal(r.status, 0, "the agent did not listen");
    // The guest's PATH has no env here: by its path.
    r = spawnSync(join(tools, "bin", "vmsilo-run"), [sock, "/usr/bin/env"], { encoding: "utf8", timeout: 30000 });
    assert.equal(r.status, 0, String(r.stderr));
    const env = String(r.stdout).split("\n").filter(Boolean).sort();
    for (const v of ["DISPLAY=:0", "WAYLAND_DISPLAY=wayland-0", "XDG_RUNTIME_DIR=/run/user/1000"]) assert.ok(env.includes(v), `${v} not in: ${env.join(" ")}`);
  } finally {
    agent.kill();
  }
});

test("guest protocol: with tray.enable the guest user's session runs the tray daemon on the vsock port the host's tray unit connects to", (t) => {
  if (skipWithoutLib(t)) return;
  const s = guestDisplay({ tray: { enable: true, logLevel: "debug" } });
  const tray = s.userServices["vmsilo-tray"] as (GuestDisplay["userServices"][string] & { requires: string[]; after: string[] }) | undefined;
  assert.ok(tray, JSON.stringify(Object.keys(s.userServices)));
  assert.equal(tray.serviceConfig.ExecStart, `"${HOST}/bin/vmsilo-tray-guest" "--listen-vsock" "${TRAY_VSOCK_PORT}" "--log-level" "debug"`);
  assert.deepEqual(tray.wantedBy, ["default.target"]);
  assert.deepEqual([tray.requires, tray.after], [["dbus.socket"], ["dbus.socket"]]);
  assert.equal(tray.unitConfig.ConditionUser, "user");
  assert.deepEqual(tray.serviceConfig.RestrictAddressFamilies, ["AF_UNIX", "AF_VSOCK"]);
  // The user's manager, and so its session bus and the daemon, run from boot.
  assert.equal(s.linger, true);
  assert.ok(s.kernelModules.system.includes("vmw_vsock_virtio_transport"));
  // Without it, nothing of the tray is in the guest.
  assert.equal(guestDisplay({}).userServices["vmsilo-tray"], undefined);
});
