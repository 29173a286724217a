import type { Config, VmConfig } from "../config/schema.js";
import { pathKey, type Issue } from "../config/types.js";

/**
 * Disposable VMs (SPEC D21): a VM with `disposable.enable` is a pattern. Its slots, `<vm>-d1` …
 * `<vm>-d<slots>`, replace it in the configuration before anything is derived, so each slot is an
 * ordinary VM (its id, MACs, taps and netvm link derived from its own name, every unit family
 * rendered for it); what would make the slots share or keep something is refused on the pattern.
 */

/** The VM name grammar's length limit, less the longest slot suffix (`-d16`). */
export const DISPOSABLE_NAME_MAX = 32 - "-d16".length;

export const slotName = (pattern: string, index: number): string => `${pattern}-d${index}`;

export interface SlotInfo {
  /** The disposable VM (pattern) the slot belongs to. */
  readonly pattern: string;
  /** 1-based. */
  readonly index: number;
  /** Kept booted and idle (`disposable.preload`). */
  readonly preloaded: boolean;
}

export interface DisposableModel {
  readonly name: string;
  /** Slot VM names, in slot order. */
  readonly slots: readonly string[];
  readonly preload: number;
}

const NOT_DISPOSABLE: VmConfig["disposable"] = { enable: false, slots: 2, preload: 0 };

/** The configuration with each pattern replaced by its slots, and what the slots are. */
export function expandDisposables(config: Config, issues: Issue[]): { config: Config; slots: Map<string, SlotInfo>; disposables: DisposableModel[] } {
  const names = Object.keys(config.nixosVms).sort();
  const patterns = names.filter((n) => config.nixosVms[n]!.disposable.enable);
  const slots = new Map<string, SlotInfo>();
  if (patterns.length === 0) return { config, slots, disposables: [] };
  const nixosVms: Record<string, VmConfig> = {};
  const disposables: DisposableModel[] = [];
  for (const n of names) if (!patterns.includes(n)) nixosVms[n] = config.nixosVms[n]!;
  for (const p of patterns) {
    const vm = config.nixosVms[p]!;
    checkPattern(p, vm, issues);
    const { slots: count, preload } = vm.disposable;
    const own: string[] = [];
    for (let i = 1; i <= count; i++) {
      const name = slotName(p, i);
      own.push(name);
      if (Object.hasOwn(config.nixosVms, name)) {
        issues.push({ path: `nixosVms.${name}`, message: `is the name of slot ${i} of disposable VM ${JSON.stringify(p)} (nixosVms.${p}.disposable.slots); rename this VM` });
        continue;
      }
      slots.set(name, { pattern: p, index: i, preloaded: i <= preload });
      nixosVms[name] = { ...vm, autoStart: i <= preload, id: vm.id === null ? null : vm.id + i - 1, disposable: NOT_DISPOSABLE };
    }
    disposables.push({ name: p, slots: own, preload });
  }
  // No VM may need a pattern: there is no one VM to depend on or to route through.
  for (const n of names) {
    const vm = config.nixosVms[n]!;
    vm.dependsOn.forEach((d, i) => {
      if (patterns.includes(d)) issues.push({ path: `nixosVms.${n}.dependsOn[${i}]`, message: `names disposable VM ${JSON.stringify(d)}, which is a pattern for fresh instances, not a VM that runs; depend on a VM that is not disposable` });
    });
    const netvm = vm.network.netvm;
    if (netvm !== null && patterns.includes(netvm)) issues.push({ path: `nixosVms.${n}.network.netvm`, message: `names disposable VM ${JSON.stringify(netvm)}, which is a pattern for fresh instances, not a network VM that runs; choose a VM that is not disposable` });
  }
  const sorted: Record<string, VmConfig> = {};
  for (const n of Object.keys(nixosVms).sort()) sorted[n] = nixosVms[n]!;
  return { config: { ...config, nixosVms: sorted }, slots, disposables };
}

