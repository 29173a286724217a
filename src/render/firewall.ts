import type { Model } from "../model/model.js";
import { CLIENT_IFNAME, HOST_NETVM } from "../model/netvm.js";
import { FIREWALL_TABLE, OUT } from "../model/paths.js";
import { type GeneratedFile, provenance } from "./files.js";
import { renderTemplate } from "./templates.js";

/** An interface name as an nftables string (the interface grammar has nothing to escape). */
const nftString = (s: string) => `"${s}"`;

/** The host-gateway clients: each link to "host" with its client's tap. */
export function hostClients(model: Model): Array<{ readonly client: string; readonly tap: string; readonly address: string; readonly gateway: string }> {
  return model.links
    .filter((l) => l.netvm === HOST_NETVM)
    .map((l) => ({ client: l.client, tap: model.vms.find((v) => v.name === l.client)!.interfaces.find((i) => i.name === CLIENT_IFNAME)!.tap, address: l.clientAddress, gateway: l.gatewayAddress }));
}

/** The host services a host-gateway client may reach (network.hostServices): one rule per client and protocol. */
function openings(model: Model, clients: ReturnType<typeof hostClients>): Array<{ tap: string; address: string; gateway: string; proto: string; ports: string }> {
  return clients.flatMap((c) => {
    const open = model.config.nixosVms[c.client]!.network.hostServices;
    return (["tcp", "udp"] as const).flatMap((proto) => (open[proto].length ? [{ tap: nftString(c.tap), address: c.address, gateway: c.gateway, proto, ports: [...open[proto]].sort((a, b) => a - b).join(", ") }] : []));
  });
}

/**
 * share/vmsilo/firewall.nft (D3, D18): the host's `inet vmsilo` table. A host-gateway client may
 * reach the networks the host routes to, masqueraded, with its own address only; it cannot reach the
 * host (replies to the host's own connections and its network.hostServices excepted) nor another such client, and nothing may
 * open a connection to it. Netvm link bridges carry nothing to or through the host.
 */
export function renderFirewall(model: Model): GeneratedFile | null {
  if (!model.links.length) return null;
  const clients = hostClients(model);
  const links = model.links.flatMap((l) => (l.bridge === null ? [] : [l.bridge]));
  return {
    path: OUT.firewall,
    mode: 0o644,
    content: renderTemplate("firewall.nft.hbs", {
      header: provenance("programs.vmsilo.nixosVms.*.network.netvm").map((l) => `# ${l}`).join("\n"),
      table: FIREWALL_TABLE,
      links: links.map(nftString).join(", "),
      bridged: links.map((b) => `${nftString(b)} . ${nftString(b)}`).join(", "),
      clients: clients.map((c) => nftString(c.tap)).join(", "),
      spoofing: clients.map((c) => ({ tap: nftString(c.tap), address: c.address })),
      open: openings(model, clients),
    }),
  };
}
