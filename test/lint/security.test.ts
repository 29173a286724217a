/**
 * Lint layer (D15): `systemd-analyze security --offline=yes` scores every generated service of both
 * examples; each unit kind is held to a target, and docs/security.md is the table of what the tool
 * reports. `UPDATE_DOCS=1 node --test dist/test/lint/security.test.js` rewrites the document.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { resolve } from "../../src/generate.js";
import { EXAMPLES, ROOT, example, skipWithoutTool, render } from "../support/harness.js";
import { type StubRoot, buildStubRoot, userManagerEnv } from "./stub-root.js";

const KINDS = ["prep", "vm-crosvm", "vm-cloud-hypervisor", "vm-qemu", "console-relay", "virtiofsd", "proxy", "shared-home", "sound", "wayland-seccontext", "gpu", "session-bind", "tray", "uplink", "firewall", "vfio-bind", "balloond", "usb-broker"] as const;
type Kind = (typeof KINDS)[number];

/**
 * Per kind: the highest exposure allowed (the score when this was written, plus about 0.3), and why
 * it is not lower. Tighten a target when hardening improves; never raise one without a reason here.
 * Every helper (all but the VM services and the user manager's session binding) stays at or below
 * HELPER_LIMIT.
 */
const HELPER_LIMIT = 3.0;
const KIND: Record<Kind, { scope: "system" | "user"; target: number; note: string }> = {
  uplink: {
    scope: "system",
    target: 2.2,
    note: "Root oneshot creating and removing a netvm link's bridge with `ip`: CAP_NET_ADMIN alone, netlink and unix sockets only, in the host's network namespace (the bridge is made there); everything else is off.",
  },
  firewall: {
    scope: "system",
    target: 2.2,
    note: "Root oneshot loading and removing the host's `inet vmsilo` nftables table with `nft`: CAP_NET_ADMIN alone, netlink and unix sockets only, in the host's network namespace; everything else is off.",
  },
  "vfio-bind": {
    scope: "system",
    target: 3.0,
    note: "Root oneshot writing the PCI driver files of /sys to move isolatedPciDevices to vfio-pci: /sys must stay writable (no ProtectKernelTunables=, no PrivateDevices= so the devices stay visible), as root, which owns those files, with no capability at all, a private network and a system call filter.",
  },
  balloond: {
    scope: "system",
    target: 1.2,
    note: "vmsilo-balloond, the host's one balloon daemon, as root: it only connects to the VMMs' control sockets (crosvm's and cloud-hypervisor's are root's, which it reaches as their owner) and reads /proc/meminfo, /proc/pressure/memory and the manifest; no network, nothing writable, unix sockets only, a private user namespace and no capability; when a qemu VM has a balloon, CAP_DAC_OVERRIDE alone (and no user namespace, which would void it), to connect to QMP sockets in directories only each VM's own user may enter.",
  },
  prep: {
    scope: "system",
    target: 1.0,
    note: "Root oneshot that creates the VM's root-owned runtime directories, as root because root owns /run/vmsilo/<vm>. It holds no capability and changes no owner: the directories of backends that run as the user are those units' own RuntimeDirectory=, made by systemd. Everything else is off.",
  },
  "vm-crosvm": {
    scope: "system",
    target: 8.7,
    note: "Runs the launcher and crosvm as root: creates and removes taps (CAP_NET_ADMIN), opens /dev/kvm, vhost and VFIO devices, hugepages and core scheduling, and creates the raw overlay disk. crosvm then sandboxes every device in its own minijail (user, mount, pid, net namespaces, pivot_root, seccomp), which needs root's capabilities and namespaces, so the unit cannot restrict them; the score does not see crosvm's own jails.",
  },
  "vm-cloud-hypervisor": {
    scope: "system",
    target: 8.7,
    note: "Runs the launcher, cloud-hypervisor and ch-remote as root (Type=notify): cloud-hypervisor opens taps, /dev/kvm, vhost and VFIO devices itself and applies its own seccomp filter per thread; the unit keeps root's capabilities for that, which is what the score counts.",
  },
  "vm-qemu": {
    scope: "system",
    target: 3.6,
    note: "qemu runs as the VM's own system user (vmsilo-<vm>, with the kvm group) without a single capability (empty bounding set, no new privileges) on a read-only file system where only its sockets' directory and its overlay disk's directory (both its user's), its writable disks and writable 9p shares can be written, under its own seccomp filter (`-sandbox on`, denying obsolete calls, privilege changes, spawning and resource control): it opens only what it was handed (its taps, disks and VFIO devices, given to its user by root before it starts; virtiofsd's and the console relay's sockets through its group), cannot create device nodes or change owners through a 9p share, and cannot touch the desktop user's files or other VMs' disks. Only the preparation and clean-up steps (`+`: taps, disk checks and hand-over) keep root's privileges. What remains: it needs /dev (KVM, tap, vhost, VFIO), the host network namespace for its taps, and it can read what any user can read by mode.",
  },
  "console-relay": {
    scope: "system",
    target: 1.5,
    note: "socat as root, so the PTY it creates can be handed to the user (CAP_CHOWN, CAP_FOWNER, and chown(2) let through the system call filter; the PTY is on devpts and its link in the root-owned VM directory, so no path of the user's is followed); devices limited to /dev/ptmx and PTYs.",
  },
  virtiofsd: {
    scope: "system",
    target: 3.0,
    note: "virtiofsd sandboxes itself (new user, mount, pid and net namespaces, pivot_root into the shared directory, its own seccomp filter) and must act as any guest uid on the shared files: it keeps CAP_SYS_ADMIN, CAP_SETUID/SETGID, CAP_DAC_*, CAP_CHOWN/FOWNER/FSETID and CAP_MKNOD, and may create namespaces and mount; so the mount calls and seccomp pass the system call filter, and there is no PrivateDevices= (it would take CAP_MKNOD away and virtiofsd's capset would fail) but DevicePolicy=closed. It never opens the share by the user's path: vmsilo-share-bind opens the directory without following links and binds it at a root-only mount point in the unit's private mount namespace, which is all virtiofsd serves.",
  },
  proxy: {
    scope: "system",
    target: 1.7,
    note: "Per-connection vmsilo-vsock-proxy as the user (instance `@1` scored) of the command socket and, with ssh configured, the ssh socket; it needs AF_VSOCK to reach the guest agent or sshd, so the network cannot be private. On vsock it holds CAP_NET_BIND_SERVICE, ambient and alone, to bind the privileged source port the guest requires (no other local user can bind one, so no one else reaches the guest); a user namespace (PrivateUsers=) would void that capability, so it has none, which is what scores 1.4 rather than 1.0. The cloud-hypervisor proxy, which reaches a socket file, keeps private users and no capability.",
  },
  "shared-home": {
    scope: "system",
    target: 0.8,
    note: "Oneshot `cp -a` of the home template as the user, who owns the result, so nothing of the user's is written by root; writes only the parent of the shared home, UMask 0022 so the guest sees a normal home.",
  },
  sound: {
    scope: "system",
    target: 0.8,
    note: "vhost-device-sound as the user (it talks to the user's PipeWire); group-writable socket directory (UMask 0007) for crosvm.",
  },
  "wayland-seccontext": {
    scope: "system",
    target: 0.8,
    note: "Wayland security-context helper as the user (it connects to the user's compositor socket); group-accessible socket directory (UMask 0007).",
  },
  gpu: {
    scope: "system",
    target: 1.4,
    note: "crosvm's GPU device as the user in an empty root (TemporaryFileSystem=/) with only the store, the GPU's sysfs, /dev/dri, /dev/udmabuf and its sockets bound in; its syscall allowlist is crosvm's own and includes some @privileged and @resources calls.",
  },
  tray: {
    scope: "system",
    target: 1.8,
    note: "The tray proxy runs as the user with CAP_NET_BIND_SERVICE alone (ambient, to bind the privileged vsock port the guest's tray daemon requires), AF_VSOCK and AF_UNIX only, in the host's network namespace (AF_VSOCK needs it), on a read-only system with the user's files read-only (its session bus socket is in /run/user); what remains is that network namespace and the user's session bus, which it exists to talk to.",
  },
  "usb-broker": {
    scope: "system",
    target: 2.4,
    note: "The USB broker and the persistent-devices unit: root oneshots that read sysfs and device nodes, hand a qemu VM's node to its user (CAP_CHOWN, CAP_FOWNER) and connect to VMM sockets in the VMs' users' directories (CAP_DAC_OVERRIDE); only /run/vmsilo writable, AF_UNIX only, no network. Not PrivateDevices: crosvm's client opens the device node.",
  },
  "session-bind": {
    scope: "user",
    target: 6.4,
    note: "User-manager oneshot whose only job is `systemctl start|stop` of the VM service when the graphical session starts or ends. It gets the seccomp and prctl settings (no new privileges, syscall filter, AF_UNIX only, no namespaces, W^X); capability, mount and namespace sandboxing do not apply in a user manager without unprivileged user namespaces. The offline analyser scores user units as if they ran as root: most of the rest is that, not real exposure.",
  },
};

