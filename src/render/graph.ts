/**
 * `vmsilo-gen graph`: the topology of a configuration as Graphviz DOT. The host's side (bridges,
 * the host gateway, shared directories, PCI and USB devices) is one cluster; each VM is a node
 * filled with its `color`, joined to what it uses. Deterministic: everything is visited in sorted
 * order and the text depends on nothing else.
 *
 * Network VMs (`network.netvm`, `network.isNetvm`) and USB devices (`usbDevices`) are drawn when
 * the configuration has them: they are read as optional fields, so the picture follows those
 * options wherever the schema carries them.
 */
import type { Model, VmModel } from "../model/model.js";

/** A DOT quoted string: `\` and `"` escaped, each line of `lines` ended by `\n` (centred). */
const q = (...lines: string[]) => `"${lines.map((l) => l.replace(/\\/g, "\\\\").replace(/"/g, '\\"')).join("\\n")}"`;

/** CSS colour names dark enough to need white text (luminance below about 0.4). */
const DARK_NAMES = new Set(["black", "blue", "blueviolet", "brown", "darkblue", "darkgreen", "darkmagenta", "darkolivegreen", "darkred", "darkslateblue", "darkslategray", "darkslategrey", "darkviolet", "dimgray", "dimgrey", "firebrick", "green", "indigo", "maroon", "mediumblue", "midnightblue", "navy", "olive", "purple", "saddlebrown", "sienna", "teal"]);

/** CSS colours that Graphviz's svg colour scheme (SVG 1.1's names) lacks. */
const CSS_ONLY: Readonly<Record<string, string>> = { rebeccapurple: "#663399" };

/** Text colour readable on `color` (a CSS name or #RRGGBB). */
function textOn(color: string): string {
  const hex = /^#([0-9a-f]{2})([0-9a-f]{2})([0-9a-f]{2})$/i.exec(color);
  if (!hex) return DARK_NAMES.has(color) ? "white" : "black";
  const [r, g, b] = hex.slice(1).map((h) => parseInt(h, 16) / 255) as [number, number, number];
  return 0.2126 * r + 0.7152 * g + 0.0722 * b < 0.45 ? "white" : "black";
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);

/** A VM's network VM ("host" for the host gateway) and whether it is one, when the configuration says. */
function netvmOf(vm: VmModel): { netvm: string | null; isNetvm: boolean } {
  const network: unknown = (vm.config as unknown as Record<string, unknown>).network;
  if (!isObject(network)) return { netvm: null, isNetvm: false };
  return { netvm: typeof network.netvm === "string" ? network.netvm : null, isNetvm: network.isNetvm === true };
}

/** A VM's USB devices as `vendor:product[ serial]`, when the configuration has `usbDevices`. */
function usbDevicesOf(vm: VmModel): string[] {
  const list: unknown = (vm.config as unknown as Record<string, unknown>).usbDevices;
  if (!Array.isArray(list)) return [];
  return list
    .filter(isObject)
    .map((d) => [d.vendorId, d.productId, d.serial].filter((x) => typeof x === "string" && x !== "").join(":"))
    .filter((s) => s !== "")
    .sort();
}

