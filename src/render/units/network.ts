import type { Model } from "../../model/model.js";
import type { NetvmLink } from "../../model/netvm.js";
import { normalizeBdf } from "../../model/derive.js";
import { FIREWALL_TABLE, FIREWALL_UNIT, OUT, VFIO_BIND_UNIT } from "../../model/paths.js";
import { add, exec, unitFile, type UnitFile } from "../../systemd/unit.js";
import { type Tools, required } from "../context.js";
import { vmSource } from "../files.js";
import { harden } from "./common.js";

/** Host-side network units: the firewall table, one bridge per netvm link, the vfio binding. */

/**
 * A netvm link's bridge (D18): up while either of its VMs runs (both require it; StopWhenUnneeded
 * removes it once neither does). Each VM enslaves its own tap at start. The bridge gets no host
 * address, not even an IPv6 link-local one, and the firewall is loaded before it exists.
 */
export function linkUnit(_model: Model, link: NetvmLink, t: Tools): UnitFile {
  const bridge = link.bridge!;
  const ip = required(t.ip, "programs.iproute2");
  const u = unitFile(link.unit!, vmSource(link.client, "network.netvm"));
  add(u, "Unit", "Description", `vmsilo netvm link ${link.netvm} → ${link.client} (bridge ${bridge})`);
  add(u, "Unit", "StopWhenUnneeded", true);
  add(u, "Unit", "Requires", FIREWALL_UNIT);
  add(u, "Unit", "After", FIREWALL_UNIT);
  // A switch leaves a running link alone, as it does the VMs that require it.
  add(u, "Unit", "X-RestartIfChanged", "false");
  const s = "Service";
  add(u, s, "Type", "oneshot");
  add(u, s, "RemainAfterExit", true);
  // A bridge left by a crash of the host's network stack or a killed unit: start from nothing.
  add(u, s, "ExecStartPre", exec([ip, "link", "delete", "dev", bridge], "-"));
  add(u, s, "ExecStart", exec([ip, "link", "add", "name", bridge, "type", "bridge"]));
  add(u, s, "ExecStart", exec([ip, "link", "set", "dev", bridge, "addrgenmode", "none"]));
  add(u, s, "ExecStart", exec([ip, "link", "set", "dev", bridge, "up"]));
  add(u, s, "ExecStop", exec([ip, "link", "delete", "dev", bridge]));
  harden(u, { network: true, caps: ["CAP_NET_ADMIN"], families: "AF_NETLINK AF_UNIX" });
  return u;
}

/**
 * Loads share/vmsilo/firewall.nft (the host's `inet vmsilo` table) and removes the table at stop.
 * A change is applied by reloading (the file replaces the table in one transaction), so a switch
 * never stops the VMs that require it. NixOS's own nftables.service flushes the ruleset when it
 * starts or reloads: this one follows it and is reloaded with it.
 */
export function firewallUnit(_model: Model, t: Tools): UnitFile {
  const nft = required(t.nft, "programs.nftables");
  const u = unitFile(FIREWALL_UNIT, "programs.vmsilo.nixosVms.*.network.netvm");
  add(u, "Unit", "Description", `vmsilo host firewall (nftables table inet ${FIREWALL_TABLE})`);
  add(u, "Unit", "After", "nftables.service");
  add(u, "Unit", "ReloadPropagatedFrom", "nftables.service");
  add(u, "Unit", "Before", "network-pre.target");
  add(u, "Unit", "Wants", "network-pre.target");
  add(u, "Unit", "X-ReloadIfChanged", true);
  const s = "Service";
  add(u, s, "Type", "oneshot");
  add(u, s, "RemainAfterExit", true);
  const load = exec([nft, "-f", t.installed(OUT.firewall)]);
  add(u, s, "ExecStart", load);
  add(u, s, "ExecReload", load);
  add(u, s, "ExecStop", exec([nft, "delete", "table", "inet", FIREWALL_TABLE]));
  harden(u, { network: true, caps: ["CAP_NET_ADMIN"], families: "AF_NETLINK AF_UNIX" });
  return u;
}

/** The sysfs paths of `isolatedPciDevices`, as `pciDevices` name them. */
export const isolatedSysfsPaths = (model: Model): string[] => model.config.isolatedPciDevices.map((b) => `/sys/bus/pci/devices/${normalizeBdf(b)}`);

/**
 * Takes `isolatedPciDevices` from the host's drivers and binds them to vfio-pci (libexec/vmsilo/vfio-bind),
 * before the host's network comes up and before any VM passing one of them starts.
 */
export function vfioBindUnit(model: Model, t: Tools): UnitFile {
  const u = unitFile(VFIO_BIND_UNIT, "programs.vmsilo.isolatedPciDevices");
  add(u, "Unit", "Description", "vmsilo: bind isolated PCI devices to vfio-pci");
  add(u, "Unit", "After", "systemd-modules-load.service");
  add(u, "Unit", "Before", "network-pre.target");
  add(u, "Unit", "Wants", "network-pre.target");
  const s = "Service";
  add(u, s, "Type", "oneshot");
  add(u, s, "RemainAfterExit", true);
  add(u, s, "ExecStart", exec([t.vfioBind, String(model.config.startTimeout), ...model.config.isolatedPciDevices.map(normalizeBdf)]));
  // It writes to /sys (no ProtectKernelTunables=) as root, needing no capability for that.
  add(u, s, "CapabilityBoundingSet", "");
  add(u, s, "NoNewPrivileges", true);
  add(u, s, "ProtectSystem", "strict");
  add(u, s, "ProtectHome", true);
  add(u, s, "PrivateTmp", true);
  add(u, s, "PrivateNetwork", true);
  add(u, s, "ProtectKernelModules", true);
  add(u, s, "ProtectKernelLogs", true);
  add(u, s, "ProtectControlGroups", true);
  add(u, s, "ProtectClock", true);
  add(u, s, "ProtectHostname", true);
  add(u, s, "RestrictAddressFamilies", "AF_UNIX");
  add(u, s, "RestrictNamespaces", true);
  add(u, s, "RestrictRealtime", true);
  add(u, s, "RestrictSUIDSGID", true);
  add(u, s, "LockPersonality", true);
  add(u, s, "MemoryDenyWriteExecute", true);
  add(u, s, "SystemCallArchitectures", "native");
  add(u, s, "SystemCallFilter", "@system-service");
  add(u, s, "UMask", "0077");
  return u;
}