interface Score {
  readonly kind: Kind;
  readonly unit: string;
  readonly example: string;
  readonly exposure: number;
  readonly rating: string;
}



/** Each generated service of `config`, with its kind and the name to score (templates instantiated). */
function classify(config: unknown, root: StubRoot): Array<{ kind: Kind; unit: string; scope: "system" | "user" }> {
  const model = resolve(config);
  const out: Array<{ kind: Kind; unit: string; scope: "system" | "user" }> = [];
  for (const [scope, names] of [["system", root.systemUnits], ["user", root.userUnits]] as const) {
    for (const name of names.filter((n) => n.endsWith(".service"))) {
      let kind: Kind | undefined;
      for (const vm of model.vms) {
        const u = vm.units;
        const byName: Array<[string, Kind]> = [
          [u.prep, "prep"],
          [u.vm, `vm-${vm.config.hypervisor}` as Kind],
          [u.consoleRelay, "console-relay"],
          [u.proxy, "proxy"],
          [u.sshProxy, "proxy"],
          [u.sharedHome, "shared-home"],
          [u.sound, "sound"],
          [u.seccontext, "wayland-seccontext"],
          [u.gpu, "gpu"],
          [u.sessionBind, "session-bind"],
          [u.tray, "tray"],
          [u.usb, "usb-broker"],
          ...vm.shares.map((s) => [u.virtiofsd(s.tag), "virtiofsd"] as [string, Kind]),
        ];
        kind ??= byName.find(([n]) => n === name)?.[1];
      }
      if (model.links.some((l) => l.unit === name)) kind = "uplink";
      if (name === "vmsilo-firewall.service") kind = "firewall";
      if (name === "vmsilo-vfio-bind.service") kind = "vfio-bind";
      if (name === "vmsilo-balloond.service") kind = "balloond";
      if (name === "vmsilo-usb-attach@.service" || name === "vmsilo-usb-detach@.service") kind = "usb-broker";
      assert.ok(kind, `${name}: a generated service of no known kind; add its kind, target and note to test/lint/security.test.ts`);
      assert.equal(KIND[kind].scope, scope, `${name}: a ${kind} unit in the ${scope} scope`);
      out.push({ kind, unit: name.replace(/@\.service$/, "@1.service"), scope });
    }
  }
  return out;
}

