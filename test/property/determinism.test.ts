/**
 * Deterministic by construction (DESIGN.md): the same config gives byte-identical trees, whatever the
 * order of object keys at any level, and rendering twice gives the same tree.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import type { FileTree } from "../../src/render/files.js";
import { EXAMPLES, example, render } from "../support/harness.js";

const NUM_RUNS = 30;

/** A small seeded PRNG (mulberry32), so a failing seed reproduces. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A deep copy with the keys of every object, at every level, in a shuffled order (arrays keep theirs). */
function shuffleKeys(value: unknown, rand: () => number): unknown {
  if (Array.isArray(value)) return value.map((v) => shuffleKeys(v, rand));
  if (value === null || typeof value !== "object") return value;
  const keys = Object.keys(value);
  for (let i = keys.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [keys[i], keys[j]] = [keys[j]!, keys[i]!];
  }
  const out: Record<string, unknown> = {};
  for (const k of keys) out[k] = shuffleKeys((value as Record<string, unknown>)[k], rand);
  return out;
}

/** The tree as comparable data: paths in their order, with mode and content. */
const flat = (t: FileTree) => [...t.entries()];

/** desktop.json with more of everything whose order could leak: records of records, options, routes. */
function rich(): Record<string, unknown> {
  const c = example("desktop") as any;
  const work = c.nixosVms.work;
  work.network = { interfaces: { eth0: { tap: { bridge: "br-work" }, addresses: ["10.20.0.2/24"], v6Addresses: ["fd00:20::2/64"] } }, nameservers: ["10.20.0.1"] };
  work.network.interfaces.eth0.routes = { "0.0.0.0/0": { via: "10.20.0.1" }, "10.30.0.0/16": { via: "10.20.0.3" }, "172.16.0.0/12": { via: "10.20.0.4" } };
  work.network.interfaces.eth0.v6Routes = { "::/0": { via: "fd00:20::1" }, "fd00:30::/48": { via: "fd00:20::3" } };
  work.network.interfaces.wlan = { tap: { name: "tapw", bridge: null }, dhcp: true };
  work.network.interfaces.aux0 = { macAddress: "02:00:00:00:00:aa", tap: { bridge: "br-aux" }, addresses: ["10.40.0.2/24", "10.41.0.2/24"] };
  work.sharedDirectories.music = { path: "/home/alice/Music", readonly: true, cache: "never", uidMap: ":0:1000:1:" };
  work.sharedDirectories.a0 = { path: "/srv/a", xattr: true };
  work.additionalDisks[0].options = { "block-size": 4096, sparse: false, lock: true, bootindex: 2, "multiple-workers": true };
  work.rootDisk.options = { dontcache: true, "async-executor": "epoll" };
  work.vhostUser = [{ type: "net", socket: "/run/net.sock", options: { "pci-address": "00:1f.0", "max-queue-size": 256 } }];
  c.nixosVms.net.pciDevices[0].options = { iommu: "viommu", "dt-symbol": "x", "guest-address": "00:1e.0" };
  c.nixosVms.banking.gpu = { vulkan: true, opengl: false, wayland: true, logLevel: "debug", seccompPolicy: "log", allowWX: true };
  c.nixosVms.banking.sound = { capture: true, playback: true };
  return c;
}

const configs: Array<[string, () => unknown]> = [...EXAMPLES.map((n) => [n, () => example(n)] as [string, () => unknown]), ["rich desktop", rich]];

for (const [name, make] of configs) {
  test(`${name}: rendering twice gives the same tree`, () => {
    assert.deepEqual(flat(render(make())), flat(render(make())));
  });

  test(`${name}: keys shuffled at every level give a byte-identical tree`, () => {
    const reference = flat(render(make()));
    fc.assert(
      fc.property(fc.integer(), (seed) => {
        const shuffled = shuffleKeys(make(), prng(seed));
        assert.deepEqual(flat(render(shuffled)), reference);
      }),
      { numRuns: NUM_RUNS },
    );
  });
}

test("the shuffle really reorders keys (so the property above is not vacuous)", () => {
  const c = rich();
  const orders = new Set<string>();
  for (let seed = 0; seed < 20; seed++) {
    const s = shuffleKeys(c, prng(seed)) as any;
    orders.add(JSON.stringify([Object.keys(s), Object.keys(s.nixosVms), Object.keys(s.nixosVms.work.network.interfaces.eth0.routes)]));
  }
  assert.ok(orders.size > 10, `only ${orders.size} distinct orders`);
});
