import stringify from "json-stable-stringify";
import { type Model, vmDependencies } from "../model/model.js";
import { OUT } from "../model/paths.js";
import { driverFor } from "../hypervisors/index.js";
import { type GeneratedFile, provenance } from "./files.js";

/** The key marking a tree as vmsilo-gen's own: `render --out` replaces only a directory whose
 * manifest carries it, so a mistyped --out never deletes the user's files. */
export const TREE_MARKER = "vmsiloGenTree";

/** share/vmsilo/manifest.json: what was derived for each VM, for people and later tools. */
export function renderManifest(model: Model, files: readonly string[], definitions: ReadonlyMap<string, string>): GeneratedFile {
  const manifest = {
    [TREE_MARKER]: 1,
    generatedBy: provenance("programs.vmsilo").join(" "),
    schemaVersion: model.config.schemaVersion,
    vms: Object.fromEntries(
      model.vms.map((vm) => [
        vm.name,
        {
          id: vm.id,
          hypervisor: vm.config.hypervisor,
          memory: vm.config.memory,
          // The window colour as #rrggbb, as the compositor gets it in the Wayland app id.
          color: vm.color,
          dependsOn: vmDependencies(vm.config),
          /** Its network VM, "host" for the host as gateway, or null (vm-list shows it). */
          netvm: vm.config.network.netvm,
          /** What vm-list compares with the definition a running VM recorded at start. */
          definition: definitions.get(vm.name)!,
          units: vm.units.vm,
          interfaces: vm.interfaces,
          /** The disposable VM this VM is a slot of (absent for other VMs). */
          ...(vm.slot === null ? {} : { disposable: vm.slot.pattern }),
          shares: vm.shares.map((s) => ({ tag: s.tag, path: s.path, socket: vm.paths.virtiofsSocket(s.tag) })),
          kernelParams: vm.kernelParams,
          launchArgv: driverFor(vm.config.hypervisor).launchCommand(vm, model).flat(),
          /** What vmsilo-balloond reads (docs/balloon.md): the VMM's control protocol and socket, memory and floor in MiB; null without a balloon. */
          balloon: vm.balloonFloor === null ? null : { ...driverFor(vm.config.hypervisor).balloonControl(vm), memory: vm.config.memory, floor: vm.balloonFloor },
        },
      ]),
    ),
    /** Disposable VMs: their slots (VMs above) and how many are kept booted. */
    ...(model.disposables.length ? { disposables: Object.fromEntries(model.disposables.map((d) => [d.name, { slots: d.slots, preload: d.preload }])) } : {}),
    files: [...files].sort(),
  };
  return { path: OUT.manifest, mode: 0o644, content: stringify(manifest, { space: 2 }) + "\n" };
}
