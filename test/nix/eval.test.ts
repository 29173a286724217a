/**
 * The NixOS module under lib.evalModules (nixpkgs' lib, stub pkgs: test/nix/nix/) for the
 * configurations equivalent to examples/minimal.json and examples/desktop.json.
 *
 * The chain that keeps Nix and TypeScript from drifting:
 *   Nix's vmsilo.json  ==  test/nix/fixtures/<example>.json          (exactly, every field)
 *   fixture            ==  validate(examples/<example>.json) defaults (the generator's schema)
 *   render(fixture)    ==  render(examples/<example>.json)            (what the golden trees hold)
 *   vmsilo-gen validate accepts Nix's file (the real CLI, exit 0).
 * `UPDATE_NIX_FIXTURES=1` rewrites the fixtures from Nix's output.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdirSync, readdirSync, readFileSync, readlinkSync, statSync, writeFileSync } from "node:fs";
import { join, relative } from "node:path";
import { validate } from "../../src/config/validate.js";
import { isLink } from "../../src/render/files.js";
import { vmmUserName } from "../../src/model/derive.js";
import { driverFor } from "../../src/hypervisors/index.js";
import { CLI, example, EXAMPLES, render, ROOT, runCli, skipWithoutTool, tempDir } from "../support/harness.js";
import { NIX_DIR, evalModule, libArg, nixEval, skipWithoutLib, skipWithoutNix } from "./support.js";

const VMSILO_TOOLS = "/nix/store/dt9x7e2c5w3z6q8f0gr9i1d3y5k7m8n0-vmsilo-tools-0.1.0";
const fixturePath = (name: string) => join(ROOT, "test", "nix", "fixtures", `${name}.json`);
const fixture = (name: string) => JSON.parse(readFileSync(fixturePath(name), "utf8")) as Record<string, unknown>;

for (const name of EXAMPLES) {
  test(`fixture ${name}.json is examples/${name}.json with every default resolved`, () => {
    const { config, issues } = validate(example(name));
    assert.deepEqual(issues, []);
    assert.deepStrictEqual(fixture(name), JSON.parse(JSON.stringify(config)));
  });

  test(`the generator renders fixture ${name}.json exactly as examples/${name}.json`, () => {
    const a = render(fixture(name));
    const b = render(example(name));
    assert.deepEqual([...a.keys()].sort(), [...b.keys()].sort());
    assert.deepEqual([...a.entries()], [...b.entries()]);
  });

  test(`Nix writes vmsilo.json for the ${name} configuration equal to fixture ${name}.json`, (t) => {
    if (skipWithoutLib(t)) return;
    const result = evalModule(name);
    assert.deepEqual(result.failedAssertions, []);
    if (process.env.UPDATE_NIX_FIXTURES) writeFileSync(fixturePath(name), JSON.stringify(result.json, null, 2) + "\n");
    assert.deepStrictEqual(result.json, fixture(name));

    const file = join(tempDir("nix-json"), "vmsilo.json");
    writeFileSync(file, JSON.stringify(result.json));
    const r = runCli(["validate", "--config", file]);
    assert.equal(r.status, 0, `vmsilo-gen validate rejected Nix's vmsilo.json:\n${r.stderr}`);
    const rendered = runCli(["render", "--config", file, "--out", join(tempDir("nix-render"), "out"), "--dry-run"]);
    assert.equal(rendered.status, 0, rendered.stderr);
  });
}

test("the wiring puts the generated tree into systemd, tmpfiles, udev, the system path and polkit, and loads vhost_vsock", (t) => {
  if (skipWithoutLib(t)) return;
  const { wiring } = evalModule("minimal");
  const generated = "/nix/store/22222222222222222222222222222222-vmsilo-host";
  assert.deepStrictEqual(wiring, {
    systemdPackages: [generated],
    tmpfilesPackages: [generated],
    udevPackages: [generated],
    systemPackages: [generated],
    polkitRules: `${generated}/share/polkit-1/rules.d/60-vmsilo.rules`,
    polkit: true,
    kernelModules: ["vhost_vsock"],
    sysctl: {},
    systemTarget: ["multi-user.target"],
    sessionTarget: ["graphical-session.target"],
    // No qemu VM: no VMM user, and the kvm group is left alone.
    systemUsers: {},
    groups: ["users"],
  });
});

test("every qemu VM gets its own system user and group, as the generator names them, and the kvm group exists", (t) => {
  if (skipWithoutLib(t)) return;
  const { wiring, json } = evalModule("minimal", ['{ lib, ... }: { programs.vmsilo.nixosVms.work.hypervisor = lib.mkForce "qemu"; }']);
  assert.deepStrictEqual(wiring?.systemUsers, { "vmsilo-work": { group: "vmsilo-work", description: "vmsilo VMM" } });
  assert.deepEqual(wiring?.groups, ["kvm", "users", "vmsilo-work"]);
  // The unit runs qemu as the user the module declares.
  const unit = [...render(json!).values()].find((f) => f.path.endsWith("/vmsilo-work-vm.service"));
  assert.match(unit && !isLink(unit) ? unit.content : "", /^User=vmsilo-work$/m);
  // Both sides name long VM names alike.
  const names = ["work", "a".repeat(24), "b".repeat(25), "long-vm-name-of-exactly-32-chars", "x-y-z-0123456789-abcdef"];
  const file = join(tempDir("vmm-users"), "names.json");
  writeFileSync(file, JSON.stringify(names));
  const r = nixEval(join(NIX_DIR, "vmm-user.nix"), { lib: libArg() }, { namesFile: file });
  assert.equal(r.status, 0, r.stderr);
  assert.deepEqual(JSON.parse(r.stdout), names.map(vmmUserName));
  assert.ok(names.map(vmmUserName).every((n) => n.length <= 31));
});

test("hypervisors.nix and the generator's drivers agree on which VMMs run without root", (t) => {
  if (skipWithoutNix(t)) return;
  const r = spawnSync("nix-instantiate", ["--eval", "--strict", "--json", "-E", `builtins.mapAttrs (_: h: h.unprivilegedVmm or false) (import ${join(ROOT, "nixos-module/hypervisors.nix")})`], { encoding: "utf8" });
  assert.equal(r.status, 0, r.stderr);
  const hypervisors = ["crosvm", "cloud-hypervisor", "qemu"] as const;
  assert.deepEqual(JSON.parse(r.stdout), Object.fromEntries(hypervisors.map((h) => [h, driverFor(h).unprivileged === true])));
});

test("generate.nix's build script, run as the build would run it, renders the module's vmsilo.json into $out", (t) => {
  if (skipWithoutLib(t)) return;
  const { generate, json } = evalModule("desktop");
  assert.ok(generate && json);
  // vmsilo-gen comes from the package alone: a stand-in of it runs this checkout's CLI.
  assert.deepEqual(generate.nativeBuildInputs, ["/nix/store/11111111111111111111111111111111-vmsilo-0.1.0"]);
  const dir = tempDir("generate-nix");
  const bin = join(dir, "bin");
  mkdirSync(bin);
  writeFileSync(join(bin, "vmsilo-gen"), `#!/bin/sh\nexec ${JSON.stringify(process.execPath)} ${JSON.stringify(CLI)} "$@"\n`, { mode: 0o755 });
  // The store file the script names holds the text Nix writes into it.
  const configFile = join(dir, "vmsilo.json");
  writeFileSync(configFile, generate.configText);
  assert.deepEqual(JSON.parse(generate.configText), json);
  const out = join(dir, "out");
  mkdirSync(join(dir, "tmp"));
  const r = spawnSync("bash", ["-euo", "pipefail", "-c", generate.script.replaceAll(generate.configFile, configFile)], {
    encoding: "utf8",
    env: { PATH: `${bin}:/usr/bin:/bin`, out, TMPDIR: join(dir, "tmp") },
  });
  assert.equal(r.status, 0, r.stderr);
  assert.deepEqual(readdirSync(join(dir, "tmp")), [], "the build left files in TMPDIR");
  // $out is the tree rendered for $out, file for file.
  const expected = [...render(json, out).values()];
  const written = readdirSync(out, { recursive: true, withFileTypes: true }).filter((e) => !e.isDirectory()).map((e) => relative(out, join(e.parentPath, e.name))).sort();
  assert.deepEqual(written, expected.map((f) => f.path).sort());
  for (const f of expected) {
    const path = join(out, f.path);
    if (isLink(f)) assert.equal(readlinkSync(path), f.link, f.path);
    else {
      assert.equal(readFileSync(path, "utf8"), f.content, f.path);
      assert.equal(statSync(path).mode & 0o777, f.mode, `${f.path}: mode`);
    }
  }
});

test("build.graph's script, run as the build would run it, writes the configuration's DOT and SVG", (t) => {
  if (skipWithoutLib(t) || skipWithoutTool(t, "dot", "graphviz")) return;
  const { graph, generate } = evalModule("desktop");
  assert.ok(graph && generate);
  assert.deepEqual(graph.nativeBuildInputs, ["/nix/store/11111111111111111111111111111111-vmsilo-0.1.0", "/nix/store/fg9b7e2c5w3z6q8f0gr9i1d3y5k7m8n0-graphviz-12.2.1"]);
  const dir = tempDir("graph-nix");
  const bin = join(dir, "bin");
  mkdirSync(bin);
  writeFileSync(join(bin, "vmsilo-gen"), `#!/bin/sh\nexec ${JSON.stringify(process.execPath)} ${JSON.stringify(CLI)} "$@"\n`, { mode: 0o755 });
  const configFile = join(dir, "vmsilo.json");
  writeFileSync(configFile, generate.configText);
  const out = join(dir, "out");
  const r = spawnSync("bash", ["-euo", "pipefail", "-c", graph.script.replaceAll(generate.configFile, configFile)], { encoding: "utf8", env: { PATH: `${bin}:/usr/bin:/bin`, out } });
  assert.equal(r.status, 0, r.stderr);
  assert.deepEqual(readdirSync(out).sort(), ["vmsilo.dot", "vmsilo.svg"]);
  assert.equal(readFileSync(join(out, "vmsilo.dot"), "utf8"), runCli(["graph", "--config", configFile]).stdout);
  assert.match(readFileSync(join(out, "vmsilo.svg"), "utf8"), /<title>vm:work<\/title>/);
});

test("a disabled module sets nothing and asserts nothing", (t) => {
  if (skipWithoutLib(t)) return;
  const r = evalModule("minimal", ["{ lib, ... }: { programs.vmsilo.enable = lib.mkForce false; users.users = lib.mkForce { }; }"]);
  assert.deepEqual(r.failedAssertions, []);
  assert.deepStrictEqual(r.wiring, {
    systemdPackages: [],
    tmpfilesPackages: [],
    udevPackages: [],
    systemPackages: [],
    polkitRules: null,
    polkit: false,
    kernelModules: [],
    sysctl: {},
    systemTarget: null,
    sessionTarget: null,
    systemUsers: {},
    groups: ["users"],
  });
});

test("programs the VMs do not use are not written (and so never built)", (t) => {
  if (skipWithoutLib(t)) return;
  const { json } = evalModule("minimal");
  const programs = (json as { programs: Record<string, unknown> }).programs;
  for (const p of ["virtiofsd", "iproute2", "vhostDeviceSound", "waylandSeccontext", "vulkanLoader"]) assert.equal(programs[p], null, p);
  assert.equal(programs.vmsiloTools, VMSILO_TOOLS);
});

test("packages.vmsiloTools is always written, even without VMs, and is the package configured", (t) => {
  if (skipWithoutLib(t)) return;
  const programs = (m: string) => (evalModule("minimal", [m]).json as { programs: Record<string, unknown> }).programs;
  // Every VM has a command channel, so the vm-run programs do not depend on what the VMs use.
  const none = programs(`{ lib, ... }: { programs.vmsilo.nixosVms = lib.mkForce { }; }`);
  assert.equal(none.vmsiloTools, VMSILO_TOOLS);
  assert.equal(none.crosvm, null);
  const own = programs(`{ pkgs, ... }: { programs.vmsilo.packages.vmsiloTools = pkgs.socat; }`);
  assert.equal(own.vmsiloTools, "/nix/store/3cz0gcrc4xks9r1jycm3ypxjqh8qz9j8-socat-1.8.0.3");
});

test("gpu = true evaluates with no package set: the helper is the wayland output of packages.vmsiloTools", (t) => {
  if (skipWithoutLib(t)) return;
  const r = evalModule("minimal", [`{ ... }: { programs.vmsilo.nixosVms.work.gpu = true; }`]);
  assert.deepEqual(r.failedAssertions, []);
  const programs = (r.json as { programs: Record<string, unknown> }).programs;
  assert.equal(programs.waylandSeccontext, "/nix/store/br6t4b9z2s0w3m5c7do6f8a0v2h4j5k7-vmsilo-wayland-seccontext-0.1.0");
  assert.equal(programs.vmsiloTools, VMSILO_TOOLS);
});

test("without the overlay, packages.vmsiloTools is pkgs/vmsilo-tools.nix built with the host's pkgs", (t) => {
  if (skipWithoutLib(t)) return;
  // Stub pkgs without vmsilo-tools, whose callPackage names the file it was given.
  const m = `{ lib, ... }: let stubs = import ${JSON.stringify(join(NIX_DIR, "stubs.nix"))}; in {
    _module.args.pkgs = lib.mkForce (removeAttrs stubs.pkgs [ "vmsilo-tools" ] // {
      callPackage = file: args: { type = "derivation"; name = "called"; outPath = "callPackage:\${toString file}"; };
    });
  }`;
  const json = evalModule("minimal", [m]).json as { programs: Record<string, unknown> };
  assert.equal(json.programs.vmsiloTools, `callPackage:${join(ROOT, "nixos-module", "pkgs", "vmsilo-tools.nix")}`);
});

test("a VM with its own kernel, initramfs and root is not built and gets no init=", (t) => {
  if (skipWithoutLib(t)) return;
  const own = `{ ... }: { programs.vmsilo.nixosVms.work = {
    kernel = "/srv/vm/bzImage"; initramfs = "/srv/vm/initrd";
    rootDisk = { path = "/srv/vm/root.img"; ro = false; id = "root"; options.block-size = 4096; };
  }; programs.vmsilo.guestBuilder = { name, ... }: throw "the guest of \${name} was built"; }`;
  const vm = (evalModule("minimal", [own]).json as { nixosVms: Record<string, Record<string, unknown>> }).nixosVms.work!;
  assert.equal(vm.kernel, "/srv/vm/bzImage");
  assert.equal(vm.initramfs, "/srv/vm/initrd");
  assert.equal(vm.init, null);
  assert.deepEqual(vm.rootDisk, { path: "/srv/vm/root.img", ro: false, id: "root", options: { "block-size": 4096 }, format: "raw", createSize: null });
});

test("the built guest's kernel parameters come first, the VM's last; rootDiskReadonly reaches the root disk", (t) => {
  if (skipWithoutLib(t)) return;
  const m = `{ lib, ... }: {
    programs.vmsilo.guestBuilder = lib.mkForce ({ name, ... }: { kernel = "/k"; initrd = "/i"; rootImage = "/r"; init = "/s/init"; kernelParams = [ "console=hvc0" ]; });
    programs.vmsilo.nixosVms.work = { kernelParams = [ "quiet" ]; rootDiskReadonly = false; };
  }`;
  const vm = (evalModule("minimal", [m]).json as { nixosVms: Record<string, Record<string, unknown>> }).nixosVms.work!;
  assert.deepEqual(vm.kernelParams, ["console=hvc0", "quiet"]);
  assert.deepEqual(vm.rootDisk, { path: "/r", ro: false, id: null, options: {}, format: "raw", createSize: null });
  assert.equal(vm.init, "/s/init");
});

test("guestConfig takes a module or a list of modules", (t) => {
  if (skipWithoutLib(t)) return;
  // The stub builder hands back what it was given, so the merged module can be inspected.
  const m = (value: string) => `{ lib, ... }: {
    programs.vmsilo.guestBuilder = lib.mkForce ({ name, vm, ... }: { kernel = "/k"; initrd = "/i"; rootImage = "/r"; init = "/s/init";
      kernelParams = [ (if builtins.isAttrs vm.guestConfig || builtins.isFunction vm.guestConfig then "module" else "other") ]; });
    programs.vmsilo.nixosVms.work.guestConfig = ${value};
  }`;
  for (const value of ["{ services.openssh.enable = true; }", "[ { a = 1; } ({ ... }: { }) ]"]) {
    const vm = (evalModule("minimal", [m(value)]).json as { nixosVms: Record<string, Record<string, unknown>> }).nixosVms.work!;
    assert.deepEqual(vm.kernelParams, ["module"], value);
  }
});

test("the default guest builder (rootfs/) builds the VM's guest and serialise writes its paths", (t) => {
  if (skipWithoutLib(t)) return;
  // No guestBuilder stub: rootfs/default.nix runs, with test/nix/nix/fake-nixpkgs standing in
  // for nixpkgs' eval-config.nix. The guest's settings come from the VM's options.
  const m = `{ lib, pkgs, ... }: {
    programs.vmsilo.guestBuilder = lib.mkForce (import ${JSON.stringify(join(ROOT, "nixos-module", "rootfs"))} { inherit lib pkgs; });
    programs.vmsilo.nixosVms.work = {
      rootOverlay.type = "raw"; sharedHome = true; sound.capture = true; kernelParams = [ "quiet" ];
      guestPrograms = [ pkgs.socat ];
      guestConfig = { services.openssh.enable = true; };
    };
  }`;
  const r = evalModule("minimal", [m]);
  assert.deepEqual(r.failedAssertions, []);
  const vm = (r.json as { nixosVms: Record<string, Record<string, unknown>> }).nixosVms.work!;
  const rootfs = "/nix/store/22222222222222222222222222222222-vmsilo-rootfs-work";
  assert.equal(vm.kernel, `${rootfs}/bzImage`);
  assert.equal(vm.initramfs, `${rootfs}/initrd`);
  assert.deepEqual(vm.rootDisk, { path: `${rootfs}/nixos.erofs`, ro: true, id: null, options: {}, format: "raw", createSize: null });
  assert.equal(vm.init, "/nix/store/00000000000000000000000000000000-nixos-system/init");
  assert.deepEqual(vm.kernelParams, ["console=hvc0", "net.ifnames=0", "quiet"]);

  // What rootfs/ asked NixOS to evaluate.
  const probe = `let
    lib = ${libArg()};
    stubs = import ${JSON.stringify(join(NIX_DIR, "stubs.nix"))};
    guest = import ${JSON.stringify(join(ROOT, "nixos-module", "rootfs"))} { inherit lib; pkgs = stubs.pkgs; } {
      name = "work";
      vm = { hypervisor = "cloud-hypervisor"; network.isNetvm = true; rootOverlay.type = "raw"; sharedHome = "/srv/home"; sound = { playback = false; capture = true; }; tray.enable = true; gpu = { wayland = true; }; waylandProxy = "sommelier"; guestPrograms = [ stubs.pkgs.socat ]; guestConfig = { marker = true; }; };
      cfg = { packages.vmsiloTools = stubs.pkgs.coreutils; packages.vmsiloTray = stubs.pkgs.vmsilo-tools.tray; vmsilo-tray.logLevel = "debug"; };
    };
    modules = guest.nixos.args.modules;
    settings = builtins.elemAt modules 1;
  in {
    system = guest.nixos.args.system;
    guestModules = toString (builtins.elemAt modules 0);
    vmsilo = settings.vmsilo.guest // { tray = settings.vmsilo.guest.tray // { package = toString settings.vmsilo.guest.tray.package; }; };
    packages = map toString settings.environment.systemPackages;
    guestConfig = builtins.elemAt modules 2;
    pkgsIsHost = settings.nixpkgs.pkgs.content == stubs.pkgs;
  }`;
  const file = join(tempDir("rootfs"), "probe.nix");
  writeFileSync(file, probe);
  const p = nixEval(file);
  assert.equal(p.status, 0, p.stderr);
  assert.deepStrictEqual(JSON.parse(p.stdout), {
    system: null,
    guestModules: join(ROOT, "nixos-module", "guest"),
    // The host's vm-run programs become the guest's agent; behind cloud-hypervisor's hybrid vsock it
    // accepts any peer port.
    vmsilo: { name: "work", rootOverlay: "raw", sharedHome: true, hybridVsock: true, netvm: true, sound: { playback: false, capture: true }, tray: { enable: true, logLevel: "debug", package: "/nix/store/8t4r2a7y1n3s5v9b0c6d2e4f1g3h5j7k-vmsilo-tools-0.1.0-tray" }, wayland: { enable: true, proxy: "sommelier" }, vmsiloTools: "/nix/store/1f4m7i0c5h3dg2yqvbqvnxhy04d8v5bx-coreutils-9.8" },
    packages: ["/nix/store/3cz0gcrc4xks9r1jycm3ypxjqh8qz9j8-socat-1.8.0.3"],
    guestConfig: { marker: true },
    pkgsIsHost: true,
  });
});

test("every option default equals the schema's default (each nested kind given only what it requires)", (t) => {
  if (skipWithoutLib(t)) return;
  // The same VM twice: as NixOS options and as vmsilo.json, each with only the required fields;
  // Nix's defaults must be what the generator fills in.
  const nix = `{ ... }: {
    programs.vmsilo.nixosVms.work = {
      gpu = { };
      sharedDirectories.data.path = "/srv/data";
      additionalDisks = [ { path = "/srv/disk.img"; } ];
      pciDevices = [ { path = "01:00.0"; } ];
      vhostUser = [ { type = "net"; socket = "/run/net.sock"; } ];
      network.interfaces.eth0 = { routes."0.0.0.0/0".via = "10.0.0.1"; v6Routes."::/0".via = "fd00::1"; };
    };
  }`;
  const json = evalModule("minimal", [nix]).json as Record<string, any>;
  const given = structuredClone(example("minimal")) as Record<string, any>;
  Object.assign(given.programs, { virtiofsd: json.programs.virtiofsd, iproute2: json.programs.iproute2, waylandSeccontext: json.programs.waylandSeccontext, vulkanLoader: json.programs.vulkanLoader });
  Object.assign(given.nixosVms.work, {
    gpu: {},
    sharedDirectories: { data: { path: "/srv/data" } },
    additionalDisks: [{ path: "/srv/disk.img" }],
    pciDevices: [{ path: "01:00.0" }],
    vhostUser: [{ type: "net", socket: "/run/net.sock" }],
    network: { interfaces: { eth0: { routes: { "0.0.0.0/0": { via: "10.0.0.1" } }, v6Routes: { "::/0": { via: "fd00::1" } } } } },
  });
  const { config, issues } = validate(given);
  assert.deepEqual(issues, []);
  assert.deepStrictEqual(json, JSON.parse(JSON.stringify(config)));
});

test("the option documentation renders, and each option says what it produces and who honours it", (t) => {
  if (skipWithoutLib(t)) return;
  const r = nixEval(join(NIX_DIR, "option-docs.nix"), { lib: libArg() });
  assert.equal(r.status, 0, r.stderr);
  const docs = Object.entries(JSON.parse(r.stdout) as Record<string, { description: string }>).map(([name, o]) => ({ name, ...o }));
  // Results, containers, names checked through read-only fields, packages and Nix-only inputs
  // say what they are instead.
  const exempt = /^programs\.vmsilo\.(build\.|enable$|package$|packages\.|nixosVms$|nixosVms\.<name>\.(name|guestPrograms|guestConfig|waylandProxy|template|network\.isNetvm)$|templates(\.<name>\.(guestPrograms|guestConfig|waylandProxy))?$|nixosVms\.<name>\.sharedDirectories\.<name>\.tag$|nixosVms\.<name>\.network\.interfaces\.<name>\.(name|routes\.<name>\.destination|v6Routes\.<name>\.destination)$)/;
  const missing = docs.filter((o) => !exempt.test(o.name) && !(o.description.includes("Produces:") && /Honoured by: (?:cloud-hypervisor|crosvm|qemu)(?:, (?:cloud-hypervisor|crosvm|qemu))*\.$/m.test(o.description)));
  assert.deepEqual(missing.map((o) => o.name), []);
  assert.ok(docs.length >= 100, `only ${docs.length} options documented`);
  assert.ok(!docs.some((o) => o.name.includes(".internal.") || o.name.endsWith("guestBuilder")), "internal options are hidden");
});