/** What every slot would share or keep: refused, naming the pattern's option. */
function checkPattern(name: string, vm: VmConfig, issues: Issue[]): void {
  const at = `nixosVms.${name}`;
  const why = "for a disposable VM (disposable.enable), whose instances keep nothing and share nothing";
  const refuse = (path: string, message: string) => issues.push({ path: `${at}.${path}`, message });
  if (name.length > DISPOSABLE_NAME_MAX) refuse("disposable.enable", `needs a VM name of at most ${DISPOSABLE_NAME_MAX} characters, so that its slots' names (${slotName(name, 16)} at most) are VM names; got ${name.length}`);
  if (vm.disposable.preload > vm.disposable.slots) refuse("disposable.preload", `must be at most disposable.slots (${vm.disposable.slots}), got ${vm.disposable.preload}`);
  if (vm.autoStart) refuse("autoStart", `must be false ${why}: it is a pattern, not a VM that runs; set disposable.preload to keep slots booted`);
  if (vm.rootOverlay.type !== "tmpfs") refuse("rootOverlay.type", `must be "tmpfs" ${why}, got ${JSON.stringify(vm.rootOverlay.type)}`);
  if (vm.additionalDisks.length) refuse("additionalDisks", `must be empty ${why}, got ${vm.additionalDisks.length} disk(s)`);
  if (vm.sharedHome !== false) refuse("sharedHome", `must be false ${why}, got ${JSON.stringify(vm.sharedHome)}`);
  for (const tag of Object.keys(vm.sharedDirectories).sort()) {
    if (!vm.sharedDirectories[tag]!.readonly) refuse(`sharedDirectories.${pathKey(tag)}.readonly`, `must be true ${why}: a writable share would keep what an instance wrote`);
  }
  for (const tag of Object.keys(vm.qemu.shares9p).sort()) {
    if (!vm.qemu.shares9p[tag]!.readonly) refuse(`qemu.shares9p.${pathKey(tag)}.readonly`, `must be true ${why}: a writable share would keep what an instance wrote`);
  }
  if (vm.pciDevices.length) refuse("pciDevices", `must be empty ${why}: a device can be given to one VM only, not to every slot`);
  if (vm.vhostUser.length) refuse("vhostUser", `must be empty ${why}: one backend socket cannot serve every slot`);
  if (vm.network.netvmSubnet !== null) refuse("network.netvmSubnet", `must be null ${why}: each slot gets a link of its own, derived from its name`);
  for (const ifName of Object.keys(vm.network.interfaces).sort()) {
    const i = vm.network.interfaces[ifName]!;
    const ia = `network.interfaces.${pathKey(ifName)}`;
    if (i.macAddress !== null) refuse(`${ia}.macAddress`, `must be null ${why}: each slot derives a MAC of its own`);
    if (i.tap.name !== null) refuse(`${ia}.tap.name`, `must be null ${why}: each slot derives a tap name of its own`);
    if (i.tap.hostAddress !== null) refuse(`${ia}.tap.hostAddress`, `must be null ${why}: every slot would take the same address`);
    if (!i.dhcp && (i.addresses.length || i.v6Addresses.length)) refuse(`${ia}.addresses`, `must be empty ${why}: every slot would take the same address; use dhcp or network.netvm`);
    if (i.forwardPorts.length) refuse(`${ia}.forwardPorts`, `must be empty ${why}: every slot would forward the same host port`);
  }
}

/** An issue about a slot, said of its pattern's option (where the user set it). */
export function patternIssue(issue: Issue, slots: ReadonlyMap<string, SlotInfo>): Issue {
  const m = /^nixosVms\.([a-z][a-z0-9-]*)(?=\.|$)/.exec(issue.path);
  const slot = m ? slots.get(m[1]!) : undefined;
  if (!m || !slot) return issue;
  return { path: `nixosVms.${slot.pattern}${issue.path.slice(m[0].length)}`, message: `${issue.message} (in its slot ${m[1]})` };
}
