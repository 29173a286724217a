import { createHash } from "node:crypto";
import { defaultInterface, type Config, type InterfaceConfig } from "../config/schema.js";
import type { Issue } from "../config/types.js";
import { IFNAME_MAX } from "./derive.js";
import { unitNames } from "./paths.js";

/**
 * Netvm links (SPEC D3, D18): one /31 per (netvm, client) pair, a pure function of the two names
 * and the pool, so adding or removing another VM moves no address. Two pairs that would take the
 * same /31 are an error naming both (probing would make one pair's address depend on the others).
 */

/** `network.netvm` naming the host itself as the gateway (a reserved VM name, so never a VM's). */
export const HOST_NETVM = "host";
/** The client's interface towards its netvm. */
export const CLIENT_IFNAME = "upstream";
/** Inside a netvm, every interface facing a client starts with this: its guest ruleset matches `vc-*`. */
export const NETVM_IFNAME_PREFIX = "vc-";

export interface NetvmLink {
  /** The gateway: a VM's name, or "host". */
  readonly netvm: string;
  readonly client: string;
  /** The /31's lower address (the client's) and upper one (the gateway's). */
  readonly clientAddress: string;
  readonly gatewayAddress: string;
  /** True when `netvmSubnet` gave it, false when derived from the names. */
  readonly explicit: boolean;
  /** The bridge both taps join and the unit that creates it; null when the host is the gateway. */
  readonly bridge: string | null;
  readonly unit: string | null;
  /** The netvm's interface facing the client; null when the host is the gateway. */
  readonly netvmIfname: string | null;
}

const digest = (...parts: string[]) => createHash("sha256").update(parts.join("\0")).digest();

export const ipToInt = (ip: string): number => ip.split(".").reduce((n, o) => n * 256 + Number(o), 0);
export const intToIp = (n: number): string => [24, 16, 8, 0].map((s) => Math.floor(n / 2 ** s) % 256).join(".");

/** The pool as its first address and its number of /31 links, or null (reported) when unusable. */
export function parsePool(range: string, issues: Issue[]): { base: number; slots: number } | null {
  const [ip, p] = range.split("/") as [string, string];
  const prefix = Number(p);
  const base = ipToInt(ip);
  const size = 2 ** (32 - prefix);
  if (prefix > 30) {
    issues.push({ path: "netvmRange", message: `must have a prefix of at most /30 (room for two /31 links), got ${JSON.stringify(range)}` });
    return null;
  }
  if (base % size !== 0) {
    issues.push({ path: "netvmRange", message: `must be a network address (its host bits zero, like "${intToIp(base - (base % size))}/${prefix}"), got ${JSON.stringify(range)}` });
    return null;
  }
  return { base, slots: size / 2 };
}

/** The slot of a derived link: a hash of both names into the pool. */
export const derivedSlot = (netvm: string, client: string, slots: number): number => digest("vmsilo-netvm-link", netvm, client).readUInt32BE(0) % slots;

/** The netvm's interface facing `client`: `vc-<client>` when it fits, else `vc-_` and a hash (no VM name has `_`). */
export function netvmIfname(client: string): string {
  const readable = `${NETVM_IFNAME_PREFIX}${client}`;
  return readable.length <= IFNAME_MAX ? readable : `${NETVM_IFNAME_PREFIX}_${digest("vmsilo-netvm-if", client).toString("hex").slice(0, 8)}`;
}

/** The link's bridge: `vb-` and a hash of both names (fits any name length). */
export const linkBridge = (netvm: string, client: string): string => `vb-${digest("vmsilo-bridge", netvm, client).toString("hex").slice(0, 8)}`;