/** Score `units` in one run; returns unit → [exposure, rating]. */
function analyze(root: StubRoot, scope: "system" | "user", units: readonly string[]): Map<string, [number, string]> {
  if (units.length === 0) return new Map();
  const args = ["security", "--offline=yes", "--no-pager", ...(scope === "system" ? [`--root=${root.dir}`] : ["--user"]), ...units];
  const env = scope === "system" ? { ...process.env, SYSTEMD_COLORS: "0" } : userManagerEnv(root, root.userUnitDir);
  const r = spawnSync("systemd-analyze", args, { encoding: "utf8", cwd: root.dir, env });
  assert.equal(r.stderr, "", `systemd-analyze security (${scope}) printed:\n${r.stderr}`);
  assert.equal(r.status, 0, `systemd-analyze security (${scope}) exited ${r.status}`);
  const scores = new Map<string, [number, string]>();
  for (const m of r.stdout.matchAll(/Overall exposure level for (\S+): (\d+(?:\.\d+)?) ([A-Z]+)/g)) scores.set(m[1]!, [Number(m[2]), m[3]!]);
  for (const u of units) assert.ok(scores.has(u), `no exposure score for ${u} in:\n${r.stdout.slice(-2000)}`);
  return scores;
}

/** Both examples, and the minimal one with every VM on qemu (neither example has a qemu VM). */
function scoredConfigs(): Array<{ name: string; config: unknown }> {
  const onQemu = structuredClone(example("minimal")) as Record<string, any>;
  onQemu.programs = { ...onQemu.programs, qemu: "/nix/store/7q3ma1k6lq7w0b4j5b5n7m5ax9w5q2yz-qemu-10.1.2" };
  for (const vm of Object.values(onQemu.nixosVms) as Array<Record<string, unknown>>) vm.hypervisor = "qemu";
  // Neither example shows tray icons.
  const withTray = structuredClone(example("minimal")) as Record<string, any>;
  withTray.programs = { ...withTray.programs, vmsiloTray: "/nix/store/8t4r2a7y1n3s5v9b0c6d2e4f1g3h5j7k-vmsilo-tools-0.1.0-tray" };
  for (const vm of Object.values(withTray.nixosVms) as Array<Record<string, unknown>>) vm.tray = { enable: true };
  return [
    ...EXAMPLES.map((name) => ({ name: `examples/${name}.json`, config: example(name) })),
    { name: "examples/minimal.json on qemu", config: onQemu },
    { name: "examples/minimal.json with tray.enable", config: withTray },
  ];
}

