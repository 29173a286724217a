/**
 * Netvm links are stable (SPEC D3): adding or removing a VM moves no other link's addresses. Random
 * configurations of clients behind random netvms (or the host), a VM added or removed: every link
 * that exists before and after keeps its /31, its bridge and its interface names, and the kernel
 * command line of each unchanged client is byte for byte the same. A small pool makes collisions
 * happen: the configuration is then refused with an issue naming the new link and the one it hit.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { ConfigError, resolve } from "../../src/generate.js";
import type { Model } from "../../src/model/model.js";
import { example } from "../support/harness.js";

const NFTABLES = "/nix/store/3s9q6w1x4y7z0a2b5c8d1e4f7g0h3i6j-nftables-1.1.5";
const IPROUTE2 = "/nix/store/9p4r2z7x0q8t1k3a5bm4d6y8s0f2h3i5-iproute2-6.17.0";

const vmName = fc.stringMatching(/^[a-z][a-z0-9-]{0,14}[a-z0-9]$/).filter((n) => !["host", "session", "usb", "gen", "qmp", "target", "balloond"].includes(n));

/** minimal.json with these VMs (name → netvm or null), every other setting the example's. */
function config(vms: ReadonlyMap<string, string | null>, pool: string): unknown {
  const c = example("minimal") as any;
  const work = c.nixosVms.work;
  c.nixosVms = {};
  for (const [name, netvm] of vms) c.nixosVms[name] = { ...structuredClone(work), network: { netvm } };
  c.programs.iproute2 = IPROUTE2;
  c.programs.nftables = NFTABLES;
  c.netvmRange = pool;
  return c;
}

function model(vms: ReadonlyMap<string, string | null>, pool: string): Model | ConfigError {
  try {
    return resolve(config(vms, pool));
  } catch (e) {
    if (e instanceof ConfigError) return e;
    throw e;
  }
}

/** A random configuration: some netvms, clients behind one of them or the host. */
const configs = fc
  .uniqueArray(vmName, { minLength: 2, maxLength: 12 })
  .chain((names) => fc.tuple(fc.constant(names), fc.array(fc.nat(), { minLength: names.length, maxLength: names.length })))
  .map(([names, picks]) => {
    const netvms = names.slice(0, Math.max(1, Math.floor(names.length / 4)));
    const vms = new Map<string, string | null>();
    names.forEach((n, i) => {
      const p = picks[i]! % (netvms.length + 2);
      vms.set(n, netvms.includes(n) || p === netvms.length + 1 ? null : p === netvms.length ? "host" : netvms[p]!);
    });
    return vms;
  });

const linkOf = (m: Model, client: string) => {
  const l = m.links.find((x) => x.client === client);
  return l && { ...l, kernelParams: m.vms.find((v) => v.name === client)!.kernelParams };
};

test("property: adding or removing a VM moves no other netvm link", () => {
  let collisions = 0;
  let compared = 0;
  fc.assert(
    fc.property(configs, vmName, fc.boolean(), fc.constantFrom("10.200.0.0/16", "10.77.0.0/24"), (vms, extra, remove, pool) => {
      const before = model(vms, pool);
      if (before instanceof ConfigError) return; // a collision already: nothing to keep stable
      const after = new Map(vms);
      const changed = remove ? [...vms.keys()].find((n) => !before.links.some((l) => l.netvm === n)) : vms.has(extra) ? undefined : extra;
      if (changed === undefined) return;
      if (remove) after.delete(changed);
      else after.set(changed, [...vms.values()].find((v) => v !== null) ?? "host");
      const m = model(after, pool);
      if (m instanceof ConfigError) {
        // Only an addition can collide, and the issue names the added link and the one it hit.
        assert.ok(!remove, m.message);
        assert.match(m.message, new RegExp(`→ ${changed} \\(derived from the two names\\).*is also the /31 of the link|is also the /31 of the link [a-z0-9-]+ → ${changed} `), m.message);
        collisions++;
        return;
      }
      for (const l of before.links) {
        if (l.client === changed) continue;
        compared++;
        assert.deepEqual(linkOf(m, l.client), linkOf(before, l.client), `link of ${l.client} moved`);
      }
    }),
    { numRuns: 150, seed: 1312 },
  );
  assert.ok(compared > 100, `only ${compared} links compared`);
  assert.ok(collisions > 0, "the small pool never collided: the error path went unexercised");
});

test("a derived link is the /31 of the pool a hash of both names picks, the same on every run", () => {
  const m = resolve(config(new Map([["net", null], ["work", "net"], ["bank", "host"]]), "10.200.0.0/16"));
  const work = m.links.find((l) => l.client === "work")!;
  assert.equal(work.clientAddress, "10.200.64.44");
  assert.equal(work.gatewayAddress, "10.200.64.45");
  assert.equal(work.bridge, "vb-7dd1bf17");
  assert.equal(work.netvmIfname, "vc-work");
  const bank = m.links.find((l) => l.client === "bank")!;
  assert.deepEqual([bank.bridge, bank.netvmIfname, bank.unit], [null, null, null]);
  const v = m.vms.find((x) => x.name === "work")!;
  assert.ok(v.kernelParams.includes("ip=10.200.64.44:::255.255.255.254::upstream:none"), v.kernelParams.join(" "));
  assert.ok(v.kernelParams.includes("rd.route=0.0.0.0/0:10.200.64.45:upstream"), v.kernelParams.join(" "));
  const net = m.vms.find((x) => x.name === "net")!;
  assert.ok(net.kernelParams.includes("ip=10.200.64.45:::255.255.255.254::vc-work:none"), net.kernelParams.join(" "));
  assert.ok(!net.kernelParams.some((p) => p.startsWith("rd.route=")), "the netvm gets no route towards its client");
  // A client name too long for `vc-<name>` gets a hashed one, which no VM name can read as (`_`).
  const long = resolve(config(new Map([["net", null], ["a-rather-long-name", "net"]]), "10.200.0.0/16"));
  assert.match(long.links[0]!.netvmIfname!, /^vc-_[0-9a-f]{8}$/);
});