/** Every link of the configuration, sorted by client; what is wrong with them goes to `issues`. */
export function netvmLinks(config: Config, issues: Issue[]): NetvmLink[] {
  const names = Object.keys(config.nixosVms).sort();
  const wanting = names.filter((n) => config.nixosVms[n]!.network.netvm !== null);
  const pool = wanting.length ? parsePool(config.netvmRange, issues) : null;
  const derived = wanting.filter((n) => config.nixosVms[n]!.network.netvmSubnet === null);
  const exhausted = pool !== null && derived.length > pool.slots;
  if (exhausted) {
    issues.push({ path: "netvmRange", message: `holds ${pool.slots} /31 links, but ${derived.length} VMs need a derived one (${derived.join(", ")}); choose a larger pool or set network.netvmSubnet on some` });
  }
  const links: NetvmLink[] = [];
  const taken = new Map<number, string>();
  for (const client of names) {
    const n = config.nixosVms[client]!.network;
    const at = `nixosVms.${client}.network`;
    if (n.netvm !== HOST_NETVM) {
      for (const proto of ["tcp", "udp"] as const) {
        if (n.hostServices[proto].length) issues.push({ path: `${at}.hostServices.${proto}`, message: `applies only to a VM whose gateway is the host (network.netvm = "host"), got ports ${n.hostServices[proto].join(", ")} and netvm ${JSON.stringify(n.netvm)}` });
      }
    }
    if (n.netvm === null) {
      if (n.netvmSubnet !== null) issues.push({ path: `${at}.netvmSubnet`, message: `applies only to a VM with network.netvm set, got ${JSON.stringify(n.netvmSubnet)} and netvm null` });
      continue;
    }
    const netvm = n.netvm;
    if (netvm === client) {
      issues.push({ path: `${at}.netvm`, message: `must name another VM (or "host"), got the VM itself ${JSON.stringify(netvm)}` });
      continue;
    }
    if (netvm !== HOST_NETVM && !Object.hasOwn(config.nixosVms, netvm)) {
      issues.push({ path: `${at}.netvm`, message: `must name a configured VM (${names.join(", ")}) or "host", got ${JSON.stringify(netvm)}` });
      continue;
    }
    let base: number;
    if (n.netvmSubnet !== null) {
      const [ip, prefix] = n.netvmSubnet.split("/") as [string, string];
      base = ipToInt(ip);
      if (prefix !== "31" || base % 2 !== 0) {
        issues.push({ path: `${at}.netvmSubnet`, message: `must be the lower (even) address of a /31, like "10.200.7.2/31", got ${JSON.stringify(n.netvmSubnet)}` });
        continue;
      }
    } else {
      if (pool === null || exhausted) continue;
      base = pool.base + 2 * derivedSlot(netvm, client, pool.slots);
    }
    const cidr = `${intToIp(base)}/31`;
    const what = `the link ${netvm} → ${client} (${n.netvmSubnet !== null ? `nixosVms.${client}.network.netvmSubnet` : "derived from the two names"})`;
    const owner = taken.get(base);
    if (owner !== undefined) {
      issues.push({ path: `${at}.${n.netvmSubnet !== null ? "netvmSubnet" : "netvm"}`, message: `${cidr} of ${what} is also the /31 of ${owner}; set network.netvmSubnet of one of the two to a free /31` });
      continue;
    }
    taken.set(base, what);
    const host = netvm === HOST_NETVM;
    links.push({
      netvm,
      client,
      clientAddress: intToIp(base),
      gatewayAddress: intToIp(base + 1),
      explicit: n.netvmSubnet !== null,
      bridge: host ? null : linkBridge(netvm, client),
      unit: host ? null : unitNames(client).uplink,
      netvmIfname: host ? null : netvmIfname(client),
    });
  }
  return links;
}

/** The interfaces the links add, by VM and interface name: `upstream` to each client, `vc-…` to each netvm. */
export function linkInterfaces(links: readonly NetvmLink[]): Map<string, Map<string, InterfaceConfig>> {
  const out = new Map<string, Map<string, InterfaceConfig>>();
  const put = (vm: string, ifname: string, c: InterfaceConfig) => {
    if (!out.has(vm)) out.set(vm, new Map());
    out.get(vm)!.set(ifname, c);
  };
  for (const l of links) {
    const client = `${l.clientAddress}/31`;
    const gateway = `${l.gatewayAddress}/31`;
    const routes = { "0.0.0.0/0": { via: l.gatewayAddress } };
    if (l.bridge === null) put(l.client, CLIENT_IFNAME, defaultInterface({ tap: { hostAddress: gateway }, addresses: [client], routes }));
    else {
      put(l.client, CLIENT_IFNAME, defaultInterface({ tap: { bridge: l.bridge }, addresses: [client], routes }));
      put(l.netvm, l.netvmIfname!, defaultInterface({ tap: { bridge: l.bridge }, addresses: [gateway] }));
    }
  }
  return out;
}

/** Whether a link (and so a /31) holds `ip`. */
export function linkHolds(l: NetvmLink, ip: string): boolean {
  const d = ipToInt(ip) - ipToInt(l.clientAddress);
  return d === 0 || d === 1;
}
