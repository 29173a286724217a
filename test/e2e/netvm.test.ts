/**
 * Network VMs with real packets: the generated units run by systemd in systemd-nspawn (the
 * harness, nspawn/harness.ts) create the links' bridges, the taps, the host's address on a
 * host-gateway tap and the host's `inet vmsilo` table; four test guests boot under TCG (no vhost):
 * `net`, a network VM whose upstream is a bridge to an "outside" network namespace, `a` and `b`
 * behind it, and `h` and `h2`, whose gateway is the host. `net` acts as a network VM with what the guest
 * module makes of it: the table `inet vmsilo-netvm` exactly as the module evaluates it
 * (nixos-module/guest/netvm.nix, rendered as NixOS's nftables module wraps a table's content) and
 * dnsmasq with the module's configuration, both run by Debian's nft and dnsmasq added to the test
 * initramfs. The driver (nspawn/netvm.sh) proves with packets: the clients reach the outside through
 * `net` only, masqueraded; their DNS goes through `net`; clients cannot reach each other, `net`'s
 * services or the host; the host as gateway forwards and masquerades, opens only
 * network.hostServices, drops the rest towards itself but replies; stopping `net` leaves its
 * clients with no network (no fallback through the host); stop and start restore every link.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { basename, join } from "node:path";
import { ROOT } from "../support/harness.js";
import { NIX_DIR, libArg, nixEval, skipWithoutLib } from "../nix/support.js";
import { CACHE, NETVM_DEBS, ensureDebs, netvmInitramfs, qemuTestConfig, readOr, skip, testGuest, vmsiloToolsPackage } from "./support.js";
import { REPO_IN_CONTAINER, STAGE } from "./standins/index.js";
import { bootNspawn, nspawnPrerequisites } from "./nspawn/harness.js";

/** A network VM's guest files as the guest module produces them: its nftables table and dnsmasq's configuration. */
function netvmGuestFiles(): Record<string, string> {
  const r = nixEval(join(NIX_DIR, "guest-system.nix"), { lib: libArg(), guest: "{ netvm = true; }" }, { hostRoot: "/usr" });
  assert.equal(r.status, 0, r.stderr);
  const net = (JSON.parse(r.stdout) as { netvm: { table: { family: string; content: string }; dnsmasq: { enable: boolean; settings: { "conf-file": string[] } } } }).netvm;
  assert.equal(net.dnsmasq.enable, true);
  // Evaluated read-only, the store path is named but not written: it is the store copy of this file.
  const conf = net.dnsmasq.settings["conf-file"];
  assert.equal(conf.length, 1);
  assert.match(basename(conf[0]!), /^[a-z0-9]{32}-netvm-dns\.conf$/);
  return {
    // NixOS's nftables module: `table <family> <name> { <content> }`.
    "netvm.nft": `table ${net.table.family} vmsilo-netvm {\n${net.table.content}\n}\n`,
    "dns.conf": readFileSync(join(ROOT, "nixos-module", "guest", "netvm-dns.conf"), "utf8"),
  };
}

test("in systemd-nspawn: network VMs and the host as gateway, proved with packets", (t) => {
  const why = nspawnPrerequisites();
  if (why) return skip(t, why);
  if (skipWithoutLib(t)) return;
  const debs = ensureDebs(NETVM_DEBS);
  if (debs) return skip(t, `network VM e2e: ${debs}`);
  const g = testGuest();
  if (typeof g === "string") return skip(t, `network VM e2e: ${g}`);
  const inStage = (p: string) => p.replaceAll(CACHE, `${STAGE}/cache`);
  const netvmInitrd = netvmInitramfs(g.kernel, netvmGuestFiles());
  const vm = (name: string, o: { kernelParams?: string[]; network: Record<string, unknown>; initramfs?: string }) => {
    const c = qemuTestConfig(g, name, {
      kernelParams: ["console=ttyS0", "quiet", ...(o.kernelParams ?? [])],
      memory: 192,
      stopTimeout: 10,
      network: o.network,
      // The guest's agent port, for commands in the guest (see nspawn.test.ts).
      extraArgs: [
        "-device", "virtio-serial-device,id=agentbus",
        "-chardev", `socket,id=agent,path=/run/vmsilo/${name}/vmm/agent-port.socket,server=on,wait=off`,
        "-device", "virtserialport,bus=agentbus.0,chardev=agent,name=vmsilo.agent",
      ],
    }) as Record<string, any>;
    if (o.initramfs) c.nixosVms[name].initramfs = o.initramfs;
    return c;
  };
  const net = vm("net", {
    kernelParams: ["vmsilo.test.netvm=1", "vmsilo.test.resolver=198.51.100.1", "vmsilo.test.httpd=8000"],
    initramfs: netvmInitrd,
    network: { interfaces: { wan: { tap: { bridge: "br-outside" }, addresses: ["198.51.100.2/24"], routes: { "0.0.0.0/0": { via: "198.51.100.1" } } } } },
  });
  const config = {
    ...net,
    programs: { ...net.programs, nftables: "/nix/store/3s9q6w1x4y7z0a2b5c8d1e4f7g0h3i6j-nftables-1.1.5" },
    nixosVms: {
      ...net.nixosVms,
      ...vm("a", { network: { netvm: "net" } }).nixosVms,
      ...vm("b", { kernelParams: ["vmsilo.test.httpd=7000"], network: { netvm: "net" } }).nixosVms,
      ...vm("h", { network: { netvm: "host", nameservers: ["203.0.113.2"], hostServices: { tcp: [8631] } } }).nixosVms,
      ...vm("h2", { kernelParams: ["vmsilo.test.httpd=7000"], network: { netvm: "host" } }).nixosVms,
    },
  };
  const driver = [`relay_js=${REPO_IN_CONTAINER}/dist/test/e2e/agent-relay.js`, `tools=${inStage(vmsiloToolsPackage())}`, readFileSync(join(ROOT, "test", "e2e", "nspawn", "netvm.sh"), "utf8")].join("\n");
  const started = Date.now();
  const run = bootNspawn({ label: "netvm", config: JSON.parse(inStage(JSON.stringify(config))), driver, timeoutS: 420 });
  t.after(run.remove);
  const context = () => `${run.context()}\n--- host table\n${readOr(join(run.results, "host-table.txt"))}\n--- netvm ruleset\n${readOr(join(run.results, "netvm-ruleset.txt"))}`;
  console.log(`netvm e2e: ${Math.round((Date.now() - started) / 1000)} s; ${run.result.split("\n").filter((l) => /^(boot-s|total-s|addresses) /.test(l)).join("; ")}`);
  assert.ok(run.done, context());
  assert.deepEqual(run.failed, [], context());
  for (const check of ["a-outside-via-netvm", "a-dns-via-netvm", "a-to-b-dropped", "a-to-netvm-service-dropped", "h-outside-via-host", "h-host-service-opened", "h-host-service-closed", "h-to-h2-dropped", "a-no-outside-without-netvm", "a-no-fallback-via-host", "a-outside-after-netvm-restart", "b-outside-after-restart", "h-outside-after-restart", "links-gone"]) {
    assert.match(run.result, new RegExp(`^ok ${check}$`, "m"), `${check}\n${context()}`);
  }
});