function scoreConfig(name: string, config: unknown, edit?: (root: StubRoot) => void): Score[] {
  const root = buildStubRoot(config as any, render(config));
  try {
    edit?.(root);
    const units = classify(config, root);
    const out: Score[] = [];
    for (const scope of ["system", "user"] as const) {
      const mine = units.filter((u) => u.scope === scope);
      const scores = analyze(root, scope, mine.map((u) => u.unit));
      for (const u of mine) {
        const [exposure, rating] = scores.get(u.unit)!;
        out.push({ kind: u.kind, unit: u.unit, example: name, exposure, rating });
      }
    }
    return out;
  } finally {
    root.cleanup();
  }
}

/** Units over their kind's target, as readable lines. */
function overTarget(scores: readonly Score[]): string[] {
  return scores.filter((s) => s.exposure > KIND[s.kind].target).map((s) => `${s.unit} (${s.kind}, ${s.example}): exposure ${s.exposure} > target ${KIND[s.kind].target}`);
}

function systemdVersion(): string {
  const first = spawnSync("systemd-analyze", ["--version"], { encoding: "utf8" }).stdout.split("\n")[0] ?? "";
  return /^systemd (\d+)/.exec(first)?.[1] ?? "unknown";
}

/** The worst unit of each kind across the examples, in KINDS order. */
function worstByKind(scores: readonly Score[]): Score[] {
  return KINDS.flatMap((k) => {
    const mine = scores.filter((s) => s.kind === k).sort((a, b) => b.exposure - a.exposure || a.unit.localeCompare(b.unit));
    return mine.length ? [mine[0]!] : [];
  });
}