export function topologyDot(model: Model): string {
  const host: string[] = [];
  const vms: string[] = [];
  const edges: string[] = [];
  const hostNodes = new Set<string>();
  const hostNode = (id: string, attrs: string) => {
    if (!hostNodes.has(id)) host.push(`    ${q(id)} [${attrs}];`);
    hostNodes.add(id);
  };
  const vmId = (name: string) => `vm:${name}`;

  for (const vm of model.vms) {
    const c = vm.config;
    const { netvm, isNetvm } = netvmOf(vm);
    const facts = [`${c.hypervisor}, ${c.memory} MiB, ${c.cpus} CPU${c.cpus === 1 ? "" : "s"}`];
    if (isNetvm) facts.push("network VM");
    if (c.autoStart) facts.push("starts at boot");
    const color = CSS_ONLY[c.color] ?? c.color;
    vms.push(`  ${q(vmId(vm.name))} [label=${q(vm.name, ...facts)}, fillcolor=${q(color)}, fontcolor=${textOn(color)}];`);

    for (const dep of [...c.dependsOn].sort()) edges.push(`  ${q(vmId(vm.name))} -> ${q(vmId(dep))} [label="depends on", style=dashed, color=gray40, constraint=false];`);
    if (netvm === "host") {
      hostNode("gateway", `label="host gateway\\n(NAT)", shape=diamond`);
      edges.push(`  "gateway" -> ${q(vmId(vm.name))} [label="netvm", color=darkgreen, dir=back];`);
    } else if (netvm !== null) edges.push(`  ${q(vmId(vm.name))} -> ${q(vmId(netvm))} [label="netvm", color=darkgreen, constraint=false];`);

    for (const i of vm.interfaces) {
      if (i.bridge === null) {
        hostNode(`tap:${i.tap}`, `label=${q(`tap ${i.tap}`)}, shape=ellipse`);
        edges.push(`  ${q(`tap:${i.tap}`)} -> ${q(vmId(vm.name))} [label=${q(i.name)}, dir=none];`);
      } else {
        hostNode(`bridge:${i.bridge}`, `label=${q(`bridge ${i.bridge}`)}, shape=ellipse, style=filled, fillcolor=lightyellow`);
        edges.push(`  ${q(`bridge:${i.bridge}`)} -> ${q(vmId(vm.name))} [label=${q(`${i.name} (${i.tap})`)}, dir=none];`);
      }
    }
    for (const i of vm.userInterfaces) {
      hostNode("user-net", `label="qemu user-mode network\\n(NAT to the host's)", shape=ellipse`);
      edges.push(`  "user-net" -> ${q(vmId(vm.name))} [label=${q(i.name)}, dir=none];`);
    }

    const share = (tag: string, path: string, where: string, how: string) => {
      const id = `share:${vm.name}:${tag}`;
      hostNode(id, `label=${q(path)}, shape=folder`);
      edges.push(`  ${q(id)} -> ${q(vmId(vm.name))} [label=${q(`${where}${how}`)}];`);
    };
    for (const s of vm.shares) share(s.tag, s.path, s.mountPoint, s.readonly ? " (ro)" : "");
    for (const tag of Object.keys(c.qemu.shares9p).sort()) {
      const s = c.qemu.shares9p[tag]!;
      share(`9p:${tag}`, s.path, s.mountPoint ?? `/mnt/${tag}`, s.readonly ? " (9p, ro)" : " (9p)");
    }
    for (const sysfs of vm.pciSysfsPaths) {
      const bdf = sysfs.slice(sysfs.lastIndexOf("/") + 1);
      hostNode(`pci:${bdf}`, `label=${q(`PCI ${bdf}`)}, shape=box3d`);
      edges.push(`  ${q(`pci:${bdf}`)} -> ${q(vmId(vm.name))} [label="passed through"];`);
    }
    for (const usb of usbDevicesOf(vm)) {
      hostNode(`usb:${usb}`, `label=${q(`USB ${usb}`)}, shape=component`);
      edges.push(`  ${q(`usb:${usb}`)} -> ${q(vmId(vm.name))} [label="attached"];`);
    }
  }

  return `// Generated by vmsilo-gen graph from vmsilo.json (programs.vmsilo in the NixOS configuration).
digraph vmsilo {
  graph [rankdir=LR, fontname="sans-serif", nodesep=0.3, ranksep=0.8];
  node [fontname="sans-serif", fontsize=11, colorscheme=svg];
  edge [fontname="sans-serif", fontsize=9];
  subgraph cluster_host {
    label="host"; style=rounded; color=gray50;
    node [style=filled, fillcolor=white];
${host.join("\n")}
  }
  node [shape=box, style="filled,rounded"];
${vms.join("\n")}
${edges.join("\n")}
}
`;
}
