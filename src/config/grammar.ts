/**
 * The name and value grammars of vmsilo.json (SPEC D1). The NixOS module's types use the same
 * expressions; docs/schema.md prints them.
 */
import { SHARED_LIBEXEC } from "../model/paths.js";

/** VM names: lower-case letter first, then [a-z0-9-], no trailing '-', at most 32 bytes, so every
 * socket path under /run/vmsilo/<vm>/ stays within the 108-byte sun_path limit and the guest
 * hostname within 63. */
export const VM_NAME = /^[a-z](?:[a-z0-9-]{0,30}[a-z0-9])?$/;
export const VM_NAME_TEXT = "a VM name: a lower-case letter, then lower-case letters, digits or '-', not ending in '-', at most 32 characters";

/** Names that would collide with fixed unit names or read as part of one, or with a shared helper
 * beside the VMs' directories in libexec/vmsilo/. */
export const RESERVED_VM_NAMES = ["session", "usb", "usb-attach", "usb-detach", "balloond", "gen", "host", "target", ...Object.values(SHARED_LIBEXEC)] as const;

/** virtio-fs tags are at most 36 bytes; the tag also names a unit and a socket. */
export const SHARE_TAG = /^[A-Za-z0-9][A-Za-z0-9_-]{0,35}$/;
export const SHARE_TAG_TEXT = "a share tag: a letter or digit, then letters, digits, '_' or '-', at most 36 characters";

/** Linux interface names (IFNAMSIZ 16 incl. NUL); no ':' ',' '.' so they embed in ip=/vmsilo.ifname. */
export const IFNAME = /^[A-Za-z][A-Za-z0-9_-]{0,14}$/;
export const IFNAME_TEXT = "an interface name: a letter, then letters, digits, '_' or '-', at most 15 characters";

/** Interface names a host has or gets from its kernel, udev's predictable names, VPNs, containers and
 * libvirt: a tap must not take one, since vmsilo deletes and re-creates its taps as root at start. */
export const HOST_IFNAME = new RegExp(
  `^(?:${[
    "lo", "eth[0-9]+", "wlan[0-9]+", "wwan[0-9]+", "usb[0-9]+",
    "(?:en|wl|ww|ib|sl)[abcdiopsvxP][0-9a-f].*",
    "wg[0-9]+", "tailscale[0-9]+", "docker[0-9]+", "virbr[0-9]+", "vnet[0-9]+", "veth.*", "lxcbr[0-9]+", "podman[0-9]+", "cni[0-9]+", "flannel.*", "cali.*",
    "bond[0-9]+", "team[0-9]+", "dummy[0-9]+", "ifb[0-9]+",
    "sit[0-9]+", "tunl[0-9]+", "gre[0-9]+", "gretap[0-9]+", "erspan[0-9]+", "ip6tnl[0-9]+", "ip6gre[0-9]+", "ip_vti[0-9]+", "ip6_vti[0-9]+",
  ].join("|")})$`,
);

/** One path component: not `.` or `..`, no `/` or control characters, no space at either edge
 * (systemd strips it, so a unit would name another path than the script). */
const COMPONENT = (() => {
  const any = "[^/\\x00-\\x1f\\x7f]";
  const edge = "[^/ \\x00-\\x1f\\x7f]";
  const edgeNoDot = "[^/. \\x00-\\x1f\\x7f]";
  return `(?:${edgeNoDot}|\\.${edgeNoDot}|${edgeNoDot}${edge}|${edge}${any}+${edge})`;
})();

/** A normalised absolute path, as systemd accepts it in `ReadWritePaths=` and conditions: no
 * `.`/`..` or empty components, no trailing `/` (but `/` itself), no edge spaces in a component. */
