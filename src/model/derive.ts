import { createHash } from "node:crypto";

/** Stable derivations from names (SPEC D2): the same names give the same values on every machine. */

function digest(...parts: string[]): Buffer {
  return createHash("sha256").update(parts.join("\0")).digest();
}

/** Lowest id a VM may have: vsock CIDs 0–2 are reserved. */
export const MIN_ID = 3;
/** Derived ids stay below 2^31 so they read as positive in every tool. */
export const DERIVED_ID_RANGE = 2 ** 31 - MIN_ID;

/** A VM's default id (vsock CID): a hash of its name into [3, 2^31). */
export function derivedId(vmName: string): number {
  return MIN_ID + (digest("vmsilo-id", vmName).readUInt32BE(0) % DERIVED_ID_RANGE);
}

/** A locally administered unicast MAC derived from the VM and interface names. */
export function derivedMac(vmName: string, ifName: string): string {
  const b = digest("vmsilo-mac", vmName, ifName);
  return ["02", ...[0, 1, 2, 3, 4].map((i) => b[i]!.toString(16).padStart(2, "0"))].join(":");
}

/** User names hold 31 bytes where systemd, utmp and shadow all accept them. */
export const USER_NAME_MAX = 31;

/**
 * The system user a VM's unprivileged VMM runs as: `vmsilo-<vm>` when it fits, else `vmsilo-`, the
 * name's first 15 characters, `-` and 8 hex digits of a hash of the whole name. The NixOS module
 * declares the same names (nixos-module/lib.nix vmmUser; a test checks that both agree).
 */
export function vmmUserName(vmName: string): string {
  const readable = `vmsilo-${vmName}`;
  if (readable.length <= USER_NAME_MAX) return readable;
  return `vmsilo-${vmName.slice(0, 15)}-${createHash("sha256").update(vmName).digest("hex").slice(0, 8)}`;
}

/** Linux interface names hold 15 bytes. */
export const IFNAME_MAX = 15;

/** The host tap name: `<vm>-<if>` when it fits, else `vs` and 8 hex digits of a hash of both names. */
export function derivedTapName(vmName: string, ifName: string): string {
  const readable = `${vmName}-${ifName}`;
  return readable.length <= IFNAME_MAX ? readable : `vs${digest("vmsilo-tap", vmName, ifName).toString("hex").slice(0, 8)}`;
}

/** First PCI slot given to network interfaces; crosvm allocates its own devices below it. */
export const NET_PCI_FIRST_SLOT = 0x10;
export const MAX_INTERFACES = 16;

export function netPciAddress(index: number): string {
  return `00:${(NET_PCI_FIRST_SLOT + index).toString(16).padStart(2, "0")}.0`;
}

export function prefixToNetmask(prefix: number): string {
  const mask = prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
  return [24, 16, 8, 0].map((s) => (mask >>> s) & 0xff).join(".");
}

/** Canonical `DDDD:BB:DD.F` form of a PCI address. */
export function normalizeBdf(bdf: string): string {
  return bdf.length === 7 ? `0000:${bdf}` : bdf;
}

/** One spelling per address, so `fd00::2` and `fd00:0::2` (or an IPv4 tail) compare equal. */
export function ipKey(ip: string): string {
  if (!ip.includes(":")) return ip;
  let text = ip.toLowerCase();
  const v4 = /(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(text);
  if (v4) {
    const [a, b, c, d] = v4.slice(1).map(Number) as [number, number, number, number];
    text = `${text.slice(0, v4.index)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const [head, tail] = text.split("::") as [string, string | undefined];
  const groups = (s: string | undefined) => (s ? s.split(":") : []);
  const h = groups(head);
  const t = groups(tail);
  const all = tail === undefined ? h : [...h, ...Array<string>(8 - h.length - t.length).fill("0"), ...t];
  return all.map((g) => parseInt(g, 16).toString(16)).join(":");
}
