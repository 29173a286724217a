/** The configuration render-bench renders: the desktop example's VMs replaced by n typical ones
 * (test/unit/bench-configs.test.ts keeps it valid as the example changes). */
import { example } from "../support/harness.js";

export function benchConfig(n: number): unknown {
  const base = example("desktop") as { nixosVms: Record<string, Record<string, unknown>> };
  // A typical VM: a share, a DHCP interface on the example's bridge, a tmpfs overlay (the MAC is
  // derived). Not a network VM's client: a thousand links hashed into the default pool collide.
  const template = { ...structuredClone(base.nixosVms.banking!), network: { interfaces: { eth0: { tap: { bridge: "br-lan" }, dhcp: true } } } };
  const vms: Record<string, unknown> = {};
  for (let i = 0; i < n; i++) vms[`vm${String(i).padStart(4, "0")}`] = { ...template, dependsOn: [] };
  return { ...base, nixosVms: vms };
}
