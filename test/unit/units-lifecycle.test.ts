/**
 * What the units of a VM promise about its lifecycle, read from the rendered trees of every example
 * and hypervisor (the nspawn harness, test/e2e/nspawn, runs them for real):
 *  - nixos-rebuild switch leaves a running VM alone: the VM service, its prep unit and every helper
 *    carry X-RestartIfChanged=false (what switch-to-configuration honours), the command socket and
 *    its proxy do not;
 *  - a helper is bound to its VM service (BindsTo=), so a VMM that dies takes it along;
 *  - a virtiofsd unit lets virtiofsd and vmsilo-share-bind work: the mount calls and seccomp are
 *    allowed, and CAP_MKNOD stays in the bounding set (no PrivateDevices=, DevicePolicy=closed);
 *  - the console relay keeps the guest's output in console.log, the user's, from the VMM's side only,
 *    through vmsilo-console-log (bounded).
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { parseUnit } from "../../src/systemd/unit.js";
import { example, render } from "../support/harness.js";
import { execArgv } from "../e2e/support.js";

const qemuVm = (): Record<string, any> => {
  const config = example("minimal") as Record<string, any>;
  config.programs.qemu = "/nix/store/22222222222222222222222222222222-qemu-10.1.2";
  config.programs.virtiofsd = (example("desktop") as Record<string, any>).programs.virtiofsd;
  config.nixosVms.work.hypervisor = "qemu";
  config.nixosVms.work.sharedHome = true;
  return config;
};

const trees = { desktop: render(example("desktop")), minimal: render(example("minimal")), qemu: render(qemuVm()) };

function units(tree: ReturnType<typeof render>): Array<{ name: string; entries: ReturnType<typeof parseUnit> }> {
  return [...tree]
    .filter(([path]) => path.startsWith("lib/systemd/system/") && path.endsWith(".service"))
    .map(([path, f]) => ({ name: path.slice("lib/systemd/system/".length), entries: parseUnit((f as { content: string }).content) }));
}

const get = (entries: ReturnType<typeof parseUnit>, section: string, key: string) => entries.filter((e) => e.section === section && e.key === key).map((e) => e.value);
const kind = (name: string) => /^vmsilo-[a-z0-9-]+?-(prep|vm|console-relay|gpu|sound|shared-home|wayland-seccontext|virtiofsd-.+)\.service$/.exec(name)?.[1] ?? null;

for (const [label, tree] of Object.entries(trees)) {
  test(`${label}: every unit of a running VM says X-RestartIfChanged=false; the command channel's do not`, () => {
    const all = units(tree);
    assert.ok(all.some((u) => kind(u.name) === "vm"));
    for (const u of all) {
      // A netvm link's unit holds the bridge under both running VMs: a switch must not restart it either.
      const want = kind(u.name) === null && !u.name.endsWith("-uplink.service") ? [] : ["false"];
      assert.deepEqual(get(u.entries, "Unit", "X-RestartIfChanged"), want, u.name);
    }
  });

  test(`${label}: helpers are bound to their VM service (BindsTo=), never merely PartOf=`, () => {
    for (const u of units(tree)) {
      const k = kind(u.name);
      if (k === null || k === "vm" || k === "prep") continue;
      const vm = `${u.name.slice(0, u.name.length - `-${k}.service`.length)}-vm.service`;
      assert.deepEqual(get(u.entries, "Unit", "BindsTo"), [vm], u.name);
      assert.deepEqual(get(u.entries, "Unit", "PartOf"), [], u.name);
    }
  });

  test(`${label}: virtiofsd units allow the mount calls and seccomp and keep CAP_MKNOD`, () => {
    const fs = units(tree).filter((u) => kind(u.name)?.startsWith("virtiofsd-"));
    assert.ok(fs.length > 0 || label === "minimal");
    for (const u of fs) {
      assert.ok(get(u.entries, "Service", "SystemCallFilter").includes("@mount seccomp"), u.name);
      assert.deepEqual(get(u.entries, "Service", "PrivateDevices"), [], `${u.name}: PrivateDevices= drops CAP_MKNOD, and virtiofsd's capset then fails`);
      assert.deepEqual(get(u.entries, "Service", "DevicePolicy"), ["closed"], u.name);
      assert.match(get(u.entries, "Service", "CapabilityBoundingSet").at(-1)!, /\bCAP_MKNOD\b/, u.name);
    }
  });

  test(`${label}: the console relay writes the guest's output to console.log, the user's`, () => {
    const config = label === "desktop" ? example("desktop") : label === "minimal" ? example("minimal") : qemuVm();
    const { uid, gid } = (config as any).user;
    for (const u of units(tree).filter((x) => kind(x.name) === "console-relay")) {
      const vm = u.name.slice("vmsilo-".length, -"-console-relay.service".length);
      const log = `/run/vmsilo/${vm}/console.log`;
      const pre = get(u.entries, "Service", "ExecStartPre").map(execArgv);
      assert.ok(pre.some((a) => a[0]!.endsWith("/install") && a.slice(1).join(" ") === `-m 0600 -o ${uid} -g ${gid} -T /dev/null ${log}`), `${u.name}: ${JSON.stringify(pre)}`);
      // bash execs socat with vmsilo-console-log (which bounds the file) on its -r: only what flows
      // from the VMM (left) to the PTY, never what a user types.
      const [bash, c, script, socat, logger, file, left] = execArgv(get(u.entries, "Service", "ExecStart")[0]!);
      assert.deepEqual([bash!.endsWith("/bin/bash"), c, script], [true, "-c", 'exec "$0" -r >(exec "$1" "$2") "${@:3}"'], u.name);
      assert.ok(socat!.endsWith("/bin/socat") && logger!.endsWith("/bin/vmsilo-console-log"), u.name);
      assert.equal(file, log, u.name);
      assert.match(left!, /^UNIX-(LISTEN|CONNECT):/, u.name);
      assert.match(get(u.entries, "Service", "CapabilityBoundingSet").at(-1)!, /\bCAP_DAC_OVERRIDE\b/, u.name);
      assert.ok(!get(u.entries, "Service", "ExecStopPost").some((l) => l.includes(log)), `${u.name}: the log outlives the VM`);
    }
  });
}

test("the ssh channel is the command channel on port 22 and the ssh socket, and only with programs.openssh", () => {
  const file = (tree: ReturnType<typeof render>, name: string) => (tree.get(`lib/systemd/system/${name}`) as { content: string } | undefined)?.content;
  const withSsh = render({ ...qemuVm(), programs: { ...qemuVm().programs, openssh: (example("desktop") as Record<string, any>).programs.openssh } });
  for (const [tree, vms] of [[trees.desktop, ["banking", "dev", "net", "work"]], [withSsh, ["work"]]] as const) {
    for (const vm of vms) {
      const socket = file(tree, `vmsilo-${vm}_ssh.socket`)!;
      assert.equal(socket.replace(`ssh socket of VM ${vm}`, `command socket of VM ${vm}`).replace(`/run/vmsilo/${vm}/ssh.socket`, `/run/vmsilo/${vm}/command.socket`), file(tree, `vmsilo-${vm}.socket`));
      const proxy = file(tree, `vmsilo-${vm}_ssh@.service`)!;
      assert.match(proxy, /^ExecStart=\S+\/vmsilo-vsock-proxy --timeout \d+ --(vsock|hybrid) \S+:22$/m, `${vm}: port 22`);
      assert.equal(proxy.replace("ssh channel to", "command channel to").replace(/:22$/m, ":5000"), file(tree, `vmsilo-${vm}@.service`));
      assert.ok(get(parseUnit(file(tree, "vmsilo.target")!), "Unit", "Wants").includes(`vmsilo-${vm}_ssh.socket`));
    }
  }
  // qemu (vhost-vsock): the user's connection reaches a proxy with the privileged bind capability.
  assert.deepEqual(get(parseUnit(file(withSsh, "vmsilo-work_ssh@.service")!), "Service", "AmbientCapabilities"), ["CAP_NET_BIND_SERVICE"]);
  for (const tree of [trees.minimal, trees.qemu]) assert.deepEqual([...tree.keys()].filter((p) => p.includes("_ssh")), []);
});