function renderDoc(scores: readonly Score[], version: string): string {
  const cell = (s: string) => s.replace(/\|/g, "\\|");
  const rows = worstByKind(scores).map((s) => {
    const k = KIND[s.kind];
    const n = scores.filter((x) => x.kind === s.kind).length;
    return `| ${s.kind}${k.scope === "user" ? " (user)" : ""} | \`${s.unit}\` | ${s.exposure.toFixed(1)} | ${s.rating} | ${k.target.toFixed(1)} | ${n} | ${cell(k.note)} |`;
  });
  return [
    "# Service hardening: `systemd-analyze security` exposure",
    "",
    "<!-- Generated by test/lint/security.test.ts; do not edit. Regenerate: npx tsc -p . && UPDATE_DOCS=1 node --test dist/test/lint/security.test.js -->",
    "",
    `Every service vmsilo-gen generates for \`examples/minimal.json\`, \`examples/desktop.json\` and the minimal example with its VM on qemu is scored with`,
    `\`systemd-analyze security --offline=yes\` (systemd ${version}) in a stub root (see \`test/lint/stub-root.ts\`);`,
    "user units are scored in the user scope. Exposure runs from 0.0 (everything locked down) to 10.0 (nothing);",
    "the rating is systemd's. Each row is the worst unit of its kind; templates are scored as instance `@1`.",
    "`npm test` fails when a unit scores above its kind's target, when a helper's target is above 3.0, or when this table is out of date.",
    "",
    "| unit kind | example unit | exposure | rating | target | units scored | why it is not lower |",
    "| --- | --- | --- | --- | --- | --- | --- |",
    ...rows,
    "",
    "Hardening every helper gets (`harden()` in `src/render/units/common.ts`): `NoNewPrivileges`, `ProtectSystem=strict`,",
    "`ProtectHome`, `PrivateTmp`, `PrivateMounts`, `PrivateDevices` (unless it needs a device), the `Protect*` kernel,",
    "clock, hostname and cgroup options, `ProtectProc=invisible`, `RestrictRealtime`, `RestrictSUIDSGID`,",
    "`LockPersonality`, `MemoryDenyWriteExecute`, native system calls filtered to `@system-service` minus",
    "`@privileged @resources @obsolete`, an explicit (usually empty) capability bounding set, `RestrictAddressFamilies`,",
    "`RestrictNamespaces`, `PrivateNetwork` with `IPAddressDeny=any` where no network is needed, `UMask=0077`, and",
    "writable paths listed one by one.",
    "",
  ].join("\n");
}

const DOC = join(ROOT, "docs", "security.md");

test("systemd-analyze security: every unit kind stays within its exposure target, and docs/security.md is current", (t) => {
  if (skipWithoutTool(t, "systemd-analyze", "systemd")) return;
  const scores = scoredConfigs().flatMap(({ name, config }) => scoreConfig(name, config));
  const kinds = new Set(scores.map((s) => s.kind));
  assert.deepEqual(KINDS.filter((k) => !kinds.has(k)), [], "unit kinds the examples no longer produce (remove them or extend an example)");
  const loose = KINDS.filter((k) => !k.startsWith("vm-") && k !== "session-bind" && KIND[k].target > HELPER_LIMIT);
  assert.deepEqual(loose, [], `helper kinds whose target is above ${HELPER_LIMIT}`);
  assert.deepEqual(overTarget(scores), [], "units above their exposure target (harden them, or raise the target with a reason in KIND)");

  const version = systemdVersion();
  const doc = renderDoc(scores, version);
  if (process.env.UPDATE_DOCS) writeFileSync(DOC, doc);
  const current = existsSync(DOC) ? readFileSync(DOC, "utf8") : "";
  const docVersion = /systemd (\d+)\)/.exec(current)?.[1];
  if (docVersion !== undefined && docVersion !== version) {
    console.log(`SKIP: docs/security.md was scored with systemd ${docVersion}, this is systemd ${version}; not comparing it`);
    return;
  }
  assert.equal(current, doc, "docs/security.md is out of date (regenerate with UPDATE_DOCS=1 node --test dist/test/lint/security.test.js)");
});

test("negative: a helper that loses its hardening goes over its target", (t) => {
  if (skipWithoutTool(t, "systemd-analyze", "systemd")) return;
  // The prep unit of examples/minimal.json with its [Service] section cut down to what it runs.
  const scores = scoreConfig("examples/minimal.json", example("minimal"), (root) => {
    const path = join(root.systemUnitDir, "vmsilo-work-prep.service");
    const text = readFileSync(path, "utf8");
    writeFileSync(path, text.split("\n").filter((l) => !/^[A-Z]/.test(l) || /^(Description|StopWhenUnneeded|Type|RemainAfterExit|ExecStart)=/.test(l)).join("\n"));
  });
  const over = overTarget(scores);
  assert.equal(over.length, 1, `expected exactly the stripped prep unit over target, got:\n${over.join("\n")}`);
  assert.match(over[0]!, /^vmsilo-work-prep\.service \(prep/);
});