export const ABS_PATH = new RegExp(`^(?:/|(?:/${COMPONENT})+)$`);
export const ABS_PATH_TEXT = "a normalised absolute path (no \".\" or \"..\" components, no \"//\", no trailing \"/\", no space at a name's start or end, no control characters)";
/** PATH_MAX and NAME_MAX of Linux, in bytes (one byte is kept for PATH_MAX's NUL). */
export const PATH_MAX_BYTES = 4095;
export const NAME_MAX_BYTES = 255;
/** A UTF-16 surrogate without its pair: JSON can carry it, UTF-8 cannot (it would be written as U+FFFD).
 * Refused in every string of the configuration. */
export const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;
export const LONE_SURROGATE_TEXT = "valid Unicode text (a lone UTF-16 surrogate would be written as U+FFFD)";

const bytes = (s: string) => Buffer.byteLength(s, "utf8");

/** What `s` must be to be an absolute path option (the one path check every path option, `--prefix`
 * included, goes through), or null when it is one: the first rule it breaks. */
export function absPathProblem(s: string): string | null {
  if (!s.startsWith("/")) return "an absolute path (starting with \"/\")";
  if (/[\x00-\x1f\x7f]/.test(s)) return "a path without control characters";
  if (LONE_SURROGATE.test(s)) return LONE_SURROGATE_TEXT;
  if (s.includes("//")) return "a path without empty components (\"//\")";
  if (s !== "/" && s.endsWith("/")) return "a path without a trailing \"/\"";
  const names = s.split("/").slice(1);
  if (names.some((n) => n === "." || n === "..")) return "a normalised path (no \".\" or \"..\" components)";
  if (names.some((n) => n.startsWith(" ") || n.endsWith(" "))) return "a path whose names neither start nor end with a space";
  if (bytes(s) > PATH_MAX_BYTES) return `a path of at most ${PATH_MAX_BYTES} bytes, not ${bytes(s)}`;
  const long = names.find((n) => bytes(n) > NAME_MAX_BYTES);
  if (long !== undefined) return `a path whose names are at most ${NAME_MAX_BYTES} bytes, not ${bytes(long)}`;
  return null;
}

/** A guest mount point: one field of a `systemd.mount-extra=` kernel parameter, so no whitespace,
 * no ':' (the field separator) and no '\' or quotes (systemd unescapes and unquotes them). */
export const MOUNT_POINT = /^\/[A-Za-z0-9._+@\/-]*$/;
export const MOUNT_POINT_TEXT = "an absolute path of letters, digits and . _ + @ - / (no spaces, ':' or '\\')";
/** A program's package: a Nix store path's characters only. systemd refuses quotes and
 * backslashes in an executable name and bash's `#!` line cannot quote at all. */
export const STORE_PATH = /^\/[A-Za-z0-9+._?=\/-]+$/;
export const STORE_PATH_TEXT = "a store path (letters, digits and + . _ ? = - /)";
/** What a package's path (or the install prefix) must be: a path like every other, of these characters. */
export const storePathProblem = (s: string): string | null => absPathProblem(s) ?? (STORE_PATH.test(s) ? null : STORE_PATH_TEXT);
/** A path that becomes one kernel command-line word (`init=`): an absolute path without
 * spaces, and without `"`, which the kernel reads as quoting the rest of the line. */
export const KERNEL_PATH_TEXT = "an absolute path without spaces, '\"' or control characters";
export const kernelPathProblem = (s: string): string | null => absPathProblem(s) ?? (/[ "]/.test(s) ? KERNEL_PATH_TEXT : null);

export const SIZE = /^[1-9][0-9]{0,12}[KMGT]?$/;
export const SIZE_TEXT = "a size like \"10G\" (digits, then an optional K, M, G or T)";
/** Sizes stay below 1 EiB: no file system vmsilo runs on holds a larger file, and `truncate` refuses it. */
export const SIZE_MAX_BYTES = 2n ** 60n;
const SIZE_UNITS: Record<string, bigint> = { "": 1n, K: 2n ** 10n, M: 2n ** 20n, G: 2n ** 30n, T: 2n ** 40n };
/** A duration of vmsilo-balloond: milliseconds or seconds, from 1 ms to a day. */
export const DURATION = /^[1-9][0-9]{0,7}(ms|s)$/;
export const DURATION_TEXT = 'a duration like "2s" or "250ms" (digits, then ms or s; at most a day)';
export const durationMs = (s: string): number => Number(s.replace(/m?s$/, "")) * (s.endsWith("ms") ? 1 : 1000);
export const durationProblem = (s: string): string | null => (DURATION.test(s) && durationMs(s) <= 86400000 ? null : DURATION_TEXT);
/** The bytes of a SIZE string. */
export const sizeBytes = (s: string): bigint => BigInt(s.replace(/[KMGT]$/, "")) * SIZE_UNITS[/[KMGT]$/.test(s) ? s.slice(-1) : ""]!;

/** USB ids as lsusb and sysfs print them (any case here; sysfs writes lower case, vmsilo compares lower case). */
export const USB_ID = /^[0-9A-Fa-f]{4}$/;
export const USB_ID_TEXT = "four hexadecimal digits like \"046d\" (any case)";
/** A USB serial vmsilo can match exactly, in a udev rule too: printable ASCII without space, quotes,
 * backslash, udev's glob characters (* ? [ ] |) and substitution characters (% $). */
export const USB_SERIAL = /^[A-Za-z0-9!#&'()+,./:;<=>@^_`{}~-]{1,126}$/;
export const USB_SERIAL_TEXT = "a USB serial: 1–126 printable ASCII characters other than space, '\"', '\\', '*', '?', '[', ']', '|', '%' and '$'";
export const MAC = /^[0-9a-f]{2}(?::[0-9a-f]{2}){5}$/;
export const MAC_TEXT = "a lower-case MAC address like \"02:00:00:00:00:01\"";

const OCTET = "(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])";
const IPV4_SRC = `${OCTET}(?:\\.${OCTET}){3}`;
export const IPV4 = new RegExp(`^${IPV4_SRC}$`);
export const IPV4_TEXT = "an IPv4 address";
/** qemu's user-mode port forwards: an IPv4 address, or empty for qemu's default. */
export const IPV4_OR_EMPTY = new RegExp(`^(?:${IPV4_SRC})?$`);
export const IPV4_OR_EMPTY_TEXT = "an IPv4 address or \"\"";
/** A qemu CPU model with optional features (`host`, `max`, `Skylake-Client,-hle`): no spaces or quotes. */
export const QEMU_CPU = /^[A-Za-z0-9][A-Za-z0-9_.,=+-]*$/;
export const QEMU_CPU_TEXT = "a qemu CPU model like \"host\", \"max\" or \"Skylake-Client,-hle\"";
export const CIDR4 = new RegExp(`^${IPV4_SRC}/(?:3[0-2]|[12]?[0-9])$`);
export const CIDR4_TEXT = "an IPv4 address with prefix length, like \"10.0.0.2/24\"";
/** RFC 4291 text forms: eight groups, or fewer with exactly one "::"; an embedded IPv4 tail in
 * the usual forms (`::ffff:1.2.3.4`, `64:ff9b::1.2.3.4`). No zone index. */
const H = "[0-9a-fA-F]{1,4}";
const IPV6_SRC = `(?:${[
  `(?:${H}:){7}${H}`,
  `(?:${H}:){1,7}:`,
  `(?:${H}:){1,6}:${H}`,
  `(?:${H}:){1,5}(?::${H}){1,2}`,
  `(?:${H}:){1,4}(?::${H}){1,3}`,
  `(?:${H}:){1,3}(?::${H}){1,4}`,
  `(?:${H}:){1,2}(?::${H}){1,5}`,
  `${H}:(?::${H}){1,6}`,
  `:(?:(?::${H}){1,7}|:)`,
  `(?:${H}:){6}${IPV4_SRC}`,
  `(?:${H}:){1,4}:${IPV4_SRC}`,
  `::(?:[fF]{4}(?::0{1,4})?:)?${IPV4_SRC}`,
].join("|")})`;
export const IPV6 = new RegExp(`^${IPV6_SRC}$`);
export const IPV6_TEXT = "an IPv6 address";
export const CIDR6 = new RegExp(`^${IPV6_SRC}/(?:12[0-8]|1[01][0-9]|[1-9]?[0-9])$`);
export const CIDR6_TEXT = "an IPv6 address with prefix length, like \"fd00::2/64\"";
export const IP = new RegExp(`^(?:${IPV4_SRC}|${IPV6_SRC})$`);
export const IP_TEXT = "an IPv4 or IPv6 address";
export const ROUTE4_DEST = new RegExp(`^(?:${IPV4_SRC}/(?:3[0-2]|[12]?[0-9])|${IPV4_SRC})$`);
export const ROUTE6_DEST = new RegExp(`^${IPV6_SRC}(?:/(?:12[0-8]|1[01][0-9]|[1-9]?[0-9]))?$`);

/** One kernel command-line word: no whitespace or control characters, not starting with '-'
 * (crosvm would split an argument starting with '-' at '='). */
export const KERNEL_PARAM = /^[^\x00-\x20\x7f"-][^\x00-\x20\x7f"]*$/;
export const KERNEL_PARAM_TEXT = "one kernel parameter: no spaces, '\"' or control characters, not starting with '-'";
/** The kernel's COMMAND_LINE_SIZE on x86 is 2048 with its NUL; the VMM adds its own words
 * (console=, panic=, root=), for which this many bytes are left. */
export const KERNEL_CMDLINE_MAX_BYTES = 2047;
export const KERNEL_CMDLINE_VMM_RESERVE = 128;

export const LOG_LEVEL = /^[A-Za-z0-9_:=,.-]+$/;
export const LOG_LEVEL_TEXT = "a log level or filter like \"info\" or \"info,devices=debug\"";

/** An argument passed through verbatim: anything but NUL. */
export const ANY_ARG = /^[^\x00]*$/;
export const ANY_ARG_TEXT = "a string without NUL bytes";

export const PCI_BDF = /^(?:[0-9a-f]{4}:)?[0-9a-f]{2}:[0-1][0-9a-f]\.[0-7]$/;
export const PCI_BDF_TEXT = "a PCI address like \"0000:01:00.0\" or \"01:00.0\"";
export const PCI_DEVICE = new RegExp(`${PCI_BDF.source}|${ABS_PATH.source}`);
export const PCI_DEVICE_TEXT = "a PCI address like \"0000:01:00.0\" or \"01:00.0\", or an absolute sysfs path";

export const ID_MAP = /^[A-Za-z0-9:_-]+$/;
export const ID_MAP_TEXT = "a virtiofsd id mapping like \":0:1000:1:\" or \"guest:1000:1001\"";

export const COLOR = /^(?:#[0-9a-fA-F]{6}|[a-z]{3,24})$/;
export const COLOR_TEXT = "a CSS colour name or #RRGGBB";

export const USER_NAME = /^[a-z_][a-z0-9_-]{0,31}$/;
export const USER_NAME_TEXT = "a POSIX user or group name";

export const KV_KEY = /^[a-z][a-z0-9-]*$/;
export const KV_KEY_TEXT = "a crosvm option key like \"packed-queue\"";

/** A program version as nixpkgs writes it (`53.0`, `52.1-unstable-2026-08-01`); the major number is compared. */
export const VERSION = /^[0-9]{1,6}(?:\.[0-9]{1,6}){0,3}(?:[-+~][0-9A-Za-z.+~-]{1,64})?$/;
export const VERSION_TEXT = "a version like \"53.0\" (digits and dots, then an optional -suffix)";

/** The levels cloud-hypervisor can be set to: it honours only its `-v` count (0 warn, 1 info, 2 debug, 3+ trace). */
export const CH_LOG_LEVELS = ["warn", "info", "debug", "trace"] as const;
